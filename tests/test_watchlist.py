"""Watches through the real pipeline: a watch made in chat fires once for a matching deal of a
loopback feed (to a loopback apprise json:// receiver), never for one that does not match, on
scheduled scans too, survives a restart, and belongs to its user."""

from __future__ import annotations

import json
import threading

import pytest

from agents.chat.planner import PlanningAgent, Reply
from agents.chat.router import Router
from agents.chat.tools import DealTools
from agents.feeds import FeedFetcher
from agents.memory import Memory
from agents.messaging import MessagingAgent, Notifier
from agents.scanner import Scanner
from agents.schedule import schedule
from agents.watchlist import WatchError, Watchlist, required_words, words_match
from agents.workflow import DealPipeline
from models.embeddings import Embedder
from models.llm import FakeChatModel
from tests.servers import LoopbackServer, respond
from tests.test_workflow import FEEDS, KeywordPricer


def item(title: str, guid: str, text: str = "") -> str:
    return (f"<item><title>{title}</title><link>https://example.com/{guid}</link><guid>{guid}</guid>"
            f"<description>{text}</description></item>")


def feed(*items: str) -> bytes:
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{"".join(items)}</channel></rss>'.encode()


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


class World:
    def __init__(self, tmp_path, server: LoopbackServer, embedder):
        self.tmp_path, self.server, self.embedder = tmp_path, server, embedder
        self.watch_sent = threading.Event()
        self.open()

    def open(self) -> None:
        self.memory = Memory(self.tmp_path / "m.db")
        self.fetcher = FeedFetcher(validators=self.memory, timeout_s=5, attempts=1, allow_private=True)
        messenger = MessagingAgent(self.memory, Notifier([f"json://127.0.0.1:{self.server.port}/hook"]))
        self.watchlist = Watchlist(self.memory, self.embedder)
        self.pipeline = DealPipeline(Scanner(self.fetcher), self.memory, KeywordPricer(), messenger,
                                     feeds=[self.server.url("/feed.xml")], threshold=50, notify_best=5,
                                     lock_path=self.tmp_path / "scan.lock", watchlist=self.watchlist)
        self.messenger = messenger

    def tools(self, owner: str = "") -> DealTools:
        return DealTools(self.pipeline, KeywordPricer(), self.memory, self.messenger, owner=owner)

    def close(self) -> None:
        self.fetcher.close()
        self.memory.close()

    def watch_alerts(self) -> list[dict]:
        bodies = [json.loads(r.body) for r in self.server.requests_to("/hook")]
        return [b for b in bodies if b["title"].startswith("Watch:")]


@pytest.fixture
def world(tmp_path, embedder):
    with LoopbackServer() as server:
        made = World(tmp_path, server, embedder)

        def hook(req):
            respond(b"ok")(req)
            if made.watch_alerts():
                made.watch_sent.set()

        server.route("/hook", hook)
        server.route("/feed.xml", respond((FEEDS / "traps.xml").read_bytes(), "application/rss+xml"))
        yield made
        made.close()


def chat(tools: DealTools, router: Router, message: str) -> str:
    planner = PlanningAgent(FakeChatModel([]), tools, router, native_tools=False)
    return next(e for e in planner.run(message) if isinstance(e, Reply)).text


def test_a_watch_made_in_chat_fires_once_for_the_matching_deal_and_survives_a_restart(world, embedder):
    router = Router(embedder)
    said = chat(world.tools(), router, "alert me when a Sony WH-1000XM5 drops under $250")
    assert said.startswith("Watching #1 Sony WH-1000XM5 under $250.00")
    world.pipeline.scan()  # traps.xml: the Sony at $248, a Samsung QLED TV, an Anker charger
    alerts = world.watch_alerts()
    assert [a["title"] for a in alerts] == ["Watch: Sony WH-1000XM5 Wireless Noise Cancelling Headphones - $248.00"]
    body = alerts[0]["message"]
    assert "Price $248.00 | we estimate $300.00 (likely $260.00-$340.00)" in body
    assert "Retailer says $399.99; we estimate $300.00" in body
    world.pipeline.scan()
    assert len(world.watch_alerts()) == 1  # once per deal, however often it is seen

    world.close()  # a restart: everything from the database file
    world.open()
    assert "#1 Sony WH-1000XM5 under $250.00" in chat(world.tools(), router, "what am I watching?")
    world.server.route("/feed.xml", respond(feed(
        item("Sony WH1000XM5 Headphones, black, for $239", "sony-2"),
        item("Sony WH-1000XM5 Headphones for $260", "sony-3"),  # over the ceiling
        item("Sony WH-1000XM4 Headphones for $199", "sony-4"),  # another model
        item("Logitech MX Master 3S mouse for $60", "mouse-1")), "application/rss+xml"))
    world.pipeline.scan()
    titles = [a["title"] for a in world.watch_alerts()]
    assert titles[1:] == ["Watch: Sony WH1000XM5 Headphones, black, for $239 - $239.00"]
    # known by the deals it matched too: "the headphones" names the Sony watch
    assert chat(world.tools(), router, "stop watching the headphones") == \
        "Stopped watching #1 Sony WH-1000XM5 under $250.00."


def test_a_watch_alerts_only_for_a_new_low(world):
    """A tryout's watch sent 13 pushes in 20 minutes for one product, one per retailer, colour and
    open-box offer: now a scan alerts for its cheapest match, and only under every price alerted."""
    world.tools().watch_product("Sony WH-1000XM5")

    def scan(*offers: tuple[str, str]) -> list[str]:
        world.server.route("/feed.xml", respond(feed(*(item(t, g) for t, g in offers)), "application/rss+xml"))
        world.pipeline.scan()
        return [a["title"].rsplit(" - ", 1)[1] for a in world.watch_alerts()]

    assert scan(("Sony WH-1000XM5 Headphones, black, for $280", "a1"),
                ("Sony WH-1000XM5 Headphones, silver, for $260", "a2"),
                ("Sony WH-1000XM5 Headphones at Best Buy for $270", "a3")) == ["$260.00"]
    assert scan(("Sony WH-1000XM5 Headphones, open-box, for $265", "b1"),
                ("Sony WH-1000XM5 Headphones, blue, for $260", "b2")) == ["$260.00"]  # no new low
    assert scan(("Sony WH-1000XM5 Headphones at Walmart for $255", "c1")) == ["$260.00", "$255.00"]
    # An open-box offer alerts only as the lowest price yet, and never silences a new one.
    assert scan(("Sony WH-1000XM5 Headphones, open-box, for $199", "d1"))[-1] == "$199.00"
    assert scan(("Sony WH-1000XM5 Headphones at Target for $239", "e1"))[-1] == "$239.00"
    assert scan(("Sony WH-1000XM5 Headphones, refurbished, for $219", "f1"))[-1] == "$239.00"  # no news


def test_stopping_a_watch_the_words_do_not_single_out_asks_which(world, embedder):
    tools, router = world.tools(), Router(embedder)
    tools.watch_product("Sony WH-1000XM5")
    tools.watch_product("Sony A7 IV camera")
    tools.watch_product("Dyson V15")
    said = chat(tools, router, "stop watching the Sony")
    assert "#1 Sony WH-1000XM5" in said and "#2 Sony A7 IV camera" in said and "Dyson" not in said
    assert [w.id for w in world.watchlist.watches("")] == [1, 2, 3]  # nothing removed
    assert chat(tools, router, "stop watching #2") == "Stopped watching #2 Sony A7 IV camera."


def test_the_list_watches_step_shows_the_list(world):
    """The tryout's "what am I watching?" step showed only "You are watching:"."""
    from agents.chat.planner import ToolStep
    from ui.chat_view import step_message

    tools = world.tools()
    tools.watch_product("Sony WH-1000XM5", max_price=250)
    tools.watch_product("4K OLED TV")
    step = ToolStep(name="list_watches", arguments={}, status="done", result=tools.list_watches().text)
    shown = step_message(step).content
    assert "#1 Sony WH-1000XM5 under $250.00" in shown and "#2 4K OLED TV" in shown


def test_watches_belong_to_their_user(world):
    alice, bob = world.tools("alice"), world.tools("bob")
    alice.watch_product("4K OLED TV", max_price=800)
    assert "not watching anything" in bob.list_watches().text
    with pytest.raises(WatchError, match="not watching anything"):
        bob.unwatch(watch_id=1)
    bob.watch_product("Dyson V15")
    assert "#1 4K OLED TV under $800.00" in alice.list_watches().text
    assert "Dyson" not in alice.list_watches().text
    with pytest.raises(WatchError, match="no watch of yours"):
        alice.unwatch(watch_id=2)  # bob's
    assert alice.unwatch(query="the tv").text == "Stopped watching #1 4K OLED TV under $800.00."
    assert "Dyson V15" in bob.list_watches().text


def test_bad_watch_requests_get_one_sentence(world):
    tools = world.tools()
    for query, cap in (("   ", None), ("!!!", None), ("TV", -5), ("TV", float("inf"))):
        with pytest.raises(ValueError) as err:
            tools.call("watch_product", {"query": query, "max_price": cap})
        assert "\n" not in str(err.value) and "Traceback" not in str(err.value)
    with pytest.raises(ValueError, match="bad arguments"):
        tools.call("watch_product", {"query": ["a"]})


def test_a_scheduled_scan_checks_the_watches(world):
    world.tools().watch_product("Sony WH-1000XM5")
    scheduler = schedule(world.pipeline.scan, 3600)
    try:
        assert world.watch_sent.wait(60)
    finally:
        scheduler.shutdown(wait=True)
    assert [a["title"][:20] for a in world.watch_alerts()] == ["Watch: Sony WH-1000X"]


def test_required_words_and_the_fallback_without_an_embedder():
    assert required_words("Sony WH-1000XM5") == ["WH-1000XM5"]
    assert required_words("any 4K OLED TV") == ["4K", "OLED"]
    assert words_match("sony wh1000xm5", "Sony WH-1000XM5 headphones")
    assert not words_match("sony wh1000xm5", "Sony WH-1000XM4 headphones")


def test_a_hosted_model_watches_by_native_tool_calling(world):
    """An OpenAI-compatible server on loopback answers with a watch_product tool call, then text:
    the watch is made with the model's arguments, and the model sees the tool's result."""
    from models.config import Settings
    from models.providers import make_chat_model

    calls = iter([
        {"tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "watch_product", "arguments": json.dumps({"query": "4K OLED TV", "max_price": 800})}}]},
        {"content": "Done: I will tell you when a 4K OLED TV is under $800."}])

    def completions(req):
        message = {"role": "assistant", "content": None, **next(calls)}
        body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})
        respond(body.encode(), "application/json")(req)

    world.server.route("/v1/chat/completions", completions)
    settings = Settings(_env_file=None, llm="openai:m", openai_api_key="sk-test",
                        openai_base_url=world.server.url("/v1"))
    planner = PlanningAgent(make_chat_model("openai:m", settings), world.tools("carol"), router=None)
    events = list(planner.run("watch for any 4K OLED TV under $800"))
    assert events[-1].text == "Done: I will tell you when a 4K OLED TV is under $800."
    assert [w.describe() for w in world.watchlist.watches("carol")] == ["#1 4K OLED TV under $800.00"]
    requests = [json.loads(r.body) for r in world.server.requests_to("/v1/chat/completions")]
    assert {"watch_product", "list_watches", "unwatch"} <= {t["function"]["name"] for t in requests[0]["tools"]}
    assert "Watching #1 4K OLED TV under $800.00" in requests[1]["messages"][-1]["content"]
