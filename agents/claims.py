"""The retailer's claim: the regular or list price a deal's text says the product usually costs.

"$375 off the regular price of $1,249.99", "down from the $80 list price", "was $89", "list $299".
It is what the seller says, never the price paid (agents/deal_text.extract_price ignores these
amounts), and never evidence for our estimate: it is shown beside it, and a claimed discount far
larger than ours is said to be doubtful.
"""

from __future__ import annotations

import re

from models.types import Estimate, money

_AMOUNT = r"(?:US)?\$\s?(?P<amount>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)(?![\d,]*\d)"
# An amount the text names as the usual price, in the words deal sites use.
_CLAIMS = [re.compile(p, re.I) for p in (
    r"\b(?:regular|list|retail|original|usual|normal)\s+price\s*(?:of|is|:)?\s*" + _AMOUNT,
    r"\bdown\s+from\s+(?:the\s+|its\s+|a\s+)?" + _AMOUNT,
    r"\b(?:was|reg\.?|regularly|list|msrp|orig\.?|originally|compare\s+at|retails?\s+(?:for|at))\s*:?\s*"
    + _AMOUNT,
    _AMOUNT + r"\s+(?:regular|list|retail|original)\s+price\b",
)]
# "$200 off its regular price" with no regular price named: the claim is the price plus that.
_OFF_REGULAR = re.compile(_AMOUNT + r"\s+off\s+(?:the|its)\s+(?:regular|list|retail|original)\s+price\b"
                          r"(?!\s*(?:of|is|:)?\s*(?:US)?\$)", re.I)
# "That's a $111 savings", "a savings of $40": likewise the price plus the saving (not "85% savings").
_SAVINGS = [re.compile(p, re.I) for p in (_AMOUNT + r"\s+savings?\b", r"\bsavings\s+of\s+" + _AMOUNT)]
DOUBTFUL_RATIO = 2.0  # a claimed discount this many times ours (and $20 more) is said to be doubtful
DOUBTFUL_MARGIN = 20.0


def _value(match: re.Match[str]) -> float:
    return float(match.group("amount").replace(",", ""))


def claimed_price(text: str, price: float) -> float | None:
    """The regular price the text claims, or None. A claim at or below the price is no claim
    (the text named something else: a shipping minimum, a bundle's other part)."""
    found = [(m.start(), _value(m)) for pattern in _CLAIMS for m in pattern.finditer(text)]
    found = [(at, value) for at, value in found if value > price]
    if found:
        return min(found)[1]  # the first claim in the text
    off = next(filter(None, (pattern.search(text) for pattern in [_OFF_REGULAR, *_SAVINGS])), None)
    return round(price + _value(off), 2) if off else None


def claim_line(price: float, claimed: float | None, estimate: Estimate) -> str:
    """ "retailer says $1,249.99; we estimate $980.00 (likely $800.00–$1,150.00)", with a warning
    when the claimed discount is far larger than ours; "" without a claim."""
    if claimed is None:
        return ""
    ours = f"we estimate {money(estimate.value)}"
    if estimate.low is not None and estimate.high is not None:
        ours += f" (likely {money(estimate.low)}–{money(estimate.high)})"
    line = f"Retailer says {money(claimed)}; {ours}."
    claimed_off, our_off = claimed - price, max(estimate.value - price, 0.0)
    if claimed_off > DOUBTFUL_RATIO * our_off + DOUBTFUL_MARGIN:
        line += (f" The claimed saving of {money(claimed_off)} is far larger than ours "
                 f"({money(our_off)}): the regular price looks inflated.")
    return line
