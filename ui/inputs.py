"""What the app's Gradio functions accept from a browser or an API client: text that is text,
numbers that are finite and in range, a chat history that is a list of messages. Anything else
is refused with one sentence, never a traceback, a pydantic dump or raw exception text."""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

import gradio as gr
from gradio.components.chatbot import ChatbotDataMessages
from gradio.components.dataframe import DataframeData
from gradio.data_classes import GradioRootModel
from pydantic import ValidationError

_SURROGATE = re.compile(r"[\ud800-\udfff]")  # only lone ones: JSON's escaped pairs arrive joined


def text_input(value: Any, what: str) -> str:
    """`value` as text; a lone surrogate (valid JSON, not valid UTF-8) becomes U+FFFD."""
    if not isinstance(value, str):
        raise gr.Error(f"The {what} must be text.")
    return _SURROGATE.sub("\ufffd", value)


def number_input(value: Any, low: float, high: float) -> float | None:
    """`value` as a finite number from `low` to `high`, or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy's numbers too
        return None
    if not math.isfinite(value) or not low <= value <= high:
        return None
    return float(value)


class _AnyHistory(GradioRootModel):
    root: Any  # checked in ChatPanel.preprocess, where a refusal can be one sentence


class ChatPanel(gr.Chatbot):
    """Gradio's Chatbot; a history from an API client that is not a list of messages is refused
    in one sentence (Gradio's own check answers with a pydantic dump)."""

    data_model = _AnyHistory
    is_template = True  # the page draws it with Gradio's own Chatbot

    def preprocess(self, payload: _AnyHistory | None) -> Any:
        try:
            messages = ChatbotDataMessages.model_validate(payload.root if payload is not None else [])
        except ValidationError:
            raise gr.Error("The chat history must be a list of messages, each with a role and content.") from None
        return super().preprocess(messages)

    def api_info(self) -> dict[str, Any]:
        return ChatbotDataMessages.model_json_schema()


class _AnyTable(GradioRootModel):
    root: Any  # checked in DealTable.preprocess


class DealTable(gr.Dataframe):
    """Gradio's Dataframe; a table from an API client that is no table (null, text) is refused in
    one sentence (Gradio's own check answers with a pydantic dump)."""

    data_model = _AnyTable
    is_template = True

    def preprocess(self, payload: _AnyTable | None) -> Any:
        try:
            table = DataframeData.model_validate(payload.root if payload is not None else None)
        except ValidationError:
            raise gr.Error("The deals table must be a table: headers and rows.") from None
        return super().preprocess(table)

    def api_info(self) -> dict[str, Any]:
        return DataframeData.model_json_schema()
