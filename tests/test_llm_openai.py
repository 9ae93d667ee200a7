"""OpenAI adapter against recorded chat.completions exchanges replayed on loopback."""

from __future__ import annotations

import json

import pytest
from llm_replay import replay
from pydantic import BaseModel, Field

from models.llm import Message, ProviderError, Tool, structured
from models.openai_provider import OpenAIChatModel

PATH = "/v1/chat/completions"
KEY = "sk-test-0123456789abcdefghijklmnopqrstuvwxyzABCDEFcdef"


def estimate_price(description: str) -> float:
    """Estimate what a product is worth in US dollars."""
    raise NotImplementedError  # only its signature is used


class Valuation(BaseModel):
    """What a product is worth."""

    price: float = Field(gt=0)
    currency: str = "USD"


def model(url: str, **kwargs) -> OpenAIChatModel:
    options = {"timeout_s": 5.0, "max_retries": 2, **kwargs}
    return OpenAIChatModel("gpt-4o-mini", api_key=KEY, base_url=url, **options)


ASK = [
    Message(role="system", content="You price products."),
    Message(role="user", content="What are Sony WH-1000XM5 headphones worth?"),
]


def test_tool_call_round_trip():
    tool = Tool.from_function(estimate_price)
    with replay("openai/tool_round_trip.json") as wire:
        llm = model(wire.url("/v1"))
        first = llm.chat(ASK, tools=[tool])
        call = first.tool_calls[0]
        assert call.name == "estimate_price"
        assert call.arguments == {"description": "Sony WH-1000XM5 wireless noise cancelling headphones"}
        assert first.usage.input_tokens == 96 and first.usage.output_tokens == 27
        history = ASK + [
            Message(role="assistant", tool_calls=[call]),
            Message(role="tool", tool_call_id=call.id, content="328.0"),
        ]
        second = llm.chat(history, tools=[tool])
        sent = wire.sent(PATH)
    assert second.content == "They are worth about $328." and not second.tool_calls
    assert sent[0]["tools"][0] == {"type": "function", "function": {
        "name": "estimate_price", "description": tool.description, "parameters": tool.parameters}}
    assert sent[0]["tool_choice"] == "auto"
    # The tool result goes back tied to the call, after the assistant turn that made it.
    assistant, result = sent[1]["messages"][2:]
    assert assistant["tool_calls"][0]["id"] == call.id
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == call.arguments
    assert result == {"role": "tool", "tool_call_id": call.id, "content": "328.0"}
    assert [r.latency_s > 0 for r in llm.calls.records] == [True, True]


def test_forced_tool_choice_names_the_function():
    with replay("openai/forced_tool.json") as wire:
        reply = model(wire.url("/v1")).chat(
            ASK, tools=[Tool.from_function(estimate_price)], tool_choice="estimate_price"
        )
        sent = wire.sent(PATH)[0]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "estimate_price"}}
    assert reply.tool_calls[0].arguments == {"description": "Apple AirPods Pro (2nd generation)"}


def test_structured_output_is_validated_and_repaired_once():
    with replay("openai/structured_repair.json") as wire:
        answer = structured(model(wire.url("/v1")), ASK, Valuation)
        sent = wire.sent(PATH)
    assert answer == Valuation(price=42.5)
    assert len(sent) == 2
    repair = sent[1]["messages"]
    assert "about forty dollars" in repair[-2]["content"]  # the model is shown its invalid output
    assert "did not validate" in repair[-1]["content"]


def test_streaming_yields_text_and_records_usage():
    with replay("openai/stream.json") as wire:
        llm = model(wire.url("/v1"))
        pieces = list(llm.stream(ASK))
        sent = wire.sent(PATH)[0]
    assert "".join(pieces) == "DealScout finds deals worth your money."
    assert len(pieces) == 8
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    record = llm.calls.last
    assert record.usage.input_tokens == 23 and record.usage.output_tokens == 8
    assert 0 < record.first_token_s <= record.latency_s


@pytest.mark.parametrize("recording", ["rate_limited_then_ok.json", "server_error_then_ok.json"])
def test_retries_429_and_500_then_succeeds(recording):
    with replay(f"openai/{recording}") as wire:
        reply = model(wire.url("/v1")).chat(ASK)
        assert len(wire.sent(PATH)) == 2 and wire.unused == 0
    assert reply.content == "OK"


def test_persistent_500_becomes_provider_error():
    with replay("openai/server_error_persistent.json") as wire:
        with pytest.raises(ProviderError, match="HTTP 500: The server had an error"):
            model(wire.url("/v1"), max_retries=1).chat(ASK)
        assert len(wire.sent(PATH)) == 2


def test_timeout_becomes_provider_error_after_retrying():
    with replay("openai/slow.json") as wire:
        with pytest.raises(ProviderError, match="timed out after 0.3 s"):
            model(wire.url("/v1"), timeout_s=0.3, max_retries=1).chat(ASK)
        assert len(wire.sent(PATH)) == 2


def test_rejected_key_is_never_shown():
    with replay("openai/invalid_key.json") as wire:
        with pytest.raises(ProviderError) as caught:
            model(wire.url("/v1")).chat(ASK)
        assert wire.headers(PATH)[0]["authorization"] == f"Bearer {KEY}"
    text = str(caught.value)
    assert "401" in text and "DEALSCOUT_OPENAI_API_KEY" in text
    assert KEY not in text and "cdef" not in text


def test_missing_key_is_a_clear_message():
    with pytest.raises(ProviderError, match="OpenAI is not configured: set DEALSCOUT_OPENAI_API_KEY"):
        OpenAIChatModel("gpt-4o-mini", api_key=None)


def test_compatible_server_needs_no_key():
    with replay("openai/rate_limited_then_ok.json") as wire:
        llm = OpenAIChatModel("llama3.2", api_key=None, base_url=wire.url("/v1"), max_retries=1)
        assert llm.chat(ASK, max_tokens=5).content == "OK"
        assert wire.sent(PATH)[0]["max_tokens"] == 5  # what compatible servers understand
