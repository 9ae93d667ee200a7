"""ChatModel over the `ollama` SDK (native /api/chat), plus model listing for `llm check`.

Ollama has no tool-choice parameter, so a forced tool call is asked for with `format` set to the
tool's JSON schema (Ollama then constrains decoding to it) and returned as that tool's call.
The SDK does not retry: timeouts, 429 and 5xx are retried here with exponential backoff; a
refused connection is not (no server is running, retrying will not start one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import chain
from typing import Any, TypeVar

import httpx
import ollama
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from models.llm import (
    CallLog,
    ChatResponse,
    Message,
    ProviderError,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
    forced_tool,
    forced_tool_prompt,
)

T = TypeVar("T")


def is_transient(err: BaseException) -> bool:
    if isinstance(err, ollama.ResponseError):
        return err.status_code == 429 or err.status_code >= 500
    return isinstance(err, httpx.TimeoutException)


class OllamaChatModel:
    supports_tools = False  # the small models people run locally pick tools poorly
    in_process = False  # the Ollama server queues and runs its own calls

    def __init__(
        self,
        model: str,
        *,
        host: str = "http://127.0.0.1:11434",
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
    ):
        self.name = f"ollama:{model}"
        self.model = model
        self.host = host
        self.timeout_s = timeout_s
        self.calls = CallLog(self.name)
        self._client = ollama.Client(host=host, timeout=timeout_s)
        self._retrying = Retrying(
            stop=stop_after_attempt(max_retries + 1),
            wait=wait_exponential(multiplier=backoff_s, max=8.0),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )

    def list_models(self) -> list[str]:
        with self._errors():
            listing = self._retry(self._client.list)
        return [m.model for m in listing.models if m.model]

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
        forced = forced_tool(tools, tool_choice)
        if forced:
            request["format"] = forced.parameters
            request["messages"].insert(0, {"role": "system", "content": forced_tool_prompt(forced)})
        elif tools and tool_choice != "none":
            request["tools"] = [
                {"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}}
                for t in tools
            ]
        with self._errors():
            reply = self._retry(lambda: self._client.chat(**request))
        content = reply.message.content or ""
        if forced:
            calls = [ToolCall.from_json("call_0", forced.name, content)]
            content = ""
        else:
            calls = [
                ToolCall(id=f"call_{i}", name=c.function.name, arguments=dict(c.function.arguments))
                for i, c in enumerate(reply.message.tool_calls or [])
            ]
        usage = Usage(input_tokens=reply.prompt_eval_count or 0, output_tokens=reply.eval_count or 0)
        record = self.calls.add(usage, started)
        return ChatResponse(
            content=content,
            tool_calls=calls,
            usage=usage,
            latency_s=record.latency_s,
            model=reply.model or self.model,
        )

    def stream(
        self, messages: list[Message], *, temperature: float = 0.0, max_tokens: int | None = None
    ) -> Iterator[str]:
        started = time.perf_counter()
        first_at: float | None = None
        usage = Usage()
        request = self._request(messages, temperature, max_tokens)

        def open_stream() -> tuple[Any, Iterator[Any]]:
            # The request goes out on the first next(); retry up to there, never mid-answer.
            chunks = self._client.chat(**request, stream=True)
            return next(chunks, None), chunks

        with self._errors():
            first, chunks = self._retry(open_stream)
            for chunk in chain([first], chunks) if first is not None else []:
                if chunk.message.content:
                    first_at = first_at or time.perf_counter()
                    yield chunk.message.content
                if chunk.done:
                    usage = Usage(
                        input_tokens=chunk.prompt_eval_count or 0,
                        output_tokens=chunk.eval_count or 0,
                    )
        self.calls.add(usage, started, first_at)

    def _request(
        self, messages: list[Message], temperature: float, max_tokens: int | None
    ) -> dict[str, Any]:
        options: dict[str, Any] = {"temperature": temperature}
        if max_tokens is not None:
            options["num_predict"] = max_tokens
        return {"model": self.model, "messages": message_specs(messages), "options": options}

    def _retry(self, fn: Callable[[], T]) -> T:
        return self._retrying.copy()(fn)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turns SDK and transport exceptions into one ProviderError line that is safe to show."""
        try:
            yield
        except ollama.ResponseError as err:
            if err.status_code == 404:
                text = f"{self.name}: {err.error} (pull it first: `ollama pull {self.model}`)"
            else:
                text = f"{self.name} failed with HTTP {err.status_code}: {err.error}"
            raise ProviderError(text) from None
        except httpx.TimeoutException:
            raise ProviderError(
                f"{self.name} timed out after {self.timeout_s:g} s (retries included) at {self.host}"
            ) from None
        except (ConnectionError, httpx.TransportError):
            raise ProviderError(
                f"{self.name}: no Ollama server answers at {self.host} (is `ollama serve` running? "
                "set DEALSCOUT_OLLAMA_HOST if it runs elsewhere)"
            ) from None


def message_specs(messages: list[Message]) -> list[dict[str, Any]]:
    names_by_call_id: dict[str, str] = {}
    specs: list[dict[str, Any]] = []
    for message in messages:
        spec: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            spec["tool_calls"] = [
                {"function": {"name": c.name, "arguments": c.arguments}} for c in message.tool_calls
            ]
            names_by_call_id.update({c.id: c.name for c in message.tool_calls})
        if message.role == "tool" and message.tool_call_id in names_by_call_id:
            spec["tool_name"] = names_by_call_id[message.tool_call_id]
        specs.append(spec)
    return specs
