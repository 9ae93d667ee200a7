"""ChatModel over the `openai` SDK: OpenAI itself, or any OpenAI-compatible server by base URL
(Ollama's /v1, `python -m llama_cpp.server`, vLLM, LM Studio ...).

The SDK does the retrying: timeouts, connection errors, 408/409/429/5xx, with exponential backoff
(0.5 s doubling, capped at 8 s, with jitter) or the server's Retry-After.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
from openai.types.chat import ChatCompletion

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
    "OpenAI is not configured: set DEALSCOUT_OPENAI_API_KEY (or OPENAI_API_KEY), or "
    "DEALSCOUT_OPENAI_BASE_URL for an OpenAI-compatible server"
)


class OpenAIChatModel:
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
        if not api_key and not base_url:
            raise ProviderError(NOT_CONFIGURED)
        self.name = f"openai:{model}"
        self.model = model
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.calls = CallLog(self.name)
        # Local OpenAI-compatible servers take any key; the SDK insists on one.
        self._api_key = api_key or "not-needed"
        self._client = openai.OpenAI(
            api_key=self._api_key,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
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
            request["tools"] = [tool_spec(t) for t in tools]
            request["tool_choice"] = choice_spec(tool_choice)
        with self._errors():
            completion = self._client.chat.completions.create(**request)
        try:  # the SDK does not validate a 200's body: a broken server's shape fails here
            message = self._message(completion)
            calls = [
                ToolCall.from_json(c.id, c.function.name, c.function.arguments)
                for c in message.tool_calls or []
                if c.type == "function"
            ]
            usage = Usage()
            if completion.usage:
                usage = Usage(
                    input_tokens=completion.usage.prompt_tokens,
                    output_tokens=completion.usage.completion_tokens,
                )
            reply = ChatResponse(content=message.content or "", tool_calls=calls, usage=usage,
                                 model=completion.model or self.model)
        except (AttributeError, TypeError, ValueError, IndexError) as err:
            raise ProviderError(f"{self.name} at {self.base_url or 'api.openai.com'} answered with "
                                f"a malformed chat completion ({type(err).__name__})") from None
        reply.latency_s = self.calls.add(usage, started).latency_s
        return reply

    def stream(
        self, messages: list[Message], *, temperature: float = 0.0, max_tokens: int | None = None
    ) -> Iterator[str]:
        started = time.perf_counter()
        first_at: float | None = None
        usage = Usage()
        request = self._request(messages, temperature, max_tokens)
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
        with self._errors():
            for chunk in self._client.chat.completions.create(**request):
                if chunk.usage:
                    usage = Usage(
                        input_tokens=chunk.usage.prompt_tokens,
                        output_tokens=chunk.usage.completion_tokens,
                    )
                piece = chunk.choices[0].delta.content if chunk.choices else None
                if piece:
                    first_at = first_at or time.perf_counter()
                    yield piece
        self.calls.add(usage, started, first_at)

    def _request(
        self, messages: list[Message], temperature: float, max_tokens: int | None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [message_spec(m) for m in messages],
            "temperature": temperature,
        }
        if max_tokens is not None:
            # OpenAI's newer models refuse `max_tokens`; compatible servers only know it.
            request["max_tokens" if self.base_url else "max_completion_tokens"] = max_tokens
        return request

    def _message(self, completion: Any) -> Any:
        """The reply's message, or a ProviderError when a server (or a proxy in front of it)
        answered 200 with something that is not a chat completion."""
        choices = getattr(completion, "choices", None) if isinstance(completion, ChatCompletion) else None
        message = getattr(choices[0], "message", None) if choices else None
        if message is None:
            got = type(completion).__name__ if not isinstance(completion, ChatCompletion) else "no choices"
            raise ProviderError(f"{self.name} at {self.base_url or 'api.openai.com'} answered with "
                                f"something that is not a chat completion ({got})")
        return message

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turns SDK exceptions into one ProviderError line that is safe to show."""
        try:
            yield
        except openai.OpenAIError as err:
            raise ProviderError(redact(self._describe(err), [self._api_key])) from None
        except json.JSONDecodeError as err:  # a body cut short, or not JSON, under a JSON header
            where = self.base_url or "api.openai.com"
            raise ProviderError(f"{self.name} at {where} sent a broken response (not valid JSON: "
                                f"{err.msg}, char {err.pos})") from None

    def _describe(self, err: openai.OpenAIError) -> str:
        where = self.base_url or "api.openai.com"
        if isinstance(err, openai.APITimeoutError):
            return f"{self.name} timed out after {self.timeout_s:g} s (retries included) at {where}"
        if isinstance(err, openai.APIConnectionError):
            return f"{self.name} could not reach {where}: {err}"
        if isinstance(err, openai.AuthenticationError):
            return f"{self.name} rejected the API key (401: {_detail(err)}); check DEALSCOUT_OPENAI_API_KEY"
        if isinstance(err, openai.RateLimitError):
            return f"{self.name} is rate limited (429), retries did not help: {_detail(err)}"
        if isinstance(err, openai.NotFoundError):
            return f"{self.name}: not found (404), is the model name right? {_detail(err)}"
        if isinstance(err, openai.APIStatusError):
            return f"{self.name} failed with HTTP {err.status_code}: {_detail(err)}"
        return f"{self.name} failed: {err}"


def _detail(err: openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(err.message)


def message_spec(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content}
    spec: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        spec["content"] = message.content or None
        spec["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": call.raw_arguments or json.dumps(call.arguments),
                },
            }
            for call in message.tool_calls
        ]
    return spec


def tool_spec(tool: Tool) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }


def choice_spec(choice: ToolChoice) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}
