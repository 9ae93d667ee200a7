"""The one interface every agent uses to talk to an LLM, whatever the provider.

Adapters (models/*_provider.py) implement ChatModel; `structured` and `FakeChatModel` work on
top of any of them.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator
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


class ChatModel(Protocol):
    name: str  # "provider:model"

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


T = TypeVar("T", bound=BaseModel)


def structured(model: ChatModel, messages: list[Message], schema: type[T], **kwargs: Any) -> T:
    """Ask for output shaped like `schema` (a forced tool call), validate it, repair once."""
    tool = Tool.from_model(schema, name="answer")
    history = list(messages)
    for attempt in range(2):
        reply = model.chat(history, tools=[tool], tool_choice=tool.name, **kwargs)
        raw: Any = reply.tool_calls[0].arguments if reply.tool_calls else reply.content
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

    def __init__(self, replies: list[ChatResponse | str], name: str = "fake:scripted"):
        self.name = name
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []

    def chat(self, messages, *, tools=None, tool_choice="auto", temperature=0.0, max_tokens=None):
        self.requests.append({"messages": list(messages), "tools": tools, "tool_choice": tool_choice})
        if not self.replies:
            raise ProviderError(f"{self.name}: no scripted reply left")
        reply = self.replies.pop(0)
        return ChatResponse(content=reply, model=self.name) if isinstance(reply, str) else reply

    def stream(self, messages, *, temperature=0.0, max_tokens=None):
        yield from self.chat(messages, temperature=temperature, max_tokens=max_tokens).content
