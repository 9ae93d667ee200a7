"""The planning agent's loop and guards, with a scripted model and a recording toolbox."""

import json
from types import SimpleNamespace

from agents.chat.planner import PlanningAgent, Reply, ToolResult, ToolStep
from models.breaker import ModelBreaker
from models.llm import ChatResponse, FakeChatModel, Tool, ToolCall


class RecordingToolbox:
    def __init__(self):
        self.calls = []

    def tools(self):
        def estimate_price(description: str) -> str:
            """Estimate a product's worth."""

        def notify_user(opportunity_id: int) -> str:
            """Alert the user about a deal."""

        return [Tool.from_function(estimate_price), Tool.from_function(notify_user)]

    def call(self, name, arguments):
        self.calls.append((name, arguments))
        if arguments.get("description") == "boom":
            raise ValueError("description is empty")
        return ToolResult(text=f"{name} ok")


class FixedRouter:
    def __init__(self, tool, arguments=None):
        self.result = SimpleNamespace(tool=tool, arguments=arguments or {}, refusal=None)

    def route(self, message):
        return self.result


def call(name, **arguments):
    return ChatResponse(tool_calls=[ToolCall(id=f"c-{name}", name=name, arguments=arguments)])


def run(agent, message):
    return list(agent.run(message))


def test_native_tool_loop_round_trip():
    llm = FakeChatModel([call("estimate_price", description="a drill"), "It is worth about $80."])
    toolbox = RecordingToolbox()
    events = run(PlanningAgent(llm, toolbox, FixedRouter(None), native_tools=True), "value a drill")
    assert toolbox.calls == [("estimate_price", {"description": "a drill"})]
    steps = [e for e in events if isinstance(e, ToolStep)]
    assert [s.status for s in steps] == ["pending", "done"]  # a fresh event each, never mutated later
    assert steps[0] is not steps[1] and steps[1].result == "estimate_price ok"
    assert events[-1] == Reply(text="It is worth about $80.")
    tool_message = llm.requests[1]["messages"][-1]
    assert tool_message.role == "tool" and tool_message.tool_call_id == "c-estimate_price"
    assert "estimate_price ok" in tool_message.content


def test_notify_only_once_and_unknown_tools_refused():
    llm = FakeChatModel([
        call("notify_user", opportunity_id=1),
        call("notify_user", opportunity_id=2),
        call("delete_everything"),
        "done",
    ])
    toolbox = RecordingToolbox()
    events = run(PlanningAgent(llm, toolbox, FixedRouter(None), native_tools=True), "alert me")
    assert toolbox.calls == [("notify_user", {"opportunity_id": 1})]
    errors = [e.result for e in events if isinstance(e, ToolStep) and e.status == "error"]
    assert any("once per request" in e for e in errors)
    assert any("no tool called 'delete_everything'" in e for e in errors)


def test_step_limit_stops_a_looping_model():
    llm = FakeChatModel([call("estimate_price", description="x")] * 10)
    toolbox = RecordingToolbox()
    events = run(PlanningAgent(llm, toolbox, FixedRouter(None), native_tools=True, max_steps=3), "loop")
    assert len(toolbox.calls) == 3
    assert events[-1].failed
    assert events[-1].text.startswith("I stopped after 3 rounds of tool calls without reaching an answer.")
    assert "- estimate_price: estimate_price ok" in events[-1].text
    assert '"status"' not in events[-1].text and "{" not in events[-1].text  # sentences, not tool JSON


def test_the_step_limit_without_any_finished_tool_still_reads_as_a_sentence():
    llm = FakeChatModel([call("delete_everything")] * 2)
    events = run(PlanningAgent(llm, RecordingToolbox(), FixedRouter(None), native_tools=True, max_steps=2), "x")
    assert events[-1].text == ("I stopped after 2 rounds of tool calls without reaching an answer. "
                               "Try asking for one thing at a time.")


def test_routed_mode_runs_the_routed_tool_and_reports_errors():
    toolbox = RecordingToolbox()
    agent = PlanningAgent(FakeChatModel([]), toolbox, FixedRouter("estimate_price", {"description": "a drill"}),
                          native_tools=False)
    events = run(agent, "what is this worth: a drill")
    assert toolbox.calls == [("estimate_price", {"description": "a drill"})]
    assert events[-1].text == "estimate_price ok"
    agent.router = FixedRouter("estimate_price", {"description": "boom"})
    assert "description is empty" in run(agent, "boom")[-1].text


def test_small_talk_uses_the_model_and_survives_its_failure():
    agent = PlanningAgent(FakeChatModel(["Hello there!"]), RecordingToolbox(), FixedRouter(None),
                          native_tools=False)
    assert run(agent, "hi")[-1].text.startswith("Hello there!")
    agent.llm = FakeChatModel([])  # raises ProviderError: no reply left
    assert "what is this worth" in run(agent, "hi")[-1].text
    assert "what is this worth" in run(agent, "   ")[-1].text


def test_the_budget_counts_calls_not_rounds_and_allows_one_scan():
    """A hijacked model asking for 40 calls a round, scans among them (issue 16: 306 steps and 6
    scans in one answer, ending in raw JSON)."""
    class ScanToolbox(RecordingToolbox):
        def tools(self):
            def scan_deals() -> str:
                """Scan the feeds."""

            return [*super().tools(), Tool.from_function(scan_deals)]

    burst = ChatResponse(tool_calls=[ToolCall(id=f"c{i}", name="scan_deals" if i % 2 else "estimate_price",
                                              arguments={} if i % 2 else {"description": '{"x": "y'})
                                     for i in range(40)])
    toolbox = ScanToolbox()
    events = run(PlanningAgent(FakeChatModel([burst] * 50), toolbox, FixedRouter(None), native_tools=True),
                 "scan")
    started_and_ended = [e for e in events if isinstance(e, ToolStep)]  # two events per call
    assert len(started_and_ended) == 2 * 8 and [n for n, _ in toolbox.calls].count("scan_deals") == 1
    reply = events[-1]
    assert isinstance(reply, Reply) and reply.failed
    assert reply.text.startswith("I stopped at the step limit: 8 tool calls")
    assert '{"status"' not in reply.text and "- estimate_price: estimate_price ok" in reply.text


class DownModel(FakeChatModel):
    """A hosted model whose every request fails (e.g. its server answers 500)."""

    def __init__(self):
        super().__init__([], name="openai:gpt-4o-mini", supports_tools=True)


def test_a_failing_hosted_model_falls_back_to_the_router_and_says_so_once():
    toolbox = RecordingToolbox()
    agent = PlanningAgent(DownModel(), toolbox, FixedRouter("estimate_price", {"description": "a drill"}))
    first, second = run(agent, "what is this worth: a drill"), run(agent, "what is this worth: a drill")
    assert toolbox.calls == [("estimate_price", {"description": "a drill"})] * 2
    assert first[-1].text == ("(The language model failed: openai:gpt-4o-mini: no scripted reply left. The local "
                              "router answered instead.)\n\nestimate_price ok")
    assert second[-1].text == "estimate_price ok"  # said once per session


def test_a_hosted_model_answering_500_falls_back_to_the_router():
    """The recorded OpenAI exchange that fails on every try (issue 16: every message failed)."""
    from llm_replay import replay

    from models.openai_provider import OpenAIChatModel

    toolbox = RecordingToolbox()
    with replay("openai/server_error_persistent.json") as wire:
        llm = OpenAIChatModel("gpt-4o-mini", api_key="sk-test", base_url=wire.url("/v1"), max_retries=1)
        agent = PlanningAgent(llm, toolbox, FixedRouter("estimate_price", {"description": "a drill"}))
        assert agent.native_tools
        reply = run(agent, "what is this worth: a drill")[-1]
    assert toolbox.calls == [("estimate_price", {"description": "a drill"})]
    assert reply.text.startswith("(The language model failed: ") and reply.text.endswith("\n\nestimate_price ok")
    assert not reply.failed


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_dead_hosted_model_is_skipped_by_every_session_for_a_minute_then_tried_again():
    """Issue 16: each message paid a dead model's retries (3-21 s). One failure opens the breaker
    the app's sessions share; the note names the error's first line, not the upstream body."""
    from models.openai_provider import OpenAIChatModel
    from tests.servers import LoopbackServer, respond

    body = json.dumps({"error": {"message": "upstream exploded\n<html>stack trace of the proxy</html>"}})
    clock = Clock()
    breaker = ModelBreaker(open_s=60, clock=clock)
    with LoopbackServer() as server:
        server.route("/v1/chat/completions", respond(body.encode(), "application/json", status=500))
        llm = OpenAIChatModel("gpt-4o-mini", api_key="sk-test", base_url=server.url("/v1"), max_retries=0)
        router = FixedRouter("estimate_price", {"description": "a drill"})
        alice, bob = (PlanningAgent(llm, RecordingToolbox(), router, breaker=breaker) for _ in range(2))
        first = run(alice, "what is this worth: a drill")[-1].text
        asked = len(server.requests)
        assert asked >= 1 and first == ("(The language model failed: openai:gpt-4o-mini failed with HTTP 500: "
                                        "upstream exploded. The local router answered instead.)\n\nestimate_price ok")
        clock.now += 59
        assert run(alice, "what is this worth: a drill")[-1].text == "estimate_price ok"  # once per session
        assert run(bob, "what is this worth: a drill")[-1].text == first  # bob's first: his note too
        assert len(server.requests) == asked  # nobody waited for the dead model again
        clock.now += 2
        assert run(bob, "what is this worth: a drill")[-1].text == "estimate_price ok"
        assert len(server.requests) > asked  # after the minute the model is tried again


def test_small_talk_does_not_wait_for_a_model_known_to_be_down():
    breaker = ModelBreaker(clock=Clock())
    breaker.failed("openai:gpt-4o-mini could not reach api.openai.com")
    asked = []

    class CountedDownModel(DownModel):
        def chat(self, *args, **kwargs):
            asked.append(args)
            return super().chat(*args, **kwargs)

    agent = PlanningAgent(CountedDownModel(), RecordingToolbox(), FixedRouter(None), breaker=breaker)
    assert run(agent, "thanks!")[-1].text.endswith("\n\nYou're welcome! Paste another product any time and "
                                                   "I'll tell you what it's worth.")
    assert asked == []
