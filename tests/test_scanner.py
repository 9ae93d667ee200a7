"""Scanner: feeds served on loopback (shared captures and our fixtures), traps, faults, LLM, CLI."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.deal_text import extract_price, free_with_purchase, product_name
from agents.feeds import FeedFetcher
from agents.scanner import REFINE_SYSTEM, Scanner, parse_feed, refine_description
from models.llm import ChatResponse, FakeChatModel, ToolCall
from models.text import clean_html
from tests.servers import Gate, LoopbackServer, conditional, endless, respond

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
RSS = "application/rss+xml"


@pytest.fixture(scope="module")
def shared_feeds() -> Path:
    folder = os.environ.get("DEALSCOUT_TEST_FEEDS_DIR")
    if not folder:
        pytest.skip("DEALSCOUT_TEST_FEEDS_DIR is not set")
    return Path(folder)


def fast_fetcher(**kwargs) -> FeedFetcher:
    options = {"timeout_s": 0.5, "attempts": 2, "backoff_s": 0.01, "allow_private": True} | kwargs
    return FeedFetcher(**options)


def scan_served(files: dict[str, Path]) -> tuple[object, LoopbackServer]:
    with LoopbackServer() as server, fast_fetcher() as fetcher:
        for name, path in files.items():
            server.route(f"/{name}", respond(path.read_bytes(), RSS))
        result = Scanner(fetcher).scan([server.url(f"/{name}") for name in files])
    return result, server


def test_shared_dealnews_sample_uses_structured_metadata(shared_feeds):
    result, _ = scan_served({"sample.xml": shared_feeds / "dealnews_sample.xml"})
    assert [(d.title, d.price, d.retailer, d.category) for d in result.deals] == [
        ("Alfani Men's Short-Sleeve Solid Textured Shirt for $7 + free shipping w/ $39", 7.46,
         "Macy's", "Shirts"),
        ("adidas Men's Samoa Shoes for $29 + free shipping", 29.0, "eBay", "Shoes"),
        ("adidas Men's Run 70s 2.0 Shoes for $26 + free shipping", 26.0, "eBay", "Shoes"),
    ]
    assert result.skipped == []
    shirt = result.deals[0]
    assert shirt.guid == "https://www.dealnews.com/22246961.html?iref=rss"
    assert shirt.url.startswith("https://www.dealnews.com/Alfani-Mens-Short-Sleeve")
    # the description is the product, without the deal's terms
    assert "100% cotton" in shirt.description and "$" not in shirt.description
    assert "shipping" not in shirt.description.lower()


def test_shared_roundups_feed_is_malformed_but_read(shared_feeds):
    result, _ = scan_served({"roundups.xml": shared_feeds / "dealnews_roundups.xml"})
    assert result.feeds[0].status == "ok" and result.feeds[0].entries == 12
    assert [(d.title, d.price) for d in result.deals] == [
        ("Alfani Men's Short-Sleeve Solid Textured Shirt for $7 + free shipping w/ $39", 7.46),
        # metadata says 19.00, the text "for $19.46": the cents are kept
        ("Alfani Men's Welded Alfatech Contrast-Trim Full-Zip Vest for $19 + free shipping w/ $39", 19.46),
    ]
    assert len(result.skipped) == 10
    assert {s.code for s in result.skipped} == {"roundup"}
    assert result.skipped[0].title == "Staples Easy Deal Days Sale: Up to 60% off + free shipping w/ $35"


def test_shared_techbargains_prices_from_text(shared_feeds):
    result, _ = scan_served({"tb.xml": shared_feeds / "techbargains.xml"})
    assert [(d.title, d.price, d.retailer) for d in result.deals] == [
        ("Amazon Grocery 1lb 80/20 Fat Ground Beef $1.99", 1.99, "Amazon"),
        ("Cayama 540-Emitter Red Light Therapy Hair Growth Cap $69.99", 69.99, "Amazon"),
        ('Printspree 36" x 36" Larger Mesh Air Conditioner Covers $8.49', 8.49, "Amazon"),
        ("Talix 20000mAh 190W 3-Port Laptop Power Bank with Retractable USB-C Cable $39.99", 39.99,
         "Amazon"),
    ]
    assert result.deals[2].category == "Home & Garden"
    assert [(s.code, s.title) for s in result.skipped] == [
        ("no_price", "Amazon Prime Membership: 30 Day Trial & Discounted Memberships"),
        ("roundup", "Apple Prime Day Sale: Latest Discounts on AirPods, iPads, AirTags, More"),
    ]


def test_same_deal_in_two_feeds_counts_once(shared_feeds):
    result, _ = scan_served({"a.xml": shared_feeds / "dealnews_sample.xml",
                             "b.xml": shared_feeds / "dealnews_roundups.xml"})
    assert len(result.deals) == 4
    assert [s.code for s in result.skipped].count("duplicate") == 1
    assert result.feeds[1].deals == 1 and result.feeds[1].skipped == 11


def test_traps_fixture_from_file_path_and_file_url():
    for source in (str(FIXTURES / "traps.xml"), (FIXTURES / "traps.xml").as_uri()):
        with fast_fetcher() as fetcher:
            result = Scanner(fetcher).scan([source])
        assert [(d.title, d.price) for d in result.deals] == [
            ('Samsung 65" Class QLED 4K Smart TV for $875 + free shipping', 875.0),
            ("Sony WH-1000XM5 Wireless Noise Cancelling Headphones", 248.0),
            ("Anker 737 USB-C Charger 120W", 59.99),
        ]
        assert [s.code for s in result.skipped] == ["zero_price", "roundup", "no_price", "no_link"]
        sony = result.deals[1]
        # HTML escaped twice arrives as clean text
        assert sony.description == ("Sony WH-1000XM5 Wireless Noise Cancelling Headphones\n"
                                    "Industry-leading noise cancellation with 30-hour battery life.")


def test_structured_price_beats_misleading_text_and_zero_is_skipped():
    parsed = parse_feed((FIXTURES / "dealnews_ns.xml").read_bytes(), "dn")
    assert [(d.price, d.retailer, d.category) for d in parsed.deals] == [
        (874.99, "Home Depot", "Power Tools")]
    assert [(s.code, s.title) for s in parsed.skipped] == [
        ("zero_price", "Free Kindle eBook: Python Tricks")]


def test_atom_feed():
    parsed = parse_feed((FIXTURES / "atom.xml").read_bytes(), "atom")
    assert [(d.title, d.price, d.url) for d in parsed.deals] == [
        ("Logitech MX Master 3S Wireless Mouse $69.99", 69.99, "https://example.com/atom/mx-master-3s")]
    assert parsed.deals[0].description.endswith("8K DPI sensor, quiet clicks, USB-C charging.")


@pytest.mark.parametrize("title, price", [
    ("Samsung TV for $875: $375 off the regular price of $1,249.99", 875.0),
    ("$375 off the regular price of $1,249.99", None),
    ("Tools Deals at Lowe's: Up to $230 off + free shipping", None),
    ("Shirt for $7 + free shipping w/ $39", 7.0),
    ("Save $100 on the Dyson V8, now $299", 299.0),
    ("Amazon $25 gift card for $20", 20.0),
    ("Power Bank with USB-C Cable $39.99", 39.99),
    ("Laptop for US$1,099", 1099.0),
])
def test_price_in_title(title, price):
    assert extract_price(title) == price


def test_price_in_description_needs_a_cue():
    text = "That's $375 off the regular price of $1,249.99. Drops to $874.99 today."
    assert extract_price("Samsung TV", text) == 874.99
    assert extract_price("Samsung TV", "Save $375, a $111 savings, orders over $39.") is None


def test_clean_html_and_product_name():
    assert clean_html("&amp;lt;b&amp;gt;Bold&amp;lt;/b&amp;gt; &amp;amp; more") == "Bold & more"
    assert clean_html("<script>alert(1)</script><p>One</p><p>Two</p>") == "One\nTwo"
    assert product_name("adidas Samoa Shoes for $29 + free shipping") == "adidas Samoa Shoes"
    assert product_name("Save $100 on the Dyson V8, now $299") == "Dyson V8"


def test_faults_each_reported_while_the_rest_of_the_scan_proceeds(caplog):
    good = (FIXTURES / "atom.xml").read_bytes()
    gate = Gate()  # the slow feed answers only after the scan: slower than the timeout, whatever the load
    with LoopbackServer() as server, fast_fetcher(max_bytes=1024 * 1024) as fetcher:
        server.route("/good.xml", respond(good, "application/atom+xml"))
        server.route("/500.xml", respond(b"oops", status=500))
        server.route("/slow.xml", gate.hold(respond(good, RSS)))
        server.route("/garbage.xml", respond(bytes(range(256)) * 40, RSS))
        server.route("/html.xml", respond(b"<html><body><p>Hello</p></body></html>", "text/html"))
        server.route("/huge.xml", endless(declare_length=True))
        server.route("/huge-stream.xml", endless(declare_length=False))
        names = ["404.xml", "500.xml", "slow.xml", "garbage.xml", "html.xml", "huge.xml",
                 "huge-stream.xml", "good.xml"]
        with caplog.at_level(logging.WARNING, logger="dealscout.scanner"):
            result = Scanner(fetcher).scan([server.url(f"/{n}") for n in names])
        gate.open()
        assert len(server.requests_to("/500.xml")) == 2  # retried, then given up
        assert len(server.requests_to("/404.xml")) == 1  # not retried
    outcomes = {o.feed.rsplit("/", 1)[1]: o for o in result.feeds}
    assert outcomes["good.xml"].status == "ok" and [d.price for d in result.deals] == [69.99]
    messages = {n: outcomes[n].message for n in names[:-1]}
    assert all(outcomes[n].status == "failed" for n in names[:-1])
    assert messages["404.xml"] == "failed: server answered HTTP 404 Not Found"
    assert messages["500.xml"] == ("failed after 2 tries: server answered HTTP 500 "
                                   "Internal Server Error")
    assert messages["slow.xml"] == "failed after 2 tries: timed out (limit 0.5 s)"
    assert messages["garbage.xml"].startswith("not a readable feed")
    assert messages["html.xml"].startswith("not a readable feed")
    assert messages["huge.xml"] == "skipped: larger than 1 MB, download cut off"
    assert messages["huge-stream.xml"] == "skipped: larger than 1 MB, download cut off"
    logged = caplog.text
    assert all(server.url(f"/{n}") in logged for n in names[:-1])


def test_unreachable_host_missing_file_and_unsupported_scheme():
    with fast_fetcher() as fetcher:
        result = Scanner(fetcher).scan(["http://127.0.0.1:9/feed.xml", "/no/such/feed.xml",
                                        "ftp://example.com/feed.xml"])
    assert [o.message for o in result.feeds] == [
        "failed after 2 tries: could not connect to the server", "no such file: /no/such/feed.xml",
        "unsupported feed address 'ftp://example.com/feed.xml': use http(s)://, file:// or a path"]


def test_conditional_get_remembers_validators():
    body = (FIXTURES / "atom.xml").read_bytes()
    remembered: dict[str, dict[str, str]] = {}

    class Validators:
        def feed_validators(self, url: str) -> dict[str, str]:
            return remembered.get(url, {})

    with LoopbackServer() as server, fast_fetcher(validators=Validators()) as fetcher:
        server.route("/feed.xml", conditional(body, '"v1"', "Mon, 05 Oct 2026 12:00:00 GMT"))
        scanner, url = Scanner(fetcher), server.url("/feed.xml")
        first = scanner.scan([url])
        assert first.feeds[0].validators == {"etag": '"v1"',
                                             "last-modified": "Mon, 05 Oct 2026 12:00:00 GMT"}
        remembered[url] = first.feeds[0].validators
        second = scanner.scan([url])
        assert server.requests_to("/feed.xml")[1].headers["If-None-Match"] == '"v1"'
    assert len(first.deals) == 1
    assert second.feeds[0].status == "unchanged" and second.deals == []


def _tool_reply(description: str) -> ChatResponse:
    return ChatResponse(tool_calls=[ToolCall(id="1", name="answer",
                                             arguments={"description": description})])


def test_llm_refinement_gets_feed_text_as_quoted_data_and_never_sets_the_price():
    deal = next(d for d in parse_feed((FIXTURES / "traps.xml").read_bytes(), "t").deals
                if d.title.startswith("Anker"))
    assert "Ignore all previous instructions" in deal.description
    llm = FakeChatModel([_tool_reply("Anker 737 120W GaN USB-C charger with three ports.")])
    refined = refine_description(llm, deal)
    assert refined.description == "Anker 737 120W GaN USB-C charger with three ports."
    assert (refined.price, refined.url, refined.title) == (deal.price, deal.url, deal.title)
    system, user = llm.requests[0]["messages"]
    assert system.content == REFINE_SYSTEM
    assert user.content.startswith("<listing>{") and user.content.endswith("}</listing>")
    assert "Ignore all previous instructions" in user.content


@pytest.mark.parametrize("answer", ["Anker charger, now only $1!", "See https://evil.example",
                                    "short"])
def test_llm_refinement_rejected_keeps_the_feed_description(answer):
    deal = parse_feed((FIXTURES / "atom.xml").read_bytes(), "a").deals[0]
    refined = refine_description(FakeChatModel([_tool_reply(answer)]), deal)
    assert refined == deal


def test_llm_failure_keeps_the_feed_description():
    deal = parse_feed((FIXTURES / "atom.xml").read_bytes(), "a").deals[0]
    assert refine_description(FakeChatModel([]), deal) == deal  # the model errors out


def test_cli_dry_run_json(tmp_path, monkeypatch):
    import launch

    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path / "var"))
    run = CliRunner().invoke(launch.app, ["scan", "--feed", str(FIXTURES / "traps.xml"),
                                          "--dry-run", "--json"])
    assert run.exit_code == 0, run.output
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    deals = [x for x in lines if not x.get("skipped")]
    assert [(d["title"][:12], d["price"]) for d in deals] == [
        ("Samsung 65\" ", 875.0), ("Sony WH-1000", 248.0), ("Anker 737 US", 59.99)]
    assert {"title", "description", "price", "url"} <= set(deals[0])
    assert [(x["code"], x["reason"]) for x in lines if x.get("skipped")][0] == (
        "zero_price", "price is $0.00: free or a placeholder")
    assert not (tmp_path / "var").exists()  # neither memory nor anything else written


def test_cli_all_feeds_failing_is_one_clear_error(tmp_path, monkeypatch):
    import launch

    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path / "var"))
    run = CliRunner().invoke(launch.app, ["scan", "--feed", str(tmp_path / "none.xml"), "--dry-run"])
    assert run.exit_code == 1
    assert "no feed could be read" in run.output and "Traceback" not in run.output


def test_free_with_purchase_is_not_a_deal_at_the_other_products_price():
    """Issue 13: 'Pixel Buds 2a: Free w/ purchase of ...' was priced at the phone's $130."""
    rss = b"""<?xml version="1.0"?><rss version="2.0" xmlns:dealnews="http://www.dealnews.com/ns/"><channel>
    <item><title>Google Pixel Buds 2a: Free w/ purchase of a Pixel 10</title>
      <link>https://example.com/buds</link><dealnews:price>130.00</dealnews:price>
      <description>Get the buds free with the purchase of a Pixel 10 phone for $130 off.</description></item>
    <item><title>Anker 737 Power Bank for $59.99</title><link>https://example.com/anker</link>
      <description>24,000mAh, 140W.</description></item>
    </channel></rss>"""
    parsed = parse_feed(rss, "test")
    assert [d.title for d in parsed.deals] == ["Anker 737 Power Bank for $59.99"]
    assert [(s.code, s.title) for s in parsed.skipped] == [
        ("free_with_purchase", "Google Pixel Buds 2a: Free w/ purchase of a Pixel 10")]


def test_an_unclosed_tag_start_is_text_and_cheap():
    """A '<' that opens no tag is text: HTMLParser rescanned such starts (minutes on 200k characters
    of '<a <a <a', through a pasted description or a feed)."""
    assert clean_html("<a <a <a x") == "<a <a <a x"
    assert clean_html("<p>ok</p>" + "<b x='" * 5) == "ok\n" + "<b x='" * 5
    assert clean_html("<a " * 7_000) == ("<a " * 7_000).strip()


@pytest.mark.parametrize(("title", "free"), [
    ("Google Pixel Buds 2a: Free w/ purchase of a Pixel 10", True),
    ("Pixel Buds 2a Free w/ Pixel 10 Purchase", True),
    ("Pixel Buds 2a FREE with Pixel 10 purchase", True),
    ("Buy a Pixel 10, get Pixel Buds 2a free", True),
    ("Free Pixel Buds 2a when you buy a Pixel 10", True),
    ("Echo Dot free with Ring Video Doorbell purchase for $99", True),
    ("Tote bag free with $50 order", True),
    ("Free Pixel Buds 2a w/ purchase of Pixel 10", True),
    ("Get a free Echo Dot with purchase of a Ring Video Doorbell", True),
    ("Free Echo Dot with Ring Video Doorbell", True),
    ("Free shipping with Prime: Anker charger $19.99", False),
    ("Kettle for $25 + free shipping w/ $35", False),
    ("Socks: Buy 1, Get 1 Free at $9.99", False),
    ("Anker 737 charger for $59.99 + free shipping", False),
    ("Free-to-play headset bundle for $49", False),
])
def test_free_with_purchase_wordings(title, free):
    """Issue 13 tryout: only the exact 'Free w/ purchase of' wording was recognised."""
    assert free_with_purchase(title) is free
