"""What a chat message points at: "the second deal" is the second of the deals the chat last
listed (notify and explain), a named product is a query, and "forget about the Steam Deck" or
"don't alert me about the roomba anymore" stop a watch while "forget it" stays small talk."""

from __future__ import annotations

import pytest

from agents.chat.arguments import explain_arguments, notify_arguments
from agents.chat.planner import PlanningAgent, Reply
from agents.chat.router import Router
from agents.chat.tools import DealTools
from agents.feeds import FeedFetcher
from agents.memory import Memory
from agents.messaging import MessagingAgent
from agents.scanner import Scanner
from agents.watchlist import Watchlist
from agents.workflow import DealPipeline
from models.llm import FakeChatModel
from tests.test_router import NoEmbedder
from tests.test_workflow import FEEDS, KeywordPricer


@pytest.fixture
def tools(tmp_path):
    with Memory(tmp_path / "m.db") as memory, FeedFetcher() as fetcher:
        messenger = MessagingAgent(memory)  # the inbox: nothing leaves the machine
        pipeline = DealPipeline(Scanner(fetcher), memory, KeywordPricer(), messenger,
                                feeds=[str(FEEDS / "traps.xml"), str(FEEDS / "atom.xml")], threshold=50,
                                notify_best=0, lock_path=tmp_path / "scan.lock", watchlist=Watchlist(memory))
        pipeline.scan()
        yield DealTools(pipeline, KeywordPricer(), memory, messenger)


@pytest.mark.parametrize(("message", "arguments"), [
    ("send me a push notification about the second deal", {"position": 2}),
    ("notify me about the first deal", {"position": 1}),
    ("ping me about the tenth deal", {"position": 10}),
    ("alert me about the third one", {"position": 3}),
    ("notify me about the 2nd one", {"position": 2}),
    ("notify me about the last one", {"position": -1}),
    ("text me about the last deal please", {"position": -1}),
    ("alert me about #2", {"opportunity_id": 2}),  # the number a listed deal shows
    ("notify me about deal 2", {"opportunity_id": 2}),
    ("notify me about the Sony deal", {"query": "Sony"}),
    ("send me a push notification about the Sony headphones", {"query": "Sony headphones"}),
    ("notify me about the first-gen iPad", {"query": "first-gen iPad"}),
])
def test_notify_arguments_name_a_listed_deal_by_its_place_or_a_product(message, arguments) -> None:
    assert notify_arguments(message) == arguments


@pytest.mark.parametrize(("message", "arguments"), [
    ("explain the second deal", {"position": 2}),
    ("explain the estimate for the third deal", {"position": 3}),
    ("explain the last one", {"position": -1}),
    ("explain the Sony deal", {"query": "Sony"}),
    ("explain the estimate for the Vitamix blender", {"query": "Vitamix blender"}),
    ("explain that estimate", {}),
    ("explain the deal", {}),
])
def test_explain_arguments_name_a_listed_deal_by_its_place_or_a_product(message, arguments) -> None:
    assert explain_arguments(message) == arguments


def test_the_second_deal_is_the_second_the_chat_listed(tools) -> None:
    best = [o.deal.title for o in tools.memory.list_opportunities(order="best")]
    listed = tools.list_opportunities(max_price=300).text.splitlines()
    assert len(best) == 3 and len(listed) == 2 and best[1] not in listed[1]  # the two orders differ
    assert "Sony" in listed[1]
    sent = tools.notify_user(position=2).text
    assert sent.startswith("Sent via") and "Sony" in sent
    assert "Sony" in tools.memory.inbox()[0].title
    explained = tools.explain_estimate(position=-1).text  # the last one listed
    assert explained.startswith("For Sony")
    assert tools.explain_estimate(position=1).text.startswith("For Logitech")


def test_a_place_with_no_list_shown_counts_in_the_best_deals_first(tools) -> None:
    best = tools.memory.list_opportunities(order="best")
    assert tools.explain_estimate(position=2).text.startswith(f"For {best[1].deal.title[:40]}")
    assert tools.explain_estimate(position=-1).text.startswith(f"For {best[-1].deal.title[:40]}")


def test_a_place_past_the_list_is_said_plainly(tools) -> None:
    tools.list_opportunities(max_price=300)
    with pytest.raises(ValueError, match=r"^there is no 7th deal: the list I showed has 2;") as raised:
        tools.notify_user(position=7)
    assert "\n" not in str(raised.value)
    with pytest.raises(ValueError, match="^there is no 0th deal"):
        tools.explain_estimate(position=0)


def test_the_chat_alerts_about_the_second_listed_deal(tools) -> None:
    tools.list_opportunities(max_price=300)
    planner = PlanningAgent(FakeChatModel([]), tools, Router(NoEmbedder()), native_tools=False)
    replies = [e for e in planner.run("send me a push notification about the second deal") if isinstance(e, Reply)]
    assert replies[-1].text.startswith("Sent via") and "Sony" in replies[-1].text


@pytest.mark.parametrize(("message", "query"), [
    ("forget about the Steam Deck", "Steam Deck"),
    ("forget the Steam Deck", "Steam Deck"),
    ("Forget about the Steam Deck please", "Steam Deck"),
    ("don't alert me about the roomba anymore", "roomba"),
    ("don't alert me about the roomba", "roomba"),
    ("do not notify me about the Steam Deck any more", "Steam Deck"),
    ("dont tell me about the roomba anymore", "roomba"),
    ("no more alerts for the roomba", "roomba"),
    ("stop alerting me about the roomba", "roomba"),
    ("stop sending me alerts about the Steam Deck", "Steam Deck"),
])
def test_forgetting_a_product_stops_watching_it(message, query) -> None:
    route = Router(NoEmbedder()).route(message)
    assert (route.tool, route.arguments) == ("unwatch", {"query": query})


@pytest.mark.parametrize("message", ["forget it", "forget about it", "never mind", "nevermind, forget it",
                                     "never mind, forget that", "don't scan", "do not scan the feeds",
                                     "don't alert me"])
def test_forget_it_never_mind_and_dont_scan_do_nothing(router, message) -> None:
    route = router.route(message)
    assert route.tool is None, route.reason
