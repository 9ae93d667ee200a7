"""The daily digest through the real pipeline and a loopback apprise receiver: with it on, a scan
sends no push per deal; at its hour one notification carries the day's best deals and watch
matches, once, and a failed delivery is retried without queueing a second digest."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from agents.digest import DailyDigest
from agents.feeds import FeedFetcher
from agents.memory import Memory
from agents.messaging import MessagingAgent, Notifier
from agents.scanner import Scanner
from agents.watchlist import Watchlist
from agents.workflow import DealPipeline
from tests.servers import LoopbackServer, respond
from tests.test_workflow import FEEDS, KeywordPricer


@pytest.fixture
def world(tmp_path):
    with LoopbackServer() as server, Memory(tmp_path / "m.db") as memory, \
            FeedFetcher(validators=memory, timeout_s=5, attempts=1, allow_private=True) as fetcher:
        server.route("/hook", respond(b"ok"))
        server.route("/feed.xml", respond((FEEDS / "traps.xml").read_bytes(), "application/rss+xml"))
        messenger = MessagingAgent(memory, Notifier([f"json://127.0.0.1:{server.port}/hook"], attempts=1))
        watchlist = Watchlist(memory)
        pipeline = DealPipeline(Scanner(fetcher), memory, KeywordPricer(), messenger,
                                feeds=[server.url("/feed.xml")], threshold=50, notify_best=5,
                                lock_path=tmp_path / "scan.lock", watchlist=watchlist, digest=True)
        yield server, memory, pipeline, DailyDigest(memory, messenger, watchlist, hour=8, best=5)


def received(server) -> list[dict]:
    return [json.loads(r.body) for r in server.requests_to("/hook")]


def at(hour: int) -> datetime:
    return datetime.now().astimezone().replace(hour=hour, minute=5)


def test_one_digest_a_day_with_the_best_deals_and_watch_matches(world):
    server, memory, pipeline, digest = world
    pipeline.watchlist.add("", "Sony WH-1000XM5")
    pipeline.scan()
    assert received(server) == []  # no push per deal with the digest on
    digest.send(at(7))
    assert received(server) == []  # not its hour yet
    digest.send(at(8))
    [sent] = received(server)
    assert sent["title"] == "DealScout daily: 2 deals, 1 watch matches"
    body = sent["message"]
    assert "- Samsung 65\" Class QLED 4K Smart TV for $875 + free shipping: $875.00, worth about $1,200.00" in body
    assert "Your watches:\n- Sony WH-1000XM5: Sony WH-1000XM5 Wireless Noise Cancelling Headphones $248.00, " \
           "we estimate $300.00" in body
    assert memory.undecided_opportunities() == []  # the digest covered them
    digest.send(at(9))
    pipeline.scan()
    assert len(received(server)) == 1  # once a day, and scans still push nothing


def test_a_failed_digest_is_retried_not_queued_twice(world):
    server, memory, pipeline, digest = world
    pipeline.scan()
    server.route("/hook", respond(b"down", status=500))
    report = digest.send(at(8))
    assert report.failed == 1 and memory.counts()["notifications"] == 1
    server.route("/hook", respond(b"ok"))
    report = digest.send(at(10))
    assert report.delivered == 1 and memory.counts()["notifications"] == 1
    assert [r["title"] for r in received(server)][-1].startswith("DealScout daily: 2 deals")


def test_scan_once_sends_the_digest_when_one_is_due(tmp_path, monkeypatch):
    """`launch.py scan --once` with a digest hour saved sent nothing, ever: scans send no alert
    per deal then, and only the app's scheduler sent digests."""
    from typer.testing import CliRunner

    import agents.wiring
    import launch

    class Wired(agents.wiring.Services):
        def __init__(self, settings):
            super().__init__(settings)
            self.overrides.update(pricer=KeywordPricer(), pricers={"ensemble": KeywordPricer()}, embedder=None)

    with LoopbackServer() as server:
        server.route("/hook", respond(b"ok"))
        server.route("/feed.xml", respond((FEEDS / "traps.xml").read_bytes(), "application/rss+xml"))
        for name, value in {"DATA_DIR": str(tmp_path), "FEEDS": json.dumps([server.url("/feed.xml")]),
                            "NOTIFY_URLS": json.dumps([f"json://127.0.0.1:{server.port}/hook"]),
                            "ALLOW_PRIVATE_FEEDS": "true"}.items():
            monkeypatch.setenv(f"DEALSCOUT_{name}", value)
        monkeypatch.setattr(agents.wiring, "Services", Wired)
        from models.config import Settings

        services = Wired(Settings(_env_file=None))
        services.settings_store.save(digest_hour=0)  # due at any hour of today
        services.memory.close()
        result = CliRunner().invoke(launch.app, ["scan", "--once"])
        assert result.exit_code == 0, result.output
        titles = [sent["title"] for sent in received(server)]
        assert titles == ["DealScout daily: 2 deals, 0 watch matches"]
        assert CliRunner().invoke(launch.app, ["scan", "--once"]).exit_code == 0
        assert len(received(server)) == 1  # once a day
