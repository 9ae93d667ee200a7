"""The one interface every agent uses to talk to an LLM, whatever the provider.

Adapters (models/*_provider.py, chosen by models/providers.make_chat_model) implement ChatModel;
`structured` and `FakeChatModel` work on top of any of them. Every adapter:
- retries timeouts, 429 and 5xx with exponential backoff, then raises ProviderError, whose text
  is one line fit for the UI and never holds an API key (see `redact`);
- reports token usage and latency on each ChatResponse and keeps them for streams too, in its
  `calls` (a CallLog).
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, Protocol, TypeVar, get_type_hints

from pydantic import BaseModel, Field, ValidationError, create_model

Role = Literal["system", "user", "assistant", "tool"]
# "auto" lets the model decide, "none" forbids tools, "required" demands one; any other
# string names the one tool the model must call.
ToolChoice = str


class ProviderError(RuntimeError):
    """An LLM call failed in a way the user should be told about (no secrets in the text)."""


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    # The arguments text as the model sent it, kept only when it was not a JSON object, so that
    # `structured` can show the model its mistake instead of failing on an empty dict.
    raw_arguments: str | None = None

    @classmethod
    def from_json(cls, id: str, name: str, text: str | None) -> ToolCall:
        try:
            parsed = json.loads(text or "{}")
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return cls(id=id, name=name, arguments=parsed)
        return cls(id=id, name=name, raw_arguments=text or "")


class Message(BaseModel):
    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None  # for role="tool": the call this answers


class Tool(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object

    @classmethod
    def from_model(cls, model: type[BaseModel], name: str | None = None) -> Tool:
        doc = inspect.getdoc(model) or model.__name__
        return cls(name=name or model.__name__, description=doc, parameters=model.model_json_schema())

    @classmethod
    def from_function(cls, fn: Callable[..., Any]) -> Tool:
        """A tool from a plain typed function: its docstring describes it, its hints type it."""
        hints = get_type_hints(fn)
        fields: dict[str, Any] = {}
        for pname, param in inspect.signature(fn).parameters.items():
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[pname] = (hints.get(pname, str), default)
        args_model = create_model(f"{fn.__name__}_args", **fields)
        return cls(
            name=fn.__name__,
            description=inspect.getdoc(fn) or fn.__name__,
            parameters=args_model.model_json_schema(),
        )


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0


class ChatResponse(BaseModel):
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    model: str = ""


class CallRecord(BaseModel):
    """What one call cost: tokens, seconds, and for streams the wait for the first piece."""

    model: str
    usage: Usage
    latency_s: float
    first_token_s: float | None = None


class CallLog:
    """The recent calls of one model, newest last (bounded, so a long-running app stays small)."""

    def __init__(self, model: str, keep: int = 200):
        self.model = model
        self.records: deque[CallRecord] = deque(maxlen=keep)

    def add(self, usage: Usage, started: float, first_token_at: float | None = None) -> CallRecord:
        now = time.perf_counter()
        record = CallRecord(
            model=self.model,
            usage=usage,
            latency_s=now - started,
            first_token_s=None if first_token_at is None else first_token_at - started,
        )
        self.records.append(record)
        return record

    @property
    def last(self) -> CallRecord | None:
        return self.records[-1] if self.records else None

    def total(self) -> Usage:
        return Usage(
            input_tokens=sum(r.usage.input_tokens for r in self.records),
            output_tokens=sum(r.usage.output_tokens for r in self.records),
        )


_KEY_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{4,}|[A-Za-z0-9_\-]{32,})")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove API keys from a message meant for the user, also the partly masked forms
    providers echo back ("Incorrect API key provided: sk-ab***yz")."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _KEY_LIKE.sub("***", text)


class ChatModel(Protocol):
    """chat: one reply, which may call tools (tool_choice: "auto", "none", "required" or a tool's
    name, which forces that call). stream: the text of one reply, piece by piece, no tools.
    Failures raise ProviderError."""

    name: str  # "provider:model"
    supports_tools: bool  # picks tools itself well enough to drive the planner natively
    # generates in this process, on the CPUs every other request needs (the local default)
    in_process: bool

    def chat(
        self,
        messages: list[Message],
        *,
        tools: list[Tool] | None = None,
        tool_choice: ToolChoice = "auto",
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> ChatResponse: ...

    def stream(
        self, messages: list[Message], *, temperature: float = 0.0, max_tokens: int | None = None
    ) -> Iterator[str]: ...


def forced_tool(tools: list[Tool] | None, choice: ToolChoice) -> Tool | None:
    """The one tool a reply must call: the one `choice` names, or the only one when "required".
    For providers without a tool-choice parameter, which then constrain output to its schema."""
    if not tools or choice in ("auto", "none"):
        return None
    if choice == "required":
        return tools[0] if len(tools) == 1 else None
    for tool in tools:
        if tool.name == choice:
            return tool
    raise ProviderError(f"tool_choice names {choice!r}, which is not among the tools given")


def forced_tool_prompt(tool: Tool) -> str:
    return (
        f"Call the tool `{tool.name}`: {tool.description}\nReply with only the JSON object of its "
        f"arguments, matching this JSON schema: {json.dumps(tool.parameters)}"
    )


T = TypeVar("T", bound=BaseModel)


def structured(model: ChatModel, messages: list[Message], schema: type[T], **kwargs: Any) -> T:
    """Ask for output shaped like `schema` (a forced tool call), validate it, repair once."""
    tool = Tool.from_model(schema, name="answer")
    history = list(messages)
    for attempt in range(2):
        reply = model.chat(history, tools=[tool], tool_choice=tool.name, **kwargs)
        raw: Any = reply.content
        if reply.tool_calls:
            call = reply.tool_calls[0]
            raw = call.arguments if call.raw_arguments is None else call.raw_arguments
        try:
            if isinstance(raw, str):
                return schema.model_validate_json(raw)
            return schema.model_validate(raw)
        except (ValidationError, ValueError) as err:
            if attempt == 1:
                raise ProviderError(f"{model.name} gave output that does not fit {schema.__name__}: {err}") from err
            history += [
                Message(role="assistant", content=raw if isinstance(raw, str) else json.dumps(raw)),
                Message(
                    role="user",
                    content=f"That did not validate: {err}. Answer again with only valid JSON for the schema.",
                ),
            ]
    raise AssertionError("unreachable")


class FakeChatModel:
    """A scripted model for tests: replies in order, and records every request it saw."""

    supports_tools = False
    in_process = False

    def __init__(self, replies: list[ChatResponse | str], name: str = "fake:scripted", *,
                 supports_tools: bool = False, in_process: bool = False):
        self.name = name
        self.supports_tools = supports_tools
        self.in_process = in_process
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.calls = CallLog(name)

    @staticmethod
    def tool_call(name: str, call_id: str = "call_1", **arguments: Any) -> ChatResponse:
        """A scripted reply in which the model calls tool `name` with `arguments`."""
        return ChatResponse(tool_calls=[ToolCall(id=call_id, name=name, arguments=arguments)])

    def chat(self, messages, *, tools=None, tool_choice="auto", temperature=0.0, max_tokens=None):
        started = time.perf_counter()
        self.requests.append({"messages": list(messages), "tools": tools, "tool_choice": tool_choice})
        if not self.replies:
            raise ProviderError(f"{self.name}: no scripted reply left")
        reply = self.replies.pop(0)
        if isinstance(reply, str):
            reply = ChatResponse(content=reply)
        record = self.calls.add(reply.usage, started)
        return reply.model_copy(update={"model": reply.model or self.name, "latency_s": record.latency_s})

    def stream(self, messages, *, temperature=0.0, max_tokens=None):
        yield from self.chat(messages, temperature=temperature, max_tokens=max_tokens).content
