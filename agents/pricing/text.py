"""What a pricer accepts: plain text cleaned from whatever a user or a feed gave.

A leaf: every pricer imports it, and it imports nothing of ours but models/text.py (the one HTML
reader, itself a leaf), so the registry in agents/pricing/__init__.py can import the pricers
without a cycle.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from models.text import clean_html

MAX_DESCRIPTION_CHARS = 4000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class DescriptionError(ValueError):
    """The description cannot be priced; the message says why."""


def clean_description(text: str) -> str:
    """Plain text from what a user or a feed gave: HTML dropped, whitespace folded, length capped."""
    if not isinstance(text, str):
        raise DescriptionError("the description must be text")
    text = text[: MAX_DESCRIPTION_CHARS * 50]  # a 10 MB paste is cut before any regex runs on it
    if "<" in text or "&" in text:
        text = clean_html(text)
    text = _CONTROL.sub(" ", text)
    text = " ".join(text.split())[:MAX_DESCRIPTION_CHARS]
    if not any(ch.isalnum() for ch in text):
        raise DescriptionError("the description is empty: say what the product is")
    return text


def clean_descriptions(texts: Sequence[str]) -> list[str]:
    return [clean_description(t) for t in texts]
