"""What the Deals and Price tabs show: the deals table, a deal's evidence, each agent's estimate."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote, urlsplit

import gradio as gr

from agents.chat.tools import describe_estimate
from agents.pricing import price_report
from agents.wiring import Services
from models.types import Estimate, money
from ui.inputs import text_input

DEAL_COLUMNS = ["id", "deal", "price $", "worth $", "likely range $", "below worth $", "retailer", "link", "found"]
DEAL_TYPES = ["number", "str", "number", "number", "str", "number", "str", "markdown", "str"]
DEAL_WIDTHS = ["5%", "33%", "8%", "8%", "10%", "9%", "9%", "9%", "9%"]


def deal_rows(services: Services, max_price: float | None = None) -> list[list[Any]]:
    rows = []
    for o in services.memory.list_opportunities(order="newest", max_price=max_price, limit=200):
        e = o.estimate
        interval = f"{e.low:,.0f}–{e.high:,.0f}" if e.low is not None and e.high is not None else ""
        rows.append([o.id, o.deal.title, o.deal.price, e.value, interval, o.discount, o.deal.retailer,
                     link_markdown(o.deal.url), f"{o.created_at:%Y-%m-%d %H:%M}"])
    return rows


def link_markdown(url: str) -> str:
    """A short clickable link to a feed's URL; the URL is percent-encoded and the text is the bare
    host, so nothing from the feed can break out of the markdown."""
    host = re.sub(r"[^a-z0-9.-]", "", urlsplit(url).hostname or "") or "link"
    return f"[{host.removeprefix('www.')} ↗]({quote(url, safe=':/?#@!$&*+,;=%-._~')})"


def evidence_markdown(services: Services, opportunity_id: int) -> str:
    found = services.memory.evidence(opportunity_id)
    if found is None:
        return "Select a deal to see its evidence."
    o = found.opportunity
    lines = [f"### {html.escape(o.deal.title)}", f"Price **{money(o.deal.price)}** — {html.escape(o.reason)}.",
             "", html.escape(describe_estimate(o.estimate, neighbours=5)).replace("\n", "  \n")]
    if found.estimates:
        lines.append("\nEach agent: " + ", ".join(f"{e.agent} {money(e.value)}" for e in found.estimates))
    return "\n".join(lines)


def interval_text(estimate: Estimate) -> str:
    return f"{estimate.low:,.2f} – {estimate.high:,.2f}" if estimate.low is not None else ""


def price_table(services: Services, description: str) -> tuple[list[list[Any]], str]:
    """Each agent's estimate, the final one last: the same report `launch.py price` prints."""
    description = text_input(description, "product description")
    try:
        report = price_report(description, services.pricers)
    except ValueError as err:
        raise gr.Error(str(err)) from None
    *agents, (name, final) = report.items()
    rows = [[agent, round(e.value, 2), interval_text(e)] for agent, e in agents]
    rows.append([f"{name} (final)", final.value, interval_text(final)])
    return rows, html.escape(describe_estimate(final, neighbours=5)).replace("\n", "  \n")
