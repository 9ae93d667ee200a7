"""The retailer's claimed regular price: read on every captured feed entry that carries one, never
taken as the price, and shown beside our estimate with a warning when it looks inflated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.claims import claim_line, claimed_price
from agents.deal_text import extract_price
from agents.scanner import parse_feed
from models.types import Estimate

# The captured feeds: where `make test` says, else beside the repository (as make finds them).
SHARED = Path(os.environ.get("DEALSCOUT_TEST_FEEDS_DIR") or Path(__file__).resolve().parents[2] / "shared/data/feeds")
FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
# Every deal the scanner keeps from the captured feeds and our fixtures: (feed, title start) ->
# (price, claimed regular price or None). Entries without a claim must stay None.
EXPECTED = {
    ("dealnews_roundups.xml", "Alfani Men's Short-Sleeve"): (7.46, 50.0),
    ("dealnews_roundups.xml", "Alfani Men's Welded"): (19.46, 130.46),  # "That's a $111 savings."
    ("dealnews_sample.xml", "Alfani Men's Short-Sleeve"): (7.46, 50.0),
    ("dealnews_sample.xml", "adidas Men's Samoa"): (29.0, 80.0),
    ("dealnews_sample.xml", "adidas Men's Run 70s"): (26.0, 70.0),
    ("techbargains.xml", "Amazon Grocery"): (1.99, None),
    ("techbargains.xml", "Cayama"): (69.99, None),
    ("techbargains.xml", "Printspree"): (8.49, None),
    ("techbargains.xml", "Talix"): (39.99, None),
    ("atom.xml", "Logitech"): (69.99, None),
    ("dealnews_ns.xml", "DEWALT"): (874.99, 1249.99),
    ("traps.xml", "Samsung"): (875.0, 1249.99),
    ("traps.xml", "Sony"): (248.0, 399.99),
    ("traps.xml", "Anker"): (59.99, None),
}


def _deals():
    files = [SHARED / n for n in ("dealnews_roundups.xml", "dealnews_sample.xml", "techbargains.xml")]
    files += [FIXTURES / n for n in ("atom.xml", "dealnews_ns.xml", "traps.xml")]
    for path in files:
        if path.exists():
            yield path.name, parse_feed(path.read_bytes(), path.name).deals


def test_every_captured_claim_is_read_and_never_taken_as_the_price():
    seen = set()
    for feed, deals in _deals():
        for deal in deals:
            key = next(k for k in EXPECTED if k[0] == feed and deal.title.startswith(k[1]))
            seen.add(key)
            assert (deal.price, deal.claimed_price) == EXPECTED[key], deal.title
    assert seen == {k for k in EXPECTED if (SHARED / k[0]).exists() or (FIXTURES / k[0]).exists()}


@pytest.mark.parametrize(("text", "price", "claim"), [
    ("Samsung TV for $875: $375 off the regular price of $1,249.99", 875, 1249.99),
    ("Headphones, list $299, now $199", 199, 299),
    ("Mouse for $40 (was $89)", 40, 89),
    ("Drill $99, reg. $149.99", 99, 149.99),
    ("Blender $45, MSRP: $120", 45, 120),
    ("Guitar is down to $599, $200 off its regular price", 599, 799),
    ("the vest for $19.46. That's a $111 savings.", 19.46, 130.46),
    ("a savings of $40 on the kit", 60, 100),
    ("down from $50, a savings of 85%", 7.46, 50),
    ("a savings of 85% today", 7.46, None),
    ("drops to $29, down from the $80 list price", 29, 80),
    ("Kettle for $25 + free shipping w/ $35", 25, None),  # a shipping minimum is no claim
    ("Socks for $9, was $5 in a bundle", 9, None),  # a "regular price" under the price is none
    ("Drill $129: $20 off list", 129, 149),
    ("TV $400, down $100 from the list price", 400, 500),
    ("Blender $50, 50% off the list price", 50, 100),  # price / (1 - 0.5)
    ("Camera $700; the previous model was $899 at launch", 700, None),  # another product's price
])
def test_claim_phrasings(text, price, claim):
    assert claimed_price(text, price) == claim


@pytest.mark.parametrize(("title", "price", "claim"), [
    ('Regular price $1,249.99, now $875: Samsung 65" QN90C', 875, 1249.99),
    ("Retail Price: $999.99 Laptop $649.99", 649.99, 999.99),
    ("List price: $299 Sony WH-1000XM5 $248", 248, 299),
])
def test_an_amount_named_as_the_usual_price_is_never_the_price(title, price, claim):
    assert extract_price(title) == price
    assert claimed_price(title, price) == claim


def test_claim_line_says_both_and_flags_an_inflated_claim():
    estimate = Estimate(agent="ensemble", value=980, low=800, high=1150)
    assert claim_line(875, 1249.99, estimate) == (
        "Retailer says $1,249.99; we estimate $980.00 (likely $800.00–$1,150.00). The claimed saving "
        "of $374.99 is far larger than ours ($105.00): the regular price looks inflated.")
    fair = claim_line(875, 1100, Estimate(agent="ensemble", value=1050))
    assert fair == "Retailer says $1,100.00; we estimate $1,050.00."
    assert claim_line(875, None, estimate) == ""
