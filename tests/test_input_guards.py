"""Issue 16's attacks on the app's inputs, replayed on loopback: what an API client may send to
every Gradio function (null, wrong types, lone surrogates, 1e308, NaN) gets one clear sentence;
invalid price filters are said to be invalid; answers are text, not HTML entities; one traceback
per user-facing error in the server log."""

from __future__ import annotations

import json

import httpx
import pytest

from models.llm import FakeChatModel
from tests.running_app import running_app
from ui.app import DealScoutApp
from ui.deals_view import DEAL_COLUMNS


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("guards"), ["traps.xml"], FakeChatModel(["Hello!"] * 100)) as running:
        yield running


def call(app, api: str, *data) -> tuple[str, object]:
    """One raw API call as any HTTP client makes it (JSON escapes such as \\ud800 included): the
    event ('complete' or 'error') and its data."""
    body = json.dumps({"data": list(data)})  # ensure_ascii: a lone surrogate travels as \ud800
    started = httpx.post(f"{app.url}gradio_api/call/{api}", content=body,
                         headers={"content-type": "application/json"}, timeout=30)
    started.raise_for_status()
    stream = httpx.get(f"{app.url}gradio_api/call/{api}/{started.json()['event_id']}", timeout=60).text
    events = [line.removeprefix("event: ") for line in stream.splitlines() if line.startswith("event: ")]
    payloads = [line.removeprefix("data: ") for line in stream.splitlines() if line.startswith("data: ")]
    return events[-1], json.loads(payloads[-1])


def last_text(messages: list[dict]) -> str:
    content = messages[-1]["content"]
    return content if isinstance(content, str) else "\n".join(p.get("text", "") for p in content)


def test_a_null_message_or_a_history_that_is_no_list_gets_one_sentence(app):
    assert call(app, "chat", None, []) == ("error", {"error": "The chat message must be text.", "duration": 10,
                                                    "visible": True, "title": "Error"})
    for history in ("not a list", [1, 2], [{"role": "robot"}]):
        event, data = call(app, "chat", "hi", history)
        assert (event, data["error"]) == ("error", "The chat history must be a list of messages, each with a "
                                                   "role and content."), data


def test_a_lone_surrogate_is_cleaned_in_the_chat_and_the_price_tab(app):
    event, (_, messages, _) = call(app, "chat", "what is this worth: Sony \ud800 WH-1000XM5", [])
    assert event == "complete" and "Worth about $300.00" in last_text(messages)
    assert "Sony \ufffd WH-1000XM5" in last_text(messages[:1])
    event, (table, _) = call(app, "price", "Sony \ud800 WH-1000XM5")
    assert event == "complete" and table["data"][-1][:2] == ["ensemble (final)", 300.0]


@pytest.mark.parametrize("cap", ["$0", "$-5", "$1e308", "$inf", "$nan", "0 dollars", "-5 dollars", "-$5", "1e308",
                                 "$1e3", "$5,000,000"])
def test_an_invalid_price_filter_is_said_to_be_invalid(app, cap):
    event, (_, messages, _) = call(app, "chat", f"best deals under {cap}", [])
    assert event == "complete"
    assert last_text(messages).startswith(f"{cap} is not a price filter I can use"), last_text(messages)


def test_answers_are_text_not_html_entities(app):
    message = "what is this worth: Tom & Jerry's <3 AT&T Sony headphones, 5 < 10"
    _, (_, messages, _) = call(app, "chat", message, [])
    assert last_text(messages[:1]) == message
    assert message.split(": ", 1)[1][:40] + "…" in messages[1]["metadata"]["title"]  # cut short, and says so
    recorded = app.services.memory.turns(1)[0].steps[0].arguments
    assert recorded == {"description": message.split(": ", 1)[1]}  # the whole text was priced, '< 10' too


@pytest.mark.parametrize("message", ["help", "good morning, lovely weather today, is it not my friend?"])
def test_the_help_text_reaches_an_api_client_as_text(app, message):
    _, (_, messages, _) = call(app, "chat", message, [])
    assert "what is this worth: Sony WH-1000XM5 headphones" in last_text(messages)
    assert "&lt;" not in last_text(messages) and "&amp;" not in last_text(messages)


def test_one_traceback_per_user_facing_error(app, capfd):
    capfd.readouterr()
    assert call(app, "price", "   ")[0] == "error"
    assert capfd.readouterr().err.count("Traceback (most recent call last)") == 1


def test_numbers_from_the_deals_tab_are_checked_before_anything_changes(app):
    ui = DealScoutApp(app.services)
    assert ui.set_schedule(30, True).startswith("Scanning every 30 minutes")
    running = ui.scheduler
    try:
        for minutes in (1e308, float("nan"), float("inf"), -1, None, "5"):
            assert ui.set_schedule(minutes, True) == "Choose an interval from 1 to 10,080 minutes."
            assert ui.scheduler is running and running.running  # the schedule was left alone
    finally:
        ui.set_schedule(30, False)
    for bad in (1e300, float("nan"), float("inf"), -3, 2.5):
        assert ui.resend(bad) == "That is not a deal's id: select a deal in the table."
    pipeline = app.services.pipeline
    before = pipeline.threshold
    for bad in (float("nan"), float("inf"), -1, 1e308, None):
        assert ui.apply_settings(bad, "") == "The threshold must be a dollar amount from $0 to $1,000,000.00."
        assert pipeline.threshold == before


def test_a_table_click_the_page_never_sent_selects_nothing(app):
    import pandas as pd

    ui = DealScoutApp(app.services)
    rows = pd.DataFrame([[1, "deal"], [float("nan"), "broken"]], columns=["id", "deal"])
    for index in ("0", None, -1, 2, [], [True, 0], [1.5, 0], [1, 0]):
        assert ui.select_deal(index, rows) == (None, "Select a deal to see its evidence."), index
    assert ui.select_deal([0, 1], "not a table") == (None, "Select a deal to see its evidence.")
    assert ui.select_deal([0, 0], rows)[0] == 1
    assert ui.select_deal([1, 0], pd.DataFrame([[7, "a"], [9, "b"]]))[0] == 9  # an int64 column


@pytest.mark.parametrize(("api", "data", "sentence"), [
    ("list_opportunities", [None, float("nan")], "limit must be a whole number from 1 to 50."),
    ("list_opportunities", [None, float("inf")], "limit must be a whole number from 1 to 50."),
    ("list_opportunities", [None, "x"], "limit must be a whole number from 1 to 50."),
    ("list_opportunities", [None, 2.5], "limit must be a whole number from 1 to 50."),
    ("list_opportunities", [float("nan"), 5], "max_price is not a price filter I can use: give a dollar amount, "
                                              "like 200."),
    ("list_opportunities", ["x", 5], "max_price is not a price filter I can use: give a dollar amount, like 200."),
    ("list_opportunities", [-5, 5], "$-5 is not a price filter I can use: give a dollar amount above $0 and up "
                                    "to $1,000,000.00, like \"best deals under $200\"."),
    ("explain_estimate", [None], "The query must be text."),
])
def test_the_mcp_endpoints_check_their_inputs(app, api, data, sentence, capfd):
    capfd.readouterr()
    body = json.dumps({"data": data})  # NaN and Infinity as JavaScript writes them
    started = httpx.post(f"{app.url}gradio_api/call/{api}", content=body,
                         headers={"content-type": "application/json"}, timeout=30)
    stream = httpx.get(f"{app.url}gradio_api/call/{api}/{started.json()['event_id']}", timeout=60).text
    assert "event: error" in stream and json.loads(stream.split("data: ")[-1])["error"] == sentence, stream
    assert capfd.readouterr().err.count("Traceback (most recent call last)") == 1  # not a chained two


def test_a_table_select_with_no_table_gets_one_sentence(app):
    """The deals table's select event, as the page sends it, with a table that is none."""
    config = httpx.get(f"{app.url}config", timeout=30).json()
    pick = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "pick")
    table_id = next(d["inputs"][0] for d in config["dependencies"] if d.get("api_name") == "pick")
    assert next(c["type"] for c in config["components"] if c["id"] == table_id) == "dataframe"  # the page draws it

    def select(table):
        joined = httpx.post(f"{app.url}gradio_api/queue/join", timeout=30, json={
            "data": [table], "fn_index": pick, "session_hash": "pick-test", "event_data": {"index": [0, 0], "value": 1}})
        joined.raise_for_status()
        with httpx.stream("GET", f"{app.url}gradio_api/queue/data?session_hash=pick-test", timeout=60) as events:
            return next(json.loads(line[6:]) for line in events.iter_lines() if "process_completed" in line)

    for table in (None, "x", {"headers": None, "data": None}):
        assert select(table)["output"]["error"] == "The deals table must be a table: headers and rows."
    row = [999, "a deal", 10, 20, "", 10, "", "", "2026-01-01 00:00"]
    assert select({"headers": DEAL_COLUMNS, "data": [row]})["success"]  # a table that is one still selects
    event, (deals,) = call(app, "deals")
    assert event == "complete" and deals["headers"] == DEAL_COLUMNS
