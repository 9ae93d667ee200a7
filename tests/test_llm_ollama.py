"""Ollama adapter against recorded /api/chat and /api/tags exchanges replayed on loopback
(no Ollama server exists here: the ollama package is a client only)."""

from __future__ import annotations

import socket

import pytest
from llm_replay import replay
from pydantic import BaseModel, Field

from models.llm import Message, ProviderError, Tool, structured
from models.ollama_provider import OllamaChatModel

PATH = "/api/chat"


def estimate_price(description: str) -> float:
    """Estimate what a product is worth in US dollars."""
    raise NotImplementedError  # only its signature is used


class Valuation(BaseModel):
    """What a product is worth."""

    price: float = Field(gt=0)
    currency: str = "USD"


def model(url: str, **kwargs) -> OllamaChatModel:
    options = {"timeout_s": 5.0, "max_retries": 2, "backoff_s": 0.01, **kwargs}
    return OllamaChatModel("llama3.2", host=url, **options)


ASK = [
    Message(role="system", content="You price products."),
    Message(role="user", content="What are Sony WH-1000XM5 headphones worth?"),
]


def test_tool_call_round_trip():
    tool = Tool.from_function(estimate_price)
    with replay("ollama/tool_round_trip.json") as wire:
        llm = model(wire.url())
        first = llm.chat(ASK, tools=[tool], max_tokens=64)
        call = first.tool_calls[0]
        history = ASK + [
            Message(role="assistant", tool_calls=[call]),
            Message(role="tool", tool_call_id=call.id, content="328.0"),
        ]
        second = llm.chat(history, tools=[tool])
        sent = wire.sent(PATH)
    assert call.name == "estimate_price"
    assert call.arguments == {"description": "Sony WH-1000XM5 wireless noise cancelling headphones"}
    assert (first.usage.input_tokens, first.usage.output_tokens) == (181, 33)
    assert second.content == "They are worth about $328."
    assert sent[0]["stream"] is False
    assert sent[0]["options"] == {"temperature": 0.0, "num_predict": 64}
    assert sent[0]["tools"][0]["function"]["name"] == "estimate_price"
    assistant, result = sent[1]["messages"][2:]
    assert assistant["tool_calls"] == [{"function": {"name": "estimate_price", "arguments": call.arguments}}]
    assert result == {"role": "tool", "content": "328.0", "tool_name": "estimate_price"}


def test_forced_tool_choice_constrains_format_to_the_schema():
    tool = Tool.from_function(estimate_price)
    with replay("ollama/forced_tool.json") as wire:
        reply = model(wire.url()).chat(ASK, tools=[tool], tool_choice="estimate_price")
        sent = wire.sent(PATH)[0]
    assert sent["format"] == tool.parameters and not sent.get("tools")
    assert "estimate_price" in sent["messages"][0]["content"]
    assert reply.tool_calls[0].name == "estimate_price"
    assert reply.tool_calls[0].arguments == {"description": "Apple AirPods Pro (2nd generation)"}


def test_structured_output_is_validated_and_repaired_once():
    with replay("ollama/structured_repair.json") as wire:
        answer = structured(model(wire.url()), ASK, Valuation)
        sent = wire.sent(PATH)
    assert answer == Valuation(price=42.5)
    assert sent[0]["format"] == Valuation.model_json_schema()
    assert "did not validate" in sent[1]["messages"][-1]["content"]


def test_streaming_yields_text_and_records_usage():
    with replay("ollama/stream.json") as wire:
        llm = model(wire.url())
        pieces = list(llm.stream(ASK))
        assert wire.sent(PATH)[0]["stream"] is True
    assert "".join(pieces) == "DealScout finds deals worth your money."
    record = llm.calls.last
    assert (record.usage.input_tokens, record.usage.output_tokens) == (26, 8)
    assert 0 < record.first_token_s <= record.latency_s


@pytest.mark.parametrize("recording", ["rate_limited_then_ok.json", "busy_then_ok.json"])
def test_retries_429_and_503_then_succeeds(recording):
    with replay(f"ollama/{recording}") as wire:
        reply = model(wire.url()).chat(ASK)
        assert len(wire.sent(PATH)) == 2 and wire.unused == 0
    assert reply.content == "OK"


def test_persistent_500_becomes_provider_error():
    with replay("ollama/server_error_persistent.json") as wire:
        with pytest.raises(ProviderError, match="HTTP 500: llama runner process has terminated"):
            model(wire.url(), max_retries=1).chat(ASK)
        assert len(wire.sent(PATH)) == 2


def test_streaming_retries_before_the_first_piece():
    with replay("ollama/busy_then_ok.json") as wire:
        assert "".join(model(wire.url()).stream(ASK)) == "OK"
        assert len(wire.sent(PATH)) == 2


def test_timeout_becomes_provider_error_after_retrying():
    with replay("ollama/slow.json") as wire:
        with pytest.raises(ProviderError, match="timed out after 0.3 s"):
            model(wire.url(), timeout_s=0.3, max_retries=1).chat(ASK)
        assert len(wire.sent(PATH)) == 2


def test_missing_model_says_how_to_pull_it():
    with replay("ollama/model_not_found.json") as wire:
        with pytest.raises(ProviderError, match="ollama pull llama3.2"):
            model(wire.url()).chat(ASK)
        assert len(wire.sent(PATH)) == 1  # a 404 is not retried


def test_lists_the_server_models():
    with replay("ollama/tags.json") as wire:
        assert model(wire.url()).list_models() == ["llama3.2:latest", "qwen2.5:0.5b"]


def test_no_server_is_a_clear_message():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProviderError, match=f"no Ollama server answers at http://127.0.0.1:{port}"):
        model(f"http://127.0.0.1:{port}").chat(ASK)
