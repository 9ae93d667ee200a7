"""Anthropic adapter against recorded Messages API exchanges replayed on loopback."""

from __future__ import annotations

import pytest
from llm_replay import replay
from pydantic import BaseModel, Field

from models.anthropic_provider import AnthropicChatModel
from models.llm import Message, ProviderError, Tool, structured

PATH = "/v1/messages"
KEY = "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyzABCDEF-xyzAA"


def estimate_price(description: str) -> float:
    """Estimate what a product is worth in US dollars."""
    raise NotImplementedError  # only its signature is used


class Valuation(BaseModel):
    """What a product is worth."""

    price: float = Field(gt=0)
    currency: str = "USD"


def model(url: str, **kwargs) -> AnthropicChatModel:
    options = {"timeout_s": 5.0, "max_retries": 2, **kwargs}
    return AnthropicChatModel("claude-haiku-4-5", api_key=KEY, base_url=url, **options)


ASK = [
    Message(role="system", content="You price products."),
    Message(role="user", content="What are Sony WH-1000XM5 headphones worth?"),
]


def test_tool_use_round_trip():
    tool = Tool.from_function(estimate_price)
    with replay("anthropic/tool_round_trip.json") as wire:
        llm = model(wire.url())
        first = llm.chat(ASK, tools=[tool])
        call = first.tool_calls[0]
        history = ASK + [
            Message(role="assistant", content=first.content, tool_calls=[call]),
            Message(role="tool", tool_call_id=call.id, content="328.0"),
        ]
        second = llm.chat(history, tools=[tool])
        sent = wire.sent(PATH)
    assert first.content == "I'll estimate that for you."
    assert (call.id, call.name) == ("toolu_01A09q90qw90lq917835lq9", "estimate_price")
    assert call.arguments == {"description": "Sony WH-1000XM5 wireless noise cancelling headphones"}
    assert (first.usage.input_tokens, first.usage.output_tokens) == (412, 73)
    assert second.content == "They are worth about $328."
    # The system prompt travels apart; tools carry input_schema; no sampling parameters.
    assert sent[0]["system"] == "You price products."
    assert [m["role"] for m in sent[0]["messages"]] == ["user"]
    assert sent[0]["tools"] == [{"name": "estimate_price", "description": tool.description,
                                 "input_schema": tool.parameters}]
    assert sent[0]["tool_choice"] == {"type": "auto"} and "temperature" not in sent[0]
    # The call comes back as a tool_use block, its result as a tool_result block in a user turn.
    assistant, result = sent[1]["messages"][1:]
    assert assistant == {"role": "assistant", "content": [
        {"type": "text", "text": "I'll estimate that for you."},
        {"type": "tool_use", "id": call.id, "name": "estimate_price", "input": call.arguments}]}
    assert result == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": call.id, "content": "328.0"}]}
    assert wire.headers(PATH)[0]["anthropic-version"]


def test_forced_tool_choice_names_the_tool():
    with replay("anthropic/forced_tool.json") as wire:
        reply = model(wire.url()).chat(
            ASK, tools=[Tool.from_function(estimate_price)], tool_choice="estimate_price"
        )
        sent = wire.sent(PATH)[0]
    assert sent["tool_choice"] == {"type": "tool", "name": "estimate_price"}
    assert reply.tool_calls[0].arguments == {"description": "Apple AirPods Pro (2nd generation)"}
    assert reply.content == ""


def test_structured_output_is_validated_and_repaired_once():
    with replay("anthropic/structured_repair.json") as wire:
        answer = structured(model(wire.url()), ASK, Valuation)
        sent = wire.sent(PATH)
    assert answer == Valuation(price=42.5)
    assert sent[0]["tool_choice"] == {"type": "tool", "name": "answer"}
    repair = sent[1]["messages"]
    assert repair[-2]["role"] == "assistant" and "about forty dollars" in repair[-2]["content"][0]["text"]
    assert "did not validate" in repair[-1]["content"][0]["text"]


def test_streaming_yields_text_deltas_and_records_usage():
    with replay("anthropic/stream.json") as wire:
        llm = model(wire.url())
        pieces = list(llm.stream(ASK))
        assert wire.sent(PATH)[0]["stream"] is True
    assert pieces == ["DealScout", " finds deals", " worth your", " money."]
    record = llm.calls.last
    assert (record.usage.input_tokens, record.usage.output_tokens) == (25, 9)
    assert 0 < record.first_token_s <= record.latency_s


@pytest.mark.parametrize("recording", ["rate_limited_then_ok.json", "overloaded_then_ok.json"])
def test_retries_429_and_overload_then_succeeds(recording):
    with replay(f"anthropic/{recording}") as wire:
        reply = model(wire.url()).chat(ASK)
        assert len(wire.sent(PATH)) == 2 and wire.unused == 0
    assert reply.content == "OK"


def test_persistent_500_becomes_provider_error():
    with replay("anthropic/server_error_persistent.json") as wire:
        with pytest.raises(ProviderError, match="HTTP 500: api_error: Internal server error"):
            model(wire.url(), max_retries=1).chat(ASK)
        assert len(wire.sent(PATH)) == 2


def test_timeout_becomes_provider_error_after_retrying():
    with replay("anthropic/slow.json") as wire:
        with pytest.raises(ProviderError, match="timed out after 0.3 s"):
            model(wire.url(), timeout_s=0.3, max_retries=1).chat(ASK)
        assert len(wire.sent(PATH)) == 2


def test_rejected_key_is_never_shown():
    with replay("anthropic/invalid_key.json") as wire:
        with pytest.raises(ProviderError) as caught:
            model(wire.url()).chat(ASK)
        sent_headers = wire.headers(PATH)[0]
    assert KEY in (sent_headers.get("x-api-key", "") + sent_headers.get("authorization", ""))
    text = str(caught.value)
    assert "authentication_error" in text and "DEALSCOUT_ANTHROPIC_API_KEY" in text
    assert KEY not in text


def test_missing_key_is_a_clear_message():
    with pytest.raises(ProviderError, match="Anthropic is not configured: set DEALSCOUT_ANTHROPIC_API_KEY"):
        AnthropicChatModel("claude-haiku-4-5", api_key=None)
