"""In a real headless Chromium: a watch made in the chat is listed in the Watchlist tab, and a
deal's evidence shows its price-history chart. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from models.llm import FakeChatModel
from tests.running_app import running_app
from tests.test_browser import ARGS, ARTIFACTS, CHROMIUM, TIMEOUT_MS, send, settled

if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium: run scripts/test-deps.sh (`make test` does)", allow_module_level=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    ARTIFACTS.mkdir(exist_ok=True)
    with running_app(tmp_path_factory.mktemp("browser-watches"), ["traps.xml"], FakeChatModel([])) as app, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(app.url)
        yield page
        browser.close()


def test_a_watch_made_in_chat_is_listed_in_the_panel(page):
    send(page, "alert me when a Sony WH-1000XM5 drops under $250")
    page.locator(".thought-group").filter(has_text="watch_product(query='Sony WH-1000XM5', max_price=250)").wait_for()
    page.get_by_text("Watching #1 Sony WH-1000XM5 under $250.00").last.wait_for()
    page.get_by_role("tab", name="Watchlist").click()
    grid = page.get_by_role("grid", name="Your watches")
    grid.get_by_test_id("cell-0-1").get_by_text("Sony WH-1000XM5").wait_for()
    assert grid.get_by_test_id("cell-0-2").inner_text().strip() == "250"
    settled(page)
    page.screenshot(path=ARTIFACTS / "watchlist.png", full_page=True)


def test_a_deals_evidence_shows_its_price_history_chart(page):
    page.get_by_role("tab", name="Chat").click()
    send(page, "scan for deals now")
    page.get_by_text("Scan finished").last.wait_for()
    page.get_by_role("tab", name="Deals").click()
    grid = page.get_by_role("grid", name="Opportunities")
    grid.get_by_text("Sony WH-1000XM5 Wireless Noise Cancelling Headphones").first.click()
    page.get_by_text("Retailer says $399.99; we estimate $300.00").wait_for()
    page.get_by_text("Price history: First time seen.").first.wait_for()
    chart = page.locator(".js-plotly-plot")
    chart.first.wait_for()
    assert "Price history" in chart.first.inner_text()
    settled(page)
    page.screenshot(path=ARTIFACTS / "deals-price-history.png", full_page=True)


def test_explain_estimate_in_chat_shows_the_price_history_chart(page):
    page.get_by_role("tab", name="Chat").click()
    send(page, "explain the estimate for the sony headphones")
    page.locator(".bot").filter(has_text="Price history: First time seen.").last.wait_for()
    chart = page.locator(".bot .js-plotly-plot, .message .js-plotly-plot").last
    chart.wait_for()
    assert "Price history" in chart.inner_text()
    settled(page)
    page.screenshot(path=ARTIFACTS / "chat-price-history.png", full_page=True)
