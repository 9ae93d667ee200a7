"""The planning agent's tools: plain typed methods, one implementation each, shared by the chat,
the CLI and the scheduled workflow. Each returns a ToolResult whose text a person can read."""

from __future__ import annotations

import inspect
import math
import types
from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import ValidationError, validate_call

from agents.chat.planner import ToolResult
from agents.claims import claim_line
from agents.memory import Memory, StoredOpportunity, deal_key
from agents.messaging import MessagingAgent
from agents.schedule import ScanBusy
from agents.settings_store import SettingsStore
from agents.watchlist import Watchlist
from agents.workflow import DealPipeline
from models.llm import Tool
from models.types import Estimate, Pricer, money

TOOL_NAMES = ("estimate_price", "scan_deals", "list_opportunities", "notify_user", "explain_estimate",
              "watch_product", "list_watches", "unwatch", "change_settings")
MAX_PRICE_FILTER = 1_000_000.0  # dollars; a cap above it (or not above $0) is a mistake, not a filter
LIST_LIMIT = 5  # deals a list shows unless asked for more


def price_filter_refusal(written: str) -> str:
    return (f"{written} is not a price filter I can use: give a dollar amount above $0 and up to "
            f"{money(MAX_PRICE_FILTER)}, like \"best deals under $200\".")


def describe_estimate(estimate: Estimate, neighbours: int = 3) -> str:
    if estimate.thin:
        text = f"**Unsure: a rough guess of {money(estimate.value)}**"
    else:
        text = f"**Worth about {money(estimate.value)}**"
    if estimate.low is not None and estimate.high is not None:
        text += f" (likely {money(estimate.low)}–{money(estimate.high)})"
    if estimate.thin:
        text += f"\nThin evidence: {estimate.thin}. An estimate like this never triggers an alert."
    if estimate.members:
        text += "\nAgents: " + ", ".join(f"{n} {money(v)}" for n, v in estimate.members.items())
    if estimate.evidence:
        text += "\nSimilar products:" + "".join(
            f"\n- {n.title[:80]}: {money(n.price)} ({n.similarity:.0%} similar)"
            for n in estimate.evidence[:neighbours])
    return text


def describe_opportunity(o: StoredOpportunity) -> str:
    interval = ""
    if o.estimate.low is not None and o.estimate.high is not None:
        interval = f", likely {money(o.estimate.low)}–{money(o.estimate.high)}"
    return (f"#{o.id} {o.deal.title[:90]}: {money(o.deal.price)}, worth about "
            f"{money(o.estimate.value)}{interval}; {money(o.discount)} below worth"
            + (f" at {o.deal.retailer}" if o.deal.retailer else "") + f" {o.deal.url}")


@cache
def tool_schemas(kind: type) -> tuple[Tool, ...]:
    """The tools' schemas from their methods' signatures: the same for every session and every
    turn, so built once (pydantic takes ~4 ms to build them, a fifth of a price turn)."""
    return tuple(Tool.from_function(types.MethodType(getattr(kind, name), kind)) for name in TOOL_NAMES)


class DealTools:
    """One per chat session (it remembers the session's last estimate); the heavy parts it holds
    (pipeline, pricer, memory) are shared."""

    def __init__(self, pipeline: DealPipeline, pricer: Pricer, memory: Memory,
                 messenger: MessagingAgent, lookup_url: Callable[[str], str] | None = None,
                 owner: str = "", settings: SettingsStore | None = None):
        self.pipeline, self.pricer, self.memory, self.messenger = pipeline, pricer, memory, messenger
        self.lookup_url = lookup_url
        self.owner = owner  # whose watches these are: the app's login name under --auth
        self.settings = settings  # where changed settings are saved (they last across restarts)
        self.explained: int | None = None  # the found deal explain_estimate last told about (its chart)
        self.last: tuple[str, Estimate] | None = None
        self.listed: list[int] = []  # the ids of the deals this chat showed last, in order ("the second deal")

    def tools(self) -> list[Tool]:
        return list(tool_schemas(type(self)))

    def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        if name not in TOOL_NAMES:
            raise ValueError(f"there is no tool called {name!r}")
        method = getattr(self, name)
        accepted = inspect.signature(method).parameters
        unknown = set(arguments) - set(accepted)
        if unknown:
            raise ValueError(f"{name} does not take {', '.join(sorted(unknown))}")
        try:  # a model may send any JSON: check it against the method's types first
            return validate_call(method)(**arguments)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise ValueError(f"{name} got bad arguments ({problems})") from None

    def estimate_price(self, description: str = "", url: str = "") -> ToolResult:
        """Estimate what a product is really worth from its description (or a deal's URL), with
        the likely range, each pricing agent's answer and similar known products."""
        if url and not description.strip():
            if self.lookup_url is None:
                raise ValueError("looking up URLs is not enabled; paste the product description")
            description = self.lookup_url(url)
        estimate = self.pricer.estimate(description)
        self.last = (description, estimate)
        return ToolResult(text=describe_estimate(estimate), data=estimate.model_dump())

    def scan_deals(self) -> ToolResult:
        """Scan the configured deal feeds now, price the new deals and report the opportunities."""
        try:
            report = self.pipeline.scan()
        except ScanBusy:
            return ToolResult(text="A scan is already running; its deals will show up shortly.")
        lines = [f"Scan finished: {report.summary()}."]
        shown = report.opportunities[:LIST_LIMIT]
        lines += [describe_opportunity(o) for o in shown]
        self.listed = [o.id for o in shown] or self.listed
        lines += [f"Feed problem: {f.line()}" for f in report.scan.failed_feeds]
        return ToolResult(text="\n".join(lines), data=report.model_dump(mode="json"))

    def list_opportunities(self, max_price: float | None = None, limit: int = LIST_LIMIT) -> ToolResult:
        """List the best deals found so far (largest saving first), optionally under a price cap."""
        if max_price is not None and not (math.isfinite(max_price) and 0 < max_price <= MAX_PRICE_FILTER):
            raise ValueError(price_filter_refusal(f"${max_price:g}"))
        found = self.memory.list_opportunities(order="best", max_price=max_price, limit=max(1, min(limit, 50)))
        if not found:
            cap = f" under {money(max_price)}" if max_price is not None else ""
            return ToolResult(text=f"No deals{cap} found yet. Ask me to scan for deals now.", data=[])
        self.listed = [o.id for o in found]
        return ToolResult(text="\n".join(describe_opportunity(o) for o in found),
                          data=[o.model_dump(mode="json") for o in found])

    def notify_user(self, opportunity_id: int | None = None, query: str = "", position: int | None = None) -> ToolResult:
        """Send the user an alert about one found deal, chosen by its id, by words in its title or by
        its position in the list of deals last shown (1 the first, -1 the last)."""
        opportunity = self._find(opportunity_id, query, position)
        alert = self.messenger.compose(opportunity)
        sent_before = self.memory.notification(alert.key)
        if sent_before is not None and sent_before.status == "delivered":
            return ToolResult(text=f"Already sent on {sent_before.delivered_at:%Y-%m-%d %H:%M} via "
                                   f"{sent_before.channel}: {alert.title}")
        self.memory.queue_notifications([alert])
        report = self.messenger.deliver_pending()
        note = self.memory.notification(alert.key)
        if note is not None and note.status == "delivered":
            return ToolResult(text=f"Sent via {note.channel}: {alert.title}")
        return ToolResult(text=f"Could not deliver yet ({'; '.join(report.errors) or 'pending'}); "
                               "it stays queued and will be retried.")

    def explain_estimate(self, query: str = "", position: int | None = None) -> ToolResult:
        """Explain the evidence behind the last estimate, or behind a found deal named by words or
        by its position in the list of deals last shown (1 the first, -1 the last)."""
        if not query.strip() and position is None and self.last is None:
            raise ValueError("nothing to explain yet: ask me what something is worth first")
        if query.strip() or position is not None:
            opportunity = self._find(None, query, position)
            self.explained = opportunity.id
            evidence = self.memory.evidence(opportunity.id)
            estimate = opportunity.estimate
            members = evidence.estimates if evidence else []
            head = f"For {opportunity.deal.title[:90]} at {money(opportunity.deal.price)}:"
            why = f"\nWhy it qualified: {opportunity.reason}." + self._seen_before(opportunity)
        else:
            description, estimate = self.last
            members, head, why = [], f"For “{description[:90]}”:", ""
        detail = describe_estimate(estimate, neighbours=5)
        if estimate.note:
            detail += f"\nHow: {estimate.note}."
        if members:
            detail += "\nRecorded estimates: " + ", ".join(f"{e.agent} {money(e.value)}" for e in members)
        return ToolResult(text=f"{head}\n{detail}{why}", data=estimate.model_dump())

    def _seen_before(self, opportunity: StoredOpportunity) -> str:
        """The retailer's claim beside our estimate, and the product's price history."""
        deal, text = opportunity.deal, ""
        if claim := claim_line(deal.price, deal.claimed_price, opportunity.estimate):
            text += f"\n{claim}"
        history = self.pipeline.offers.history(deal_key(deal)) if self.pipeline.offers is not None else None
        if history is not None:
            text += f"\nPrice history: {history.summary(deal.price)}" + "".join(
                f"\n- {p.seen_at:%Y-%m-%d} {money(p.price)}" + (f" at {p.retailer}" if p.retailer else "")
                for p in history.points[-8:])
        return text

    def watch_product(self, query: str, max_price: float | None = None) -> ToolResult:
        """Watch for a product: every scan checks new deals against it and alerts when a match is a
        new low (at or under max_price when given)."""
        watch = self._watchlist().add(self.owner, query, max_price)
        need = f" (a match must name {', '.join(watch.required)})" if watch.required else ""
        return ToolResult(text=f"Watching {watch.describe()}{need}. Every scan checks it; "
                               "you get an alert when a match is its lowest price yet (new and open-box/refurbished apart).", data=watch.model_dump(mode="json"))

    def list_watches(self) -> ToolResult:
        """List the products the user is watching, with their numbers and price ceilings."""
        watches = self._watchlist().watches(self.owner)
        if not watches:
            return ToolResult(text="You are not watching anything yet. Say e.g. “alert me when a "
                                   "Sony WH-1000XM5 drops under $250”.", data=[])
        return ToolResult(text="You are watching:\n" + "\n".join(w.describe() for w in watches),
                          data=[w.model_dump(mode="json") for w in watches])

    def unwatch(self, watch_id: int | None = None, query: str = "") -> ToolResult:
        """Stop watching a product, named by its watch number or by words of what is watched."""
        watch = self._watchlist().remove(self.owner, watch_id, query)
        return ToolResult(text=f"Stopped watching {watch.describe()}.", data=watch.model_dump(mode="json"))

    def change_settings(self, threshold: float | None = None, notify_best: int | None = None) -> ToolResult:
        """Change (or, with no values, show) the alert settings: the threshold in dollars an
        estimate must beat the price by, and how many alerts each scan sends. They are saved."""
        if self.settings is None:
            raise ValueError("settings cannot be changed in this setup")
        changes = {k: v for k, v in (("threshold", threshold), ("notify_best", notify_best)) if v is not None}
        saved = self.settings.save(**changes) if changes else self.settings.load()
        self.pipeline.threshold, self.pipeline.notify_best = saved.threshold, saved.notify_best
        head = "Saved" if changes else "Settings"
        return ToolResult(text=f"{head}: an alert needs an estimate {money(saved.threshold)} above the price; "
                               f"at most {saved.notify_best} alerts per scan; {len(saved.feeds)} feed"
                               + ("." if len(saved.feeds) == 1 else "s."),
                          data=saved.model_dump())

    def _watchlist(self) -> Watchlist:
        if self.pipeline.watchlist is None:
            raise ValueError("watches are not enabled in this setup")
        return self.pipeline.watchlist

    def _find(self, opportunity_id: int | None, query: str, position: int | None = None) -> StoredOpportunity:
        if position is not None and opportunity_id is None:
            opportunity_id = self._listed_at(position)
        candidates = self.memory.list_opportunities(order="best", limit=200)
        if opportunity_id is not None:
            match = [o for o in candidates if o.id == opportunity_id]
        else:
            words = [w for w in query.lower().split() if len(w) > 2]
            scored = [(sum(w in o.deal.title.lower() for w in words), o) for o in candidates]
            best = max((s for s, _ in scored), default=0)
            match = [o for s, o in scored if best and s == best]
        if not match:
            raise ValueError("no found deal matches that; ask me to list the deals first")
        return match[0]

    def _listed_at(self, position: int) -> int:
        """The id of the deal at `position` (1 the first, -1 the last) of the list this chat showed
        last, or, before it showed one, of the list it would show: the best deals first."""
        listed, where = self.listed, "the list I showed"
        if not listed:
            listed = [o.id for o in self.memory.list_opportunities(order="best", limit=LIST_LIMIT)]
            where = "the list of best deals"
        if not listed:
            raise ValueError("no deals found yet: ask me to scan for deals first")
        if position == 0 or abs(position) > len(listed):
            raise ValueError(f"there is no {_ordinal(position)} deal: {where} has {len(listed)}; "
                             "name the deal or give its #number instead")
        return listed[position - 1 if position > 0 else position]


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 22nd; a negative n counts from the end ("2nd from last")."""
    if n < 0:
        return f"{_ordinal(-n)} from last"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
