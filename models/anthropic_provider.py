"""ChatModel over the native `anthropic` SDK (Messages API).

Differences from the OpenAI shape handled here: the system prompt is a separate parameter, tool
calls and tool results are content blocks (`tool_use` / `tool_result`), tool results travel in a
user turn, and `max_tokens` is required. The SDK retries timeouts, 408/409/429/5xx and 529
(overloaded) with exponential backoff or the server's Retry-After.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic

from models.llm import (
    CallLog,
    ChatResponse,
    Message,
    ProviderError,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
    redact,
)

NOT_CONFIGURED = (
    "Anthropic is not configured: set DEALSCOUT_ANTHROPIC_API_KEY (or ANTHROPIC_API_KEY)"
)
DEFAULT_MAX_TOKENS = 1024


class AnthropicChatModel:
    supports_tools = True
    in_process = False

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
    ):
        if not api_key:
            raise ProviderError(NOT_CONFIGURED)
        self.name = f"anthropic:{model}"
        self.model = model
        self.timeout_s = timeout_s
        self.calls = CallLog(self.name)
        self._api_key = api_key
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
        )

    def chat(
        self,
        messages: list[Message],
        *,
        tools: list[Tool] | None = None,
        tool_choice: ToolChoice = "auto",
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> ChatResponse:
        started = time.perf_counter()
        request = self._request(messages, temperature, max_tokens)
        if tools:
            request["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in tools
            ]
            request["tool_choice"] = choice_spec(tool_choice)
        with self._errors():
            reply = self._client.messages.create(**request)
        text = "".join(block.text for block in reply.content if block.type == "text")
        calls = [
            ToolCall(id=block.id, name=block.name, arguments=dict(block.input))
            if isinstance(block.input, dict)
            else ToolCall(id=block.id, name=block.name, raw_arguments=str(block.input))
            for block in reply.content
            if block.type == "tool_use"
        ]
        usage = Usage(input_tokens=reply.usage.input_tokens, output_tokens=reply.usage.output_tokens)
        record = self.calls.add(usage, started)
        return ChatResponse(
            content=text, tool_calls=calls, usage=usage, latency_s=record.latency_s, model=reply.model
        )

    def stream(
        self, messages: list[Message], *, temperature: float = 0.0, max_tokens: int | None = None
    ) -> Iterator[str]:
        started = time.perf_counter()
        first_at: float | None = None
        usage = Usage()
        request = self._request(messages, temperature, max_tokens)
        with self._errors():
            for event in self._client.messages.create(**request, stream=True):
                if event.type == "message_start":
                    usage.input_tokens = event.message.usage.input_tokens
                elif event.type == "message_delta":
                    usage.output_tokens = event.usage.output_tokens
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    first_at = first_at or time.perf_counter()
                    yield event.delta.text
        self.calls.add(usage, started, first_at)

    def _request(
        self, messages: list[Message], temperature: float, max_tokens: int | None
    ) -> dict[str, Any]:
        system, turns = split_messages(messages)
        # No temperature: API version 2026-10-21 (what SDK 2.x speaks) refuses sampling parameters.
        request: dict[str, Any] = {
            "model": self.model,
            "messages": turns,
            "max_tokens": max_tokens or DEFAULT_MAX_TOKENS,
        }
        if system:
            request["system"] = system
        return request

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turns SDK exceptions into one ProviderError line that is safe to show."""
        try:
            yield
        except anthropic.AnthropicError as err:
            raise ProviderError(redact(self._describe(err), [self._api_key])) from None

    def _describe(self, err: anthropic.AnthropicError) -> str:
        if isinstance(err, anthropic.APITimeoutError):
            return f"{self.name} timed out after {self.timeout_s:g} s (retries included)"
        if isinstance(err, anthropic.APIConnectionError):
            return f"{self.name} could not reach the Anthropic API: {err}"
        if isinstance(err, anthropic.AuthenticationError):
            return f"{self.name} rejected the API key (401: {_detail(err)}); check DEALSCOUT_ANTHROPIC_API_KEY"
        if isinstance(err, anthropic.RateLimitError):
            return f"{self.name} is rate limited (429), retries did not help: {_detail(err)}"
        if isinstance(err, anthropic.NotFoundError):
            return f"{self.name}: not found (404), is the model name right? {_detail(err)}"
        if isinstance(err, anthropic.APIStatusError):
            return f"{self.name} failed with HTTP {err.status_code}: {_detail(err)}"
        return f"{self.name} failed: {err}"


def _detail(err: anthropic.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        inner = body["error"]
        return f"{inner.get('type', 'error')}: {inner.get('message', '')}"
    return str(err.message)


def split_messages(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """System text apart; the rest as alternating turns of content blocks (same-role turns merged,
    as the API wants parallel tool results in one user turn)."""
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = content_blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def content_blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": message.content}
        ]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    blocks += [
        {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        for call in message.tool_calls
    ]
    return blocks


def choice_spec(choice: ToolChoice) -> dict[str, Any]:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}
