"""The retailer's claim: the regular or list price a deal's text says the product usually costs.

"$375 off the regular price of $1,249.99", "down from the $80 list price", "was $89", "list $299",
"$20 off list", "50% off the list price". It is what the seller says, never the price paid
(agents/deal_text.extract_price skips every amount `claims_in` names), and never evidence for our
estimate: it is shown beside it, and a claimed discount far larger than ours is said to be doubtful.
"""

from __future__ import annotations

import re

from models.types import Estimate, money

_AMOUNT = r"(?:US)?\$\s?(?P<amount>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)(?![\d,]*\d)"
_USUAL = r"(?:regular|list|retail|original|usual|normal)"
# An amount the text names as the usual price, in the words deal sites use.
_CLAIMS = [re.compile(p, re.I) for p in (
    r"\b" + _USUAL + r"\s+price\s*(?:of|is|:)?\s*" + _AMOUNT,
    r"\bdown\s+from\s+(?:the\s+|its\s+|a\s+)?" + _AMOUNT,
    r"\b(?:was|reg\.?|regularly|list|msrp|orig\.?|originally|compare\s+at|retails?\s+(?:for|at))\s*:?\s*"
    + _AMOUNT,
    _AMOUNT + r"\s+" + _USUAL + r"\s+price\b",
)]
# "the previous model was $899 at launch": another product's price, or another time's.
_OTHER_PRODUCT_BEFORE = re.compile(
    r"\b(?:previous|last|older|prior|earlier|old)\s+(?:model|version|generation|gen)\b[^.;!?$]*$", re.I)
_OTHER_TIME_AFTER = re.compile(r"^\s*(?:at|on)\s+(?:launch|release)|^\s*when\s+(?:it\s+)?(?:launched|released|new)\b",
                               re.I)
_NO_AMOUNT_AFTER = r"(?!\s*(?:of|is|:)?\s*(?:US)?\$)"
# "$200 off its regular price", "$20 off list", "down $100 from the list price" with no regular
# price named: the claim is the price plus that.
_OFF_USUAL = [re.compile(p + _NO_AMOUNT_AFTER, re.I) for p in (
    _AMOUNT + r"\s+off\s+(?:the\s+|its\s+)?" + _USUAL + r"(?:\s+price)?\b",
    r"\bdown\s+" + _AMOUNT + r"\s+from\s+(?:the\s+|its\s+)?" + _USUAL + r"(?:\s+price)?\b",
)]
# "50% off the list price": the claim is the price over what is left (price / (1 - 0.5)).
_PERCENT_OFF_USUAL = re.compile(r"\b(?P<percent>\d{1,2}(?:\.\d+)?)\s*%\s+off\s+(?:the\s+|its\s+)?" + _USUAL
                                + r"(?:\s+price)?\b" + _NO_AMOUNT_AFTER, re.I)
# "That's a $111 savings", "a savings of $40": likewise the price plus the saving (not "85% savings").
_SAVINGS = [re.compile(p, re.I) for p in (_AMOUNT + r"\s+savings?\b", r"\bsavings\s+of\s+" + _AMOUNT)]
DOUBTFUL_RATIO = 2.0  # a claimed discount this many times ours (and $20 more) is said to be doubtful
DOUBTFUL_MARGIN = 20.0


def _value(match: re.Match[str]) -> float:
    return float(match.group("amount").replace(",", ""))


def claims_in(text: str) -> list[re.Match[str]]:
    """Each named usual price in the text ("regular price $1,249.99", "was $89"), in text order;
    agents/deal_text.extract_price never takes one of these amounts as the price."""
    found = [m for pattern in _CLAIMS for m in pattern.finditer(text)
             if not _OTHER_PRODUCT_BEFORE.search(text[max(0, m.start() - 60):m.start()])
             and not _OTHER_TIME_AFTER.search(text[m.end():m.end() + 30])]
    return sorted(found, key=lambda m: m.start("amount"))


def claimed_price(text: str, price: float) -> float | None:
    """The regular price the text claims, or None. A claim at or below the price is no claim
    (the text named something else: a shipping minimum, a bundle's other part)."""
    above = [_value(m) for m in claims_in(text) if _value(m) > price]
    if above:
        return above[0]  # the first claim in the text
    off = next(filter(None, (pattern.search(text) for pattern in [*_OFF_USUAL, *_SAVINGS])), None)
    if off:
        return round(price + _value(off), 2)
    percent = _PERCENT_OFF_USUAL.search(text)
    if percent and 0 < float(percent.group("percent")) < 100:
        return round(price / (1 - float(percent.group("percent")) / 100), 2)
    return None


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
