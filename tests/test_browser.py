"""The web page in a real headless Chromium (Debian's, driven by Playwright; no browser download):
a chat turn shows its tool step and answer, the Deals tab shows the scan's table, and markup in
feed titles and chat text is shown as text, never run. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from models.llm import FakeChatModel
from tests.running_app import running_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
HOSTILE = ["<img src=x onerror=alert(1)> Sony WH-1000XM5 Headphones $99",
           "<script>alert(2)</script> Logitech MX Master mouse $19",
           "Samsung QLED TV <img/src=x/onerror=alert(3)// $400"]
TIMEOUT_MS = 120_000  # a bound for a hang on a busy 2-core machine, not a timing; expect() too
expect.set_options(timeout=TIMEOUT_MS)

if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium: run scripts/test-deps.sh (`make test` does)", allow_module_level=True)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    feeds = ["traps.xml", "atom.xml", "hostile_titles.xml"]
    # The activity panel's timer is an hour: only what a click chains refreshes it during the tests.
    with running_app(tmp_path_factory.mktemp("browser"), feeds, FakeChatModel([]), activity_every_s=3600) as running:
        yield running


@pytest.fixture(scope="module")
def page(app):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.dialogs = []  # any alert() a page runs lands here

        def on_dialog(dialog) -> None:
            page.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(app.url)
        yield page
        browser.close()


def send(page, message: str) -> None:
    box = page.get_by_placeholder("Ask: what is this worth")
    box.fill(message)
    box.press("Enter")


def settled(page) -> None:
    """Wait for opening and closing animations to finish (for the screenshots)."""
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")


def bot_text(page) -> str:
    return page.locator(".bot").last.inner_text()


def test_chat_turn_shows_the_tool_step_and_the_answer(page):
    page.get_by_role("button", name="Scan for deals now").wait_for()  # the examples, before any turn
    page.screenshot(path=ARTIFACTS / "home.png", full_page=True)
    send(page, "what is this worth: Sony WH-1000XM5 headphones")
    step = page.locator(".thought-group").filter(
        has_text="estimate_price(description='Sony WH-1000XM5 headphones')")
    step.wait_for()
    page.get_by_text("Agents: forest $295.00, frontier $305.00").wait_for()
    assert "Worth about $300.00 (likely $260.00–$340.00)" in bot_text(page)
    expect(step.locator(".content")).to_have_count(0)  # open while it runs, folded once done
    settled(page)
    page.screenshot(path=ARTIFACTS / "chat.png", full_page=True)
    step.get_by_role("button").first.click()  # and opens to show the tool's result
    step.locator(".content").get_by_text("Worth about $300.00").wait_for()
    settled(page)
    page.screenshot(path=ARTIFACTS / "chat-step-open.png", full_page=True)


def test_markup_typed_into_the_chat_is_shown_as_text(page):
    send(page, "what is this worth: <img src=x onerror=alert(4)> Anker 737 charger")
    page.get_by_text("Worth about $120.00").last.wait_for()
    assert page.locator(".user").last.inner_text().strip().endswith("<img src=x onerror=alert(4)> Anker 737 charger")
    assert page.get_by_text("estimate_price(description='<img src=x onerror=alert(4)> Anker").count() == 1
    assert page.locator("img[src='x']").count() == 0
    assert page.dialogs == []


def test_scan_in_chat_lists_deals_with_feed_markup_as_text(page):
    send(page, "scan for deals now")
    page.get_by_text("Scan finished: 7 deals").last.wait_for()
    shown = bot_text(page)
    assert "6 opportunities" in shown
    for title in HOSTILE:
        assert title.removesuffix(" $19").removesuffix(" $99").removesuffix(" $400") in shown
    assert page.locator("img[src='x']").count() == 0
    page.screenshot(path=ARTIFACTS / "chat-scan.png", full_page=True)
    assert page.dialogs == []


def test_deals_tab_shows_the_table(page):
    page.get_by_role("tab", name="Deals").click()
    grid = page.get_by_role("grid", name="Opportunities")
    grid.get_by_text("Logitech MX Master 3S Wireless Mouse $69.99").wait_for()
    assert grid.get_attribute("aria-rowcount") == "7"  # the header and six deals

    def row(r: int) -> list[str]:
        return [grid.get_by_test_id(f"cell-{r}-{c}").inner_text().strip() for c in range(8)]

    assert row(0)[1:6] == [HOSTILE[2], "400", "1200", "1,000–1,400", "800"]  # newest first
    assert [row(r)[1] for r in (1, 2)] == [HOSTILE[1], HOSTILE[0]]
    assert row(0)[7] == "example.com ↗"
    link = grid.get_by_test_id("cell-0-7").get_by_role("link")
    assert link.get_attribute("href") == "https://example.com/deals/hostile-raw"
    page.screenshot(path=ARTIFACTS / "deals.png", full_page=True)

    grid.get_by_test_id("cell-2-1").click()  # a row's evidence, its title still text
    page.get_by_role("heading", name=HOSTILE[0]).wait_for()
    page.get_by_text("Worth about $300.00").last.wait_for()
    page.screenshot(path=ARTIFACTS / "deals-evidence.png", full_page=True)
    assert page.locator("img[src='x']").count() == 0
    assert page.dialogs == []


def test_scan_now_refreshes_the_agent_activity_at_once(page):
    page.get_by_role("tab", name="Deals").click()
    activity = page.get_by_label("Agent activity")
    expect(activity).to_have_value(re.compile("dealscout.scanner: feed"))  # the chat's scan, on select
    before = activity.input_value().count("dealscout.scanner: feed")
    page.get_by_role("button", name="Scan now").click()
    expect(page.get_by_label("Status")).to_have_value(re.compile(r"\d+ deals, .* feeds"))
    more = re.compile(r"(?:[\s\S]*?dealscout\.scanner: feed){" + str(before + 1) + "}")  # this scan's too
    expect(activity).to_have_value(more)
    assert page.dialogs == []


def test_price_tab_shows_each_agent_and_explains_bad_input(page):
    page.get_by_role("tab", name="Price").click()
    description = page.get_by_label("Product description")
    description.fill("Samsung 65 inch QLED 4K smart TV")
    page.get_by_role("button", name="Estimate").click()
    grid = page.get_by_role("grid").filter(has_text="ensemble (final)")
    grid.wait_for()
    final = [grid.get_by_test_id(f"cell-2-{c}").inner_text().strip() for c in range(3)]
    assert final == ["ensemble (final)", "1200", "1,000.00 – 1,400.00"]
    page.get_by_text("Agents: forest $1,195.00, frontier $1,205.00").wait_for()
    settled(page)
    page.screenshot(path=ARTIFACTS / "price.png", full_page=True)

    description.fill("   ")
    page.get_by_role("button", name="Estimate").click()
    toast = page.get_by_test_id("toast-text")  # a clear message, not a traceback
    toast.wait_for()
    assert toast.inner_text().startswith("the description is empty")
    settled(page)
    page.screenshot(path=ARTIFACTS / "price-error.png")  # the toast is fixed: a viewport shot
