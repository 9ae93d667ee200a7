"""Price history: offers of one product grouped across scans and feeds (measured on a fixture of
labelled titles), and what the history says: first time seen, lowest in N days, seen for less."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.memory import Memory
from agents.price_history import OfferGroups, PriceHistory, PricePoint, normalise, same_product
from agents.scanner import ScanResult
from models.embeddings import Embedder
from models.types import Deal

GROUPS = Path(__file__).parent / "fixtures" / "offer_groups.json"


def pairwise(groups: list[list[str]], labels: dict[str, str]) -> tuple[float, float]:
    """Precision and recall over pairs of offers: grouped together vs labelled one product."""
    predicted = {key: n for n, group in enumerate(groups) for key in group}
    tp = fp = fn = 0
    for a, b in itertools.combinations(labels, 2):
        same, together = labels[a] == labels[b], predicted[a] == predicted[b]
        tp, fp, fn = tp + (same and together), fp + (together and not same), fn + (same and not together)
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def grouped(tmp_path, embedder) -> tuple[float, float]:
    offers = json.loads(GROUPS.read_text())["offers"]
    deals = [Deal(title=t, description=t, price=10, url=f"https://e.com/{n}", guid=f"g{n}")
             for n, (t, _) in enumerate(offers)]
    with Memory(tmp_path / "m.db") as memory:
        memory.record_scan(ScanResult(deals=deals, feeds=[]))
        groups = OfferGroups(memory, embedder)
        assert groups.record() == len(deals) and groups.record() == 0  # each deal grouped once
        return pairwise(groups.groups(), {f"g{n}": label for n, (_, label) in enumerate(offers)})


def test_grouping_on_labelled_titles(tmp_path):
    """36 titles of 23 products (models, sizes and capacities that must stay apart)."""
    precision, recall = grouped(tmp_path, Embedder())
    print(f"offer grouping with MiniLM: pairwise precision {precision:.2f}, recall {recall:.2f}")
    assert precision == 1.0 and recall >= 0.9
    precision, recall = grouped(tmp_path / "words", None)
    print(f"offer grouping by words only: pairwise precision {precision:.2f}, recall {recall:.2f}")
    assert precision >= 0.9  # "AirPods 4" joins "AirPods 4 with Active Noise Cancellation"


@pytest.mark.parametrize(("a", "b", "same"), [
    ("Sony WH-1000XM5 Headphones for $248", "Sony WH1000XM5 Headphones $279 + free shipping", True),
    ("Sony WH-1000XM5 Headphones", "Sony WH-1000XM4 Headphones", False),
    ("Samsung 65\" QLED 4K TV", "Samsung 65-Inch QLED 4K TV", True),
    ("Apple iPhone 15 128GB", "Apple iPhone 15 256GB", False),
])
def test_same_product_without_an_embedder(a, b, same):
    assert same_product(normalise(a), normalise(b), None) is same


def test_history_says_first_time_lowest_in_n_days_or_seen_for_less():
    now = datetime(2026, 12, 4, tzinfo=UTC)

    def point(days_ago: int, price: float) -> PricePoint:
        return PricePoint(seen_at=now - timedelta(days=days_ago), price=price, retailer="Acme", feed="f",
                          deal_key=f"k{days_ago}")

    assert PriceHistory(product="x", points=[point(0, 99)]).summary(99, now) == "First time seen."
    history = PriceHistory(product="x", points=[point(12, 120), point(5, 110), point(0, 99)])
    assert history.summary(99, now) == "Lowest price seen in 12 days (3 offers)."
    assert history.summary(115, now) == "Seen for less: $99.00 on 2026-12-04 at Acme."


def test_a_scan_keeps_the_history_and_explain_estimate_tells_it(tmp_path):
    from agents.chat.tools import DealTools
    from agents.feeds import FeedFetcher
    from agents.messaging import MessagingAgent
    from agents.scanner import Scanner
    from agents.workflow import DealPipeline
    from tests.servers import LoopbackServer, respond
    from tests.test_workflow import FEEDS, KeywordPricer

    cheaper = (b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>Sony WH-1000XM5 Wireless '
               b'Noise Cancelling Headphones for $229</title><link>https://example.com/sony-again</link>'
               b'<guid>sony-again</guid><description>Was $399.99.</description></item></channel></rss>')
    with LoopbackServer() as server, Memory(tmp_path / "m.db") as memory, \
            FeedFetcher(validators=memory, timeout_s=5, attempts=1, allow_private=True) as fetcher:
        server.route("/feed.xml", respond((FEEDS / "traps.xml").read_bytes(), "application/rss+xml"))
        pipeline = DealPipeline(Scanner(fetcher), memory, KeywordPricer(), MessagingAgent(memory),
                                feeds=[server.url("/feed.xml")], threshold=50, notify_best=5,
                                lock_path=tmp_path / "scan.lock", offers=OfferGroups(memory))
        tools = DealTools(pipeline, KeywordPricer(), memory, pipeline.messenger)
        pipeline.scan()
        first = tools.explain_estimate(query="sony headphones").text
        assert "Price history: First time seen." in first
        assert "Retailer says $399.99; we estimate $300.00 (likely $260.00–$340.00)." in first
        server.route("/feed.xml", respond(cheaper, "application/rss+xml"))
        pipeline.scan()
        again = tools.explain_estimate(query="sony headphones $229").text
        assert "Price history: Lowest price seen in 1 day (2 offers)." in again
        assert again.count("\n- ") >= 2 and "$248.00" in again and "$229.00" in again


@pytest.mark.parametrize(("a", "b", "same"), [
    ("Sony WH1000XM5 Wireless Headphones $279", "Sony WH-1000XM5 Noise Canceling Headphones, Black for $299", True),
    ("DEWALT 20V MAX Cordless Drill Combo Kit DCK240C2 $99", "DCK240C2 DeWalt 2-tool kit $109", True),
    ("Sony WH-1000XM5 Headphones (Renewed) $199", "Sony WH-1000XM5 Headphones $279", False),
    ("Open-Box Sony WH-1000XM5 Headphones $199", "Sony WH-1000XM5 Headphones $279", False),
    ("Refurbished Sony WH-1000XM5 $189", "Sony WH-1000XM5 Headphones, open box, $199", True),
    ("Sony WH-1000XM4 Headphones $199", "Sony WH-1000XM5 Headphones $279", False),
    ('Samsung 55" QN90C TV $999', 'Samsung 65" QN90C TV $1,299', False),
])
def test_one_model_number_is_one_product_and_second_hand_is_its_own(a, b, same):
    """A tryout found offers of one model number apart ("WH1000XM5" vs "WH-1000XM5" worded
    differently) and a refurbished offer setting "lowest price seen" for the new product."""
    assert same_product(normalise(a), normalise(b), similarity=0.5) is same
