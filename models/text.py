"""Numbers read out of free text: a model's answer ("about $1,299.99"), a deal's title.

The one home for "the number in this text"; a feed's *deal* price, which needs the dollar sign and
its context ("was $99", "save $20"), is read by agents/deal_text.extract_price instead.
"""

from __future__ import annotations

import math
import re

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")  # "$" and words around it are no part of the number


def numbers_in(text: str) -> list[float]:
    """Every number written in the text, in order ("1,299.99" -> 1299.99)."""
    return [float(n.replace(",", "")) for n in _NUMBER.findall(text or "")]


def first_amount(text: str) -> float | None:
    """The first number in a free-text answer, when it can be a price ("about $45" -> 45.0);
    None when there is none, or it is zero or too large to be finite."""
    match = _NUMBER.search(text or "")
    if not match:
        return None
    value = float(match.group().replace(",", ""))
    return value if math.isfinite(value) and value > 0 else None
