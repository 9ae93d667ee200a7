"""The Gradio app driven over loopback with gradio_client, as an API user or the web page would:
chat turns that call tools, the deals table after a scan, the price endpoints, errors, history,
and the launch command's guards (auth required for a share link; the API refuses strangers)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError, AuthenticationError
from typer.testing import CliRunner

import launch
from models.llm import FakeChatModel
from tests.running_app import StrictKeywordPricer, free_port, running_app

ROOT = Path(__file__).resolve().parents[1]
SMALL_TALK = "Hi! Happy hunting."
STARTUP_S = 300  # the app starting on a busy 2-core machine: a bound for a hang, not a timing


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    llm = FakeChatModel([SMALL_TALK])
    with running_app(tmp_path_factory.mktemp("app"), ["traps.xml", "atom.xml"], llm) as running:
        yield running


@pytest.fixture(scope="module")
def client(app) -> Client:
    return Client(app.url, verbose=False)


def chat(client: Client, message: str, history: list | None = None) -> list[dict]:
    box, messages = client.predict(message, history or [], api_name="/chat")
    assert box == ""  # the input box is cleared
    return messages


def text(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "\n".join(p.get("text", "") for p in content)


def steps(messages: list[dict]) -> list[dict]:
    return [m for m in messages if (m.get("metadata") or {}).get("title")]


def answer(messages: list[dict]) -> str:
    plain = [m for m in messages if m["role"] == "assistant" and not (m.get("metadata") or {}).get("title")]
    assert plain, messages
    return text(plain[-1])


def deal_rows(client: Client) -> list[list]:
    return client.predict(api_name="/deals")["data"]


def test_the_api_lists_its_endpoints(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/chat", "/price", "/estimate_price", "/scan_deals", "/deals"} <= set(named)
    assert not [name for name in named if name.startswith("/lambda")]  # nothing unnamed leaks out


def test_what_is_it_worth_shows_the_tool_step_and_a_dollar_answer(client):
    messages = chat(client, "what is this worth: Sony WH-1000XM5 headphones")
    assert text(messages[0]) == "what is this worth: Sony WH-1000XM5 headphones"
    [step] = steps(messages)
    assert "estimate_price" in step["metadata"]["title"] and "Sony WH-1000XM5" in step["metadata"]["title"]
    assert step["metadata"]["status"] == "done"
    reply = answer(messages)
    assert "Worth about $300.00" in reply and "$260.00–$340.00" in reply


def test_price_endpoints(client):
    table, why = client.predict("Sony WH-1000XM5 wireless headphones", api_name="/price")
    assert table["headers"] == ["agent", "estimate $", "likely range $"]
    assert table["data"][-1][:2] == ["ensemble (final)", 300.0]
    assert {row[0] for row in table["data"][:-1]} == {"forest", "frontier"}
    assert "$300.00" in why
    estimate = client.predict("Anker 737 charger", api_name="/estimate_price")
    assert (estimate["value"], estimate["low"], estimate["high"]) == (120.0, 55.0, 160.0)


def test_bad_input_is_a_clear_error(client):
    with pytest.raises(AppError, match="description is empty"):
        client.predict("   ", api_name="/estimate_price")
    with pytest.raises(AppError, match="description is empty"):
        client.predict("", api_name="/price")


def test_scan_in_chat_fills_the_deals_table(client, app):
    assert deal_rows(client) == []
    messages = chat(client, "scan for deals now")
    [step] = steps(messages)
    assert step["metadata"]["title"].endswith("scan_deals()")
    reply = answer(messages)
    assert "Scan finished: 4 deals" in reply and "3 opportunities" in reply
    assert "Samsung 65" in reply and "$325.00 below worth" in reply
    assert len(app.feeds.requests_to("/traps.xml")) == 1

    rows = deal_rows(client)
    by_title = {row[1].split()[0]: row for row in rows}
    assert sorted(by_title) == ["Logitech", "Samsung", "Sony"]  # the Anker charger fails the interval
    sony = by_title["Sony"]
    assert sony[2:6] == [248.0, 300.0, "260–340", 52.0]
    assert "example.com ↗" in sony[7] and "https://example.com/deals/sony-xm5" in sony[7]
    assert [row[0] for row in rows] == sorted((row[0] for row in rows), reverse=True)  # newest first

    again = client.predict(api_name="/scan_deals")
    assert "0 new" in again and "0 opportunities" in again
    assert len(deal_rows(client)) == 3


def test_best_deals_under_a_cap(client):
    messages = chat(client, "show me the best deals under $300")
    [step] = steps(messages)
    assert "list_opportunities" in step["metadata"]["title"] and "max_price=300" in step["metadata"]["title"]
    lines = answer(messages).splitlines()
    assert len(lines) == 2
    assert "Logitech MX Master 3S" in lines[0] and "$80.01 below worth" in lines[0]  # best saving first
    assert "Sony WH-1000XM5" in lines[1] and "Samsung" not in answer(messages)


def test_small_talk_calls_no_tool(client, app):
    messages = chat(client, "hello, how are you today?")
    assert steps(messages) == []
    assert answer(messages).startswith(SMALL_TALK)
    assert "what is this worth" in answer(messages)  # then says what it can do
    assert app.llm.requests[-1]["messages"][-1].content == "hello, how are you today?"


def test_a_tool_calling_model_sees_the_earlier_turns(tmp_path):
    """With a hosted-style model the planner calls tools natively and gets the chat so far."""
    llm = FakeChatModel([FakeChatModel.tool_call("estimate_price", description="Anker 737 charger"),
                         "It is worth about $120.", "You asked about the Anker charger."],
                        supports_tools=True)
    with running_app(tmp_path, ["traps.xml"], llm, llm_planner="openai:gpt-4o-mini") as app:
        client = Client(app.url, verbose=False)
        first = chat(client, "what is an Anker 737 worth?")
        assert "estimate_price" in steps(first)[0]["metadata"]["title"]
        assert answer(first) == "It is worth about $120."
        chat(client, "what did I ask?", history=first)
    seen = [(m.role, m.content) for m in llm.requests[-1]["messages"] if m.role in ("user", "assistant")]
    assert seen == [("user", "what is an Anker 737 worth?"), ("assistant", "It is worth about $120."),
                    ("user", "what did I ask?")]  # tool steps stay out of the history


class HeldPricer(StrictKeywordPricer):
    """Every estimate waits until the test releases it; `entered` counts the ones waiting."""

    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def estimate(self, description: str):
        self.entered.release()
        assert self.release.wait(timeout=120), "the test never released the pricer"
        return super().estimate(description)


def test_instant_turns_are_answered_while_other_sessions_slow_turns_run(tmp_path):
    """The chat ran two turns at a time: two slow ones (a scan, a page fetch, a hosted model)
    made every other session's greeting and deal list wait behind them. Now only the slow parts
    keep their own slots (one scan, the local model's one), and instant turns go through."""
    with running_app(tmp_path, ["traps.xml"], FakeChatModel([SMALL_TALK])) as app:
        held = HeldPricer()
        app.services.pricer = held  # each session's toolbox prices with it
        slow = [Client(app.url, verbose=False).submit(f"what is this worth: Sony WH-1000XM{n} headphones", [],
                                                      api_name="/chat") for n in (3, 4, 5)]
        for _ in slow:
            assert held.entered.acquire(timeout=120), "a price turn never started"
        quick = Client(app.url, verbose=False)
        try:
            assert answer(quick.submit("hello there", [], api_name="/chat").result(timeout=120)[1]).startswith(
                SMALL_TALK)
            assert answer(quick.submit("best deals", [], api_name="/chat").result(timeout=120)[1]).startswith(
                "No deals")
        finally:
            held.release.set()
        assert all("Worth about" in answer(job.result(timeout=120)[1]) for job in slow)


def test_gradio_does_not_summarise_every_event_it_kept_after_each_message(app, monkeypatch):
    """Gradio rebuilt a pandas table of up to 10,000 past events after every event, for a
    monitoring page the app does not serve (3-7 ms a message, more than a greeting's turn)."""
    from gradio.queueing import Queue

    tables = []
    get_df = Queue._get_df
    monkeypatch.setattr(Queue, "_get_df", staticmethod(lambda records: tables.append(1) or get_df(records)))
    client = Client(app.url, verbose=False)
    for message in ["hello there", "best deals", "thanks a lot", "best deals under $100"]:
        chat(client, message)
    assert len(tables) <= 1


# --- launch.py app: guards and auth ------------------------------------------------------------

@pytest.mark.parametrize("args", [["--share"], ["--mcp"], ["--share", "--mcp"], ["--host", "0.0.0.0"]])
def test_public_exposure_without_auth_is_refused(args):
    result = CliRunner().invoke(launch.app, ["app", *args])
    assert result.exit_code == 1
    assert "add --auth user:password" in result.output
    assert "Traceback" not in result.output


def test_auth_needs_user_and_password():
    result = CliRunner().invoke(launch.app, ["app", "--auth", "justaname", "--no-schedule"])
    assert result.exit_code == 1 and "--auth takes user:password" in result.output


@pytest.fixture(scope="module")
def app_with_auth(tmp_path_factory):
    """`launch.py app --auth` as a user runs it, on an empty data dir: nothing trained yet, so the
    scheduled scans stay off and the app still starts."""
    port, data = free_port(), tmp_path_factory.mktemp("auth")
    env = {**os.environ, "DEALSCOUT_DATA_DIR": str(data), "DEALSCOUT_FEEDS": "[]", "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    output = data / "app.log"  # a file, not a pipe nobody reads while the app runs
    with output.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "launch.py", "app", "--port", str(port), "--auth",
                                 "tester:s3cret"], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + STARTUP_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the app exited with {proc.returncode}:\n{output.read_text()[-3000:]}")
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the app did not start listening within {STARTUP_S} s:\n{output.read_text()[-3000:]}")
                time.sleep(0.25)
        yield url, output
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_auth_refuses_the_api_without_credentials(app_with_auth):
    url, _ = app_with_auth
    for path in ("config", "gradio_api/info"):
        assert httpx.get(url + path).status_code == 401
    refused = httpx.post(url + "gradio_api/call/estimate_price", json={"data": ["a drill"]})
    assert refused.status_code == 401
    with pytest.raises(AuthenticationError):
        Client(url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(url, auth=("tester", "wrong"), verbose=False)


def test_auth_lets_the_user_in_and_untrained_parts_say_so(app_with_auth):
    url, log = app_with_auth
    assert "scheduled scans are off: no pricing agent is built yet" in log.read_text()
    client = Client(url, auth=("tester", "s3cret"), verbose=False)
    with pytest.raises(AppError, match="no pricing agent is built yet"):
        client.predict("a cordless drill", api_name="/estimate_price")
    reply = answer(chat(client, "what is this worth: a cordless drill"))
    assert reply.startswith("I am not ready yet") and "launch.py train all" in reply
    assert client.predict(api_name="/deals")["data"] == []


def test_the_activity_panel_shows_every_agents_lines(tmp_path):
    """Issue 13: the panel listened to `agents` only, so feed outcomes and "notified via" lines
    (logged as dealscout.*) never showed."""
    import logging

    from agents.wiring import Services
    from models.config import Settings
    from ui.app import DealScoutApp

    ui = DealScoutApp(Services(Settings(data_dir=tmp_path, llm="local")))
    try:
        logging.getLogger("dealscout.scanner").info("feed traps.xml: 4 deals, 4 skipped")
        logging.getLogger("dealscout.messaging").info("notified via json: Sony WH-1000XM5")
        logging.getLogger("agents.workflow").info("scan: 1 feed read")
        text = ui.logs.text()
        assert "dealscout.scanner: feed traps.xml" in text and "notified via json" in text
        assert "agents.workflow: scan" in text
    finally:
        for name in ("agents", "dealscout"):
            logging.getLogger(name).removeHandler(ui.logs)
