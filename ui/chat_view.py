"""How the chat shows a turn: tool steps as collapsible messages, text shown as text (never run
as markup), and the earlier turns a tool-calling model is given."""

from __future__ import annotations

import html
import re
from typing import Any

import gradio as gr

from agents.chat.planner import ToolStep
from models.llm import Message

_MARKUP = re.compile(r"<(?=[A-Za-z/!?])|&(?=#?\w+;)")


def shown_text(text: str) -> str:
    """Chat text is shown as typed or found: markup in it (feed titles, pasted pages) is shown as
    text, never run; Markdown still renders. Only a '<' that could open a tag and an '&' that
    could start an entity are escaped, so API clients get "AT&T, 5 < 10" as plain text."""
    return _MARKUP.sub(lambda m: html.escape(m.group()), text)


def argument_text(value: Any, shown: int = 40) -> str:
    """An argument as a step's title shows it; a text cut short says so ('…'), so it is not read
    as what the tool was given."""
    if isinstance(value, str):
        return repr(value if len(value) <= shown else value[:shown] + "…")
    return f"{value:g}" if isinstance(value, float) else str(value)


STEP_LIST_LINES = 10


def step_message(step: ToolStep) -> gr.ChatMessage:
    arguments = ", ".join(f"{k}={argument_text(v)}" for k, v in step.arguments.items())
    title = shown_text(f"🛠️ {step.name}({arguments})")
    status = "pending" if step.status == "pending" else "done"
    # The step shows the gist; the full text is the answer (or what the model makes of it). A
    # first line that is a heading ("You are watching:") is no gist without the lines it heads.
    lines = step.result.strip().split("\n")
    shown = lines[:STEP_LIST_LINES + 1] if lines[0].endswith(":") else lines[:1]
    body = "\n".join(line[:160] for line in shown) if step.status != "error" else f"❌ {step.result}"
    metadata: dict[str, Any] = {"title": title, "status": status}
    if status == "done":
        metadata["duration"] = round(step.seconds, 2)
    return gr.ChatMessage(role="assistant", content=shown_text(body) or "…", metadata=metadata)


def message_text(content: Any) -> str:
    """A chat turn's text; Gradio 6 hands content over as parts ({"type": "text", "text": ...})."""
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "\n".join(p.get("text") or "" for p in parts if isinstance(p, dict) and p.get("type") == "text")


def history_messages(history: list[dict[str, Any]]) -> list[Message]:
    """Earlier turns for a tool-calling model: the plain user and assistant texts (no tool steps)."""
    out = []
    for turn in history or []:
        role, text = turn.get("role"), message_text(turn.get("content")).strip()
        if role in ("user", "assistant") and text and not (turn.get("metadata") or {}).get("title"):
            out.append(Message(role=role, content=html.unescape(text)))
    return out[-12:]
