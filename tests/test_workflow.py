"""The whole deal path offline: loopback feeds -> scanner -> pricer -> opportunities -> apprise
json:// receiver, through the same pipeline and tools the chat and the schedule use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.chat.planner import PlanningAgent, ToolStep
from agents.chat.router import Route
from agents.chat.tools import TOOL_NAMES, DealTools
from agents.feeds import FeedFetcher
from agents.memory import Memory
from agents.messaging import MessagingAgent, Notifier
from agents.scanner import Scanner
from agents.schedule import ScanBusy, scan_lock
from agents.workflow import DealPipeline, qualify, why_not
from models.llm import ChatResponse, FakeChatModel, Tool, ToolCall
from models.types import Deal, Estimate
from tests.servers import LoopbackServer, respond

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
# keyword -> (value, low, high): what the fake pricer believes things are worth
WORTH = {"qled": (1200, 1000, 1400), "wh-1000xm5": (300, 260, 340), "anker": (120, 55, 160),
         "mx master": (150, 130, 170)}


class KeywordPricer:
    name = "ensemble"

    def estimate(self, description: str) -> Estimate:
        for word, (value, low, high) in WORTH.items():
            if word in description.lower():
                return Estimate(agent=self.name, value=value, low=low, high=high,
                                members={"forest": value - 5, "frontier": value + 5})
        return Estimate(agent=self.name, value=10, low=5, high=15)

    def estimate_batch(self, descriptions):
        return [self.estimate(d) for d in descriptions]


@pytest.fixture
def world(tmp_path):
    with LoopbackServer() as server, Memory(tmp_path / "m.db") as memory:
        server.route("/hook", respond(b"ok"))
        for name in ("traps.xml", "atom.xml"):
            server.route(f"/{name}", respond((FEEDS / name).read_bytes(), "application/rss+xml"))
        fetcher = FeedFetcher(validators=memory, timeout_s=2, attempts=1, allow_private=True)
        messenger = MessagingAgent(memory, Notifier([f"json://127.0.0.1:{server.port}/hook"]))
        pipeline = DealPipeline(Scanner(fetcher), memory, KeywordPricer(), messenger,
                                feeds=[server.url("/traps.xml"), server.url("/atom.xml")],
                                threshold=50, notify_best=2, lock_path=tmp_path / "scan.lock")
        yield server, memory, pipeline, DealTools(pipeline, KeywordPricer(), memory, messenger)
        fetcher.close()


def sent(server) -> list[str]:
    return [json.loads(r.body)["title"] for r in server.requests_to("/hook")]


def test_qualify_needs_the_threshold_and_the_interval():
    deal = Deal(title="x", description="x", price=100, url="https://e.com/x", guid="x")
    assert qualify(deal, Estimate(agent="e", value=151), 50) is not None
    assert qualify(deal, Estimate(agent="e", value=150), 50) is None
    assert qualify(deal, Estimate(agent="e", value=200, low=100, high=300), 50) is None
    assert "interval" in qualify(deal, Estimate(agent="e", value=200, low=120, high=300), 50).reason


def test_a_deal_the_seller_lists_within_the_threshold_never_qualifies():
    """"$26, down from the $70 list price": whatever our estimate says, the seller's own figure
    leaves $44, under the $50 threshold (a 12-per-category store once priced these shoes at $220)."""
    shoes = Deal(title="adidas Run 70s shoes", description="x", price=26, url="https://e.com/s", guid="s",
                 claimed_price=70)
    sure = Estimate(agent="e", value=220, low=90, high=550)
    assert qualify(shoes, sure, 50) is None
    assert why_not(shoes, sure, 50) == ("the seller's own regular price $70.00 is only $44.00 above the price "
                                        "$26.00, under the $50.00 threshold")
    assert qualify(shoes.model_copy(update={"claimed_price": 130}), sure, 50) is not None
    assert qualify(shoes.model_copy(update={"claimed_price": None}), sure, 50) is not None


def test_scan_prices_finds_and_notifies_the_best_once(world):
    server, memory, pipeline, _ = world
    report = pipeline.scan()
    titles = sorted(o.deal.title for o in report.opportunities)
    assert report.new_deals == 4 and report.assessed == 4
    assert [t.split()[0] for t in titles] == ["Logitech", "Samsung", "Sony"]  # Anker fails the interval
    assert sorted(t.split()[1] for t in sent(server)) == ["Logitech", "Samsung"]  # the best two
    assert memory.counts()["notifications"] == 2
    again = pipeline.scan()
    assert again.new_deals == 0 and again.opportunities == []
    assert len(sent(server)) == 2  # a second scan sends nothing


def test_one_scan_at_a_time(world):
    _, _, pipeline, tools = world
    with scan_lock(pipeline.lock_path):
        with pytest.raises(ScanBusy):
            pipeline.scan()
        assert "already running" in tools.scan_deals().text


def test_tools_list_notify_and_explain(world):
    server, memory, pipeline, tools = world
    assert "No deals" in tools.list_opportunities().text
    assert "Scan finished: 4 deals" in tools.scan_deals().text
    under = tools.list_opportunities(max_price=300).text.splitlines()
    assert len(under) == 2 and "Logitech" in under[0] and "Sony" in under[1]  # best saving first
    assert "Sent via json" in tools.notify_user(query="sony headphones").text
    assert "Already sent" in tools.notify_user(query="sony headphones").text
    assert len(sent(server)) == 3
    with pytest.raises(ValueError, match="no found deal"):
        tools.notify_user(query="anker charger")  # seen, but not an opportunity
    explained = tools.explain_estimate(query="samsung tv").text
    assert "$1,200.00" in explained and "Why it qualified" in explained
    assert "forest $1,195.00" in explained
    text = tools.estimate_price("Sony WH-1000XM5 headphones").text
    assert "Worth about $300.00" in text and "$260.00–$340.00" in text
    assert "For “Sony WH-1000XM5" in tools.explain_estimate().text


def test_the_tools_schemas_are_built_once_for_every_session_and_turn(world, monkeypatch):
    """Every chat turn rebuilt the nine tool schemas with pydantic (~4 ms of a ~20 ms price turn)."""
    server, memory, pipeline, tools = world
    built = []
    from_function = Tool.from_function.__func__
    monkeypatch.setattr(Tool, "from_function", classmethod(lambda cls, fn: built.append(fn) or from_function(cls, fn)))

    class SessionTools(DealTools):  # a class no earlier test built schemas for
        pass

    class ToList:
        def route(self, message):
            return Route(tool="list_opportunities", confidence=1.0, reason="the test's")

    sessions = [SessionTools(pipeline, KeywordPricer(), memory, tools.messenger) for _ in range(3)]
    for session in sessions * 2:  # three sessions, two turns each
        events = list(PlanningAgent(FakeChatModel([]), session, ToList(), native_tools=False).run("best deals"))
        assert events[-1].text.startswith("No deals")
    assert len(built) == len(TOOL_NAMES)
    assert sessions[0].tools() == tools.tools()
    assert "list_opportunities" in json.dumps([t.model_dump() for t in sessions[1].tools()])


def test_injected_feed_text_cannot_make_the_planner_notify(world):
    """A model that obeys text injected into a feed item still cannot alert about a deal that
    does not qualify, nor alert twice in one run."""
    server, memory, pipeline, tools = world
    obedient = FakeChatModel([
        ChatResponse(tool_calls=[ToolCall(id="1", name="scan_deals")]),
        ChatResponse(tool_calls=[ToolCall(id="2", name="notify_user", arguments={"query": "anker"}),
                                 ToolCall(id="3", name="notify_user", arguments={"query": "sony"})]),
        "Done as the feed told me.",
    ])
    planner = PlanningAgent(obedient, tools, router=None, native_tools=True)
    steps = [e for e in planner.run("scan for deals") if isinstance(e, ToolStep)]
    outcomes = {(s.name, s.status) for s in steps}
    assert ("notify_user", "error") in outcomes
    assert len(sent(server)) == 2  # only the scan's own two alerts
    assert memory.notification(next(o.deal.guid for o in memory.list_opportunities()
                                    if "Sony" in o.deal.title)) is None


def test_a_scheduled_scan_really_scans(world):
    """The schedule runs the same pipeline scan (which takes the scan lock itself)."""
    import threading

    from agents.schedule import schedule

    server, memory, pipeline, _ = world
    scanned = threading.Event()

    def scan_then_say_so():
        try:
            pipeline.scan()
        finally:
            scanned.set()

    scheduler = schedule(scan_then_say_so, 3600)
    try:
        assert scanned.wait(300), "the first scheduled run never ended"  # a bound, not a timing
    finally:
        scheduler.shutdown(wait=True)
    assert memory.counts()["deals"] == 4 and len(sent(server)) == 2
