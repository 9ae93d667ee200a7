"""The app's panels for watches and price history: the Watchlist tab (per user under --auth,
by Gradio's request username) and a deal's price-history chart and claim in its evidence."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

import gradio as gr

from agents.claims import claim_line
from agents.digest import DailyDigest, schedule_digest
from agents.memory import deal_key
from agents.watchlist import WatchError
from agents.wiring import Services

WATCH_COLUMNS = ["#", "watching", "price ceiling $", "matches", "since"]


def user_of(request: gr.Request | None) -> str:
    """Whose watches: the login name under --auth, "" (everyone's one list) without it."""
    return (getattr(request, "username", None) or "") if request is not None else ""


def watch_rows(services: Services, user: str) -> list[list[Any]]:
    matches: dict[int, int] = {}
    for match in services.watchlist.matches(user):
        matches[match.watch_id] = matches.get(match.watch_id, 0) + 1
    return [[w.id, w.query, w.max_price if w.max_price is not None else "", matches.get(w.id, 0),
             f"{w.created_at:%Y-%m-%d %H:%M}"] for w in services.watchlist.watches(user)]


def history_figure(services: Services, opportunity_id: int):
    """A plotly chart of the product's prices over time, this offer marked; None when unknown."""
    import plotly.graph_objects as go

    found = services.memory.evidence(opportunity_id)
    history = services.offers.history(deal_key(found.opportunity.deal)) if found else None
    if history is None:
        return None
    points = history.points
    figure = go.Figure(go.Scatter(
        x=[p.seen_at for p in points], y=[p.price for p in points], mode="lines+markers",
        text=[html.escape(p.retailer or p.feed) for p in points],  # plotly renders some HTML in text
        hovertemplate="%{x|%Y-%m-%d %H:%M}: $%{y:,.2f} %{text}"))
    deal = found.opportunity.deal
    if deal.claimed_price is not None:
        figure.add_hline(y=deal.claimed_price, line_dash="dot", annotation_text="retailer's regular price")
    if len({p.seen_at.date() for p in points}) == 1:  # one day: show the day, not its microseconds
        day = points[0].seen_at.replace(hour=0, minute=0, second=0, microsecond=0)
        figure.update_xaxes(range=[day - timedelta(days=3), day + timedelta(days=4)], tickformat="%b %d")
    figure.update_layout(title=html.escape(f"Price history: {history.summary(deal.price)}"), height=280,
                         margin={"l": 40, "r": 20, "t": 40, "b": 30}, yaxis_tickprefix="$",
                         yaxis_rangemode="tozero")
    return figure


def history_chart_message(services: Services, toolbox: Any) -> list[gr.ChatMessage]:
    """After explain_estimate told about a found deal: its price-history chart, as a chat message."""
    opportunity_id = getattr(toolbox, "explained", None)
    if opportunity_id is None:
        return []
    toolbox.explained = None
    chart = history_figure(services, opportunity_id)
    return [gr.ChatMessage(role="assistant", content=gr.Plot(chart))] if chart is not None else []


def evidence_extras(services: Services, opportunity_id: int) -> str:
    """The retailer's claim beside our estimate and the history line, for the evidence text."""
    found = services.memory.evidence(opportunity_id)
    if found is None:
        return ""
    o = found.opportunity
    lines = []
    if claim := claim_line(o.deal.price, o.deal.claimed_price, o.estimate):
        lines.append(claim)
    history = services.offers.history(deal_key(o.deal))
    if history is not None:
        lines.append(f"Price history: {history.summary(o.deal.price)}")
    return "\n\n".join(html.escape(line) for line in lines)


def watchlist_tab(services: Services) -> None:
    """The Watchlist tab's parts and handlers (call inside the Blocks)."""
    with gr.Tab("Watchlist") as tab:
        gr.Markdown("Tell DealScout what to watch for: every scan checks new deals against your "
                    "watches and alerts once per matching deal. In the chat: “alert me when a Sony "
                    "WH-1000XM5 drops under $250”, “what am I watching?”, “stop watching the headphones”.")
        table = gr.Dataframe(headers=WATCH_COLUMNS, datatype=["number", "str", "str", "number", "str"],
                             interactive=False, label="Your watches")
        with gr.Row():
            query = gr.Textbox(label="Watch for", placeholder="e.g. Sony WH-1000XM5 or 4K OLED TV", scale=3)
            ceiling = gr.Number(label="Price ceiling $ (optional)", value=None)
            add = gr.Button("Watch", variant="primary")
        with gr.Row():
            chosen = gr.Number(label="Watch #", value=None, precision=0)
            remove = gr.Button("Stop watching")
        said = gr.Markdown()

        def rows(request: gr.Request):
            return watch_rows(services, user_of(request))

        def add_watch(text: str, cap: float | None, request: gr.Request):
            user = user_of(request)
            try:
                watch = services.watchlist.add(user, text or "", cap if cap else None)
            except WatchError as err:
                return watch_rows(services, user), f"Not added: {html.escape(str(err))}."
            return watch_rows(services, user), f"Watching {html.escape(watch.describe())}."

        def remove_watch(number: float | None, request: gr.Request):
            user = user_of(request)
            try:
                watch = services.watchlist.remove(user, int(number) if number is not None else None)
            except WatchError as err:
                return watch_rows(services, user), f"Nothing removed: {html.escape(str(err))}."
            return watch_rows(services, user), f"Stopped watching {html.escape(watch.describe())}."

        tab.select(rows, None, table, api_visibility="private")
        add.click(add_watch, [query, ceiling], [table, said], api_visibility="private")
        remove.click(remove_watch, chosen, [table, said], api_visibility="private")


class DigestControl:
    """The daily digest's hour (empty: one alert per deal), saved, and its schedule."""

    def __init__(self, services: Services):
        self.services, self.scheduler = services, None

    def start(self, hour: int | None) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        pipeline = self.services.pipeline
        pipeline.digest = hour is not None
        if hour is not None:
            self.scheduler = schedule_digest(DailyDigest(self.services.memory, self.services.messenger,
                                                         self.services.watchlist, hour=hour,
                                                         best=pipeline.notify_best))

    def set_hour(self, hour: float | None) -> str:
        if hour is not None and (hour != int(hour) or not 0 <= hour <= 23):
            return "The digest hour is a whole hour from 0 to 23 (empty: one alert per deal)."
        chosen = None if hour is None else int(hour)
        self.services.settings_store.save(digest_hour=chosen)
        try:
            self.start(chosen)
        except ValueError as err:  # e.g. no pricing agent yet: saved, and used once there is one
            return f"Saved; the digest starts once the app can scan: {err}"
        if chosen is None:
            return "One alert per deal (no daily digest)."
        return f"A daily digest at {chosen:02d}:00 with the day's best deals and watch matches."

    def controls(self, status: gr.Textbox) -> None:
        """The digest's row (call inside the settings accordion)."""
        hour = gr.Number(value=self.services.settings_store.load().digest_hour, precision=0,
                         label="Daily digest at hour (0-23; empty: one alert per deal)")
        hour.change(self.set_hour, hour, status, api_visibility="private")
