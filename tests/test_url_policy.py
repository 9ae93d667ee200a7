"""Issue 16, finding 1: feed URLs set in the Deals tab reached loopback ports ("Scan now" fetched
them and the activity panel told which ports answer). Every URL the app fetches now follows one
policy (agents/urls.py): public addresses only, unless DEALSCOUT_ALLOW_PRIVATE_FEEDS says so."""

from __future__ import annotations

from agents.wiring import Services
from models.config import Settings
from tests.running_app import FEEDS, free_port
from tests.servers import LoopbackServer, respond
from tests.test_workflow import KeywordPricer
from ui.app import DealScoutApp


def scan_with_feeds(tmp_path, feeds: list[str], **settings) -> tuple[DealScoutApp, list]:
    services = Services(Settings(_env_file=None, data_dir=tmp_path, notify_urls=[], **settings),
                        overrides={"pricer": KeywordPricer()})
    ui = DealScoutApp(services)
    assert f"{len(feeds)} feeds." in ui.apply_settings(50, "\n".join(feeds))
    report = services.pipeline.scan()
    services.memory.close()
    return ui, report.scan.feeds


def test_feeds_from_the_deals_tab_cannot_reach_loopback(tmp_path):
    with LoopbackServer() as server:
        server.route("/feed.xml", respond((FEEDS / "traps.xml").read_bytes(), "application/rss+xml"))
        closed = free_port()
        feeds = [server.url("/feed.xml"), f"http://localhost:{server.port}/feed.xml",
                 f"http://[::1]:{server.port}/feed.xml", f"http://127.0.0.1:{closed}/feed.xml"]
        _, outcomes = scan_with_feeds(tmp_path, feeds)
        assert server.requests_to("/feed.xml") == []
    assert [o.status for o in outcomes] == ["failed"] * 4
    messages = {o.message.split(": it", 1)[1] for o in outcomes}
    assert messages == {" is not a public internet address"}  # the same for an open and a closed port


def test_loopback_feeds_are_read_when_the_setting_allows_them(tmp_path):
    with LoopbackServer() as server:
        server.route("/feed.xml", respond((FEEDS / "traps.xml").read_bytes(), "application/rss+xml"))
        _, outcomes = scan_with_feeds(tmp_path, [server.url("/feed.xml")], allow_private_feeds=True)
        assert len(server.requests_to("/feed.xml")) == 1
    assert [o.status for o in outcomes] == ["ok"]
