"""The per-agent LLM settings reach the agents: DEALSCOUT_LLM_SCANNER rewrites deal descriptions,
DEALSCOUT_LLM_MESSAGING words the alerts, each through the real OpenAI adapter talking to an
OpenAI-compatible server on loopback; unset, the agents keep their plain path and ask nobody."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from agents.wiring import Services
from models.config import Settings
from models.types import Deal, Estimate, Opportunity
from tests.servers import Handler, LoopbackServer, respond

ATOM = (Path(__file__).parent / "fixtures" / "feeds" / "atom.xml").read_bytes()
REFINED = "Logitech MX Master 3S wireless mouse with an 8K DPI sensor and quiet clicks."
WORDED = "A quiet, precise mouse well under what it is worth."


def answers(arguments: dict) -> Handler:
    """An OpenAI-compatible /v1/chat/completions that calls the forced tool with `arguments`."""
    def handler(req: BaseHTTPRequestHandler) -> None:
        reply = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
                 "choices": [{"index": 0, "finish_reason": "stop", "message": {
                     "role": "assistant", "content": None, "tool_calls": [{
                         "id": "call_1", "type": "function",
                         "function": {"name": "answer", "arguments": json.dumps(arguments)}}]}}],
                 "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}
        respond(json.dumps(reply).encode(), "application/json")(req)
    return handler


@pytest.fixture
def server():
    with LoopbackServer() as server:
        server.route("/atom.xml", respond(ATOM, "application/atom+xml"))
        yield server


def services(tmp_path, server: LoopbackServer, **agent_llms: str) -> Services:
    # The default model names the same server: only the per-agent setting may make an agent ask it.
    settings = Settings(_env_file=None, data_dir=tmp_path, feeds=[server.url("/atom.xml")],
                        llm="openai:gpt-4o-mini", openai_base_url=server.url("/v1"), llm_max_retries=0,
                        allow_private_feeds=True, **agent_llms)
    return Services(settings, overrides={"pricer": object()})


def test_the_scanner_setting_makes_the_scanner_rewrite_descriptions(tmp_path, server):
    server.route("/v1/chat/completions", answers({"description": REFINED}))

    [plain] = services(tmp_path / "a", server).pipeline.scanner.scan([server.url("/atom.xml")]).deals
    assert plain.description != REFINED and not server.requests_to("/v1/chat/completions")

    wired = services(tmp_path / "b", server, llm_scanner="openai:gpt-4o-mini")
    [refined] = wired.pipeline.scanner.scan([server.url("/atom.xml")]).deals
    assert refined.description == REFINED
    assert (refined.price, refined.url) == (plain.price, plain.url)  # the feed's facts stay
    [request] = server.requests_to("/v1/chat/completions")
    assert "Logitech MX Master 3S" in json.loads(request.body)["messages"][1]["content"]


def test_the_messaging_setting_makes_alerts_worded_by_the_model(tmp_path, server):
    server.route("/v1/chat/completions", answers({"sentence": WORDED}))
    deal = Deal(title="Logitech MX Master 3S", description="Wireless mouse", price=69.99,
                url="https://example.com/mx", guid="mx")
    found = Opportunity(deal=deal, estimate=Estimate(agent="ensemble", value=129.0, low=110.0, high=150.0),
                        discount=59.01, reason="below estimate")

    plain = services(tmp_path / "a", server).messenger.compose(found)
    assert WORDED not in plain.body and not server.requests_to("/v1/chat/completions")

    worded = services(tmp_path / "b", server, llm_messaging="openai:gpt-4o-mini").messenger.compose(found)
    assert worded.body.splitlines()[0] == WORDED
    assert worded.body.splitlines()[1:] == plain.body.splitlines()  # the computed facts stay


class NoRouter:
    def route(self, message):
        raise AssertionError("a hosted model picks its tools itself; the router must not run")


def test_a_hosted_planner_picks_tools_natively_not_through_the_router(tmp_path, server):
    reply = {"id": "chatcmpl-2", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
             "choices": [{"index": 0, "finish_reason": "stop",
                          "message": {"role": "assistant", "content": "Which drill do you mean?"}}]}
    server.route("/v1/chat/completions", respond(json.dumps(reply).encode(), "application/json"))
    wired = services(tmp_path, server)
    wired.overrides["router"] = NoRouter()
    assert list(wired.planner().run("what is a drill worth?"))[-1].text == "Which drill do you mean?"
    [request] = server.requests_to("/v1/chat/completions")
    offered = {tool["function"]["name"] for tool in json.loads(request.body)["tools"]}
    assert {"estimate_price", "scan_deals", "list_opportunities", "explain_estimate"} <= offered


def test_a_dry_run_scan_uses_the_scanner_setting_too(tmp_path, server, monkeypatch):
    """`scan --dry-run` shows what a real scan would record: the same scanner, refined by the model."""
    from typer.testing import CliRunner

    import launch

    server.route("/v1/chat/completions", answers({"description": REFINED}))
    for name, value in {"DATA_DIR": str(tmp_path / "var"), "LLM_SCANNER": "openai:gpt-4o-mini",
                        "OPENAI_BASE_URL": server.url("/v1"), "LLM_MAX_RETRIES": "0",
                        "ALLOW_PRIVATE_FEEDS": "true"}.items():
        monkeypatch.setenv(f"DEALSCOUT_{name}", value)
    run = CliRunner().invoke(launch.app, ["scan", "--feed", server.url("/atom.xml"), "--dry-run", "--json"])
    assert run.exit_code == 0, run.output
    deals = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert REFINED in [deal.get("description") for deal in deals]
    assert len(server.requests_to("/v1/chat/completions")) >= 1
