"""Deterministic reading of deal text: HTML to plain text, the deal price, roundup detection,
and a product description with the deal's terms (prices, shipping, coupons) taken out.

Feed text is data only; nothing here interprets it beyond these patterns.
"""

from __future__ import annotations

import re

from agents.claims import claims_in

# --- prices -----------------------------------------------------------------------------------

_MONEY = re.compile(r"(?:US)?\$\s?(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?P<cents>\.\d{1,2})?(?![\d,]*\d)")
# "$375 off", "a $111 savings", "$10 back in rewards": amounts that are not the price.
_NOT_PRICE_AFTER = re.compile(
    r"^\s*(?:off\b|savings?\b|discount|back\b|credit|rebate|gift\s*card|in\s+(?:rewards|credit)"
    r"|or\s+more\b|minimum\b)", re.I)
# "regular price of $1,249.99", "down from $50", "free shipping w/ $39", "up to $230 off".
_NOT_PRICE_BEFORE = re.compile(
    r"(?:\b(?:regular(?:ly)?|list|reg\.?|orig(?:inal(?:ly)?)?|was|from|save|saving|savings\s+of"
    r"|over|with|orders?(?:\s+of)?|minimum(?:\s+of)?|spend|up\s+to|extra|by|under|msrp|value"
    r"|down|valued\s+at|worth|less\s+than|more\s+than|below|above|price\s+of|retail)"
    r"|\bw/)\s*[:\-]?\s*$", re.I)
# "for $875", "drops to $29", "priced at $7.46", "now $99", "only $5".
_PRICE_BEFORE = re.compile(
    r"\b(?:for|at|to|now|only|just|is|are|costs?|pay|price:?|priced|sells\s+for)\s*:?\s*$", re.I)


def _amount(match: re.Match[str]) -> float:
    return float(match.group("whole").replace(",", "") + (match.group("cents") or ""))


def _candidates(text: str) -> list[tuple[float, str]]:
    """Each dollar amount in the text with its role: 'price', 'neutral' or 'other'."""
    found = []
    claimed_at = {claim.start("amount") for claim in claims_in(text)}
    for match in _MONEY.finditer(text):
        before = text[max(0, match.start() - 40):match.start()]
        after = text[match.end():match.end() + 30]
        named_usual = any(match.start() <= at < match.end() for at in claimed_at)
        if named_usual or _NOT_PRICE_AFTER.search(after) or _NOT_PRICE_BEFORE.search(before):
            role = "other"
        elif _PRICE_BEFORE.search(before):
            role = "price"
        else:
            role = "neutral"
        found.append((_amount(match), role))
    return found


def extract_price(title: str, description: str = "") -> float | None:
    """The deal price named in the text, or None.

    In the title the first amount that reads as a price wins ("TV for $875: $375 off the regular
    price of $1,249.99" -> 875); a bare trailing amount counts ("Power Bank $39.99"). In the
    description only an amount introduced as a price counts ("priced at $7.46").
    """
    in_title = _candidates(title)
    for wanted in ("price", "neutral"):
        for value, role in in_title:
            if role == wanted:
                return value
    for value, role in _candidates(description):
        if role == "price":
            return value
    return None


_ROUNDUP = re.compile(
    r"\b(?:sales?|deals|event|clearance|savings|discounts|markdowns|doorbusters?|blowout)\b\s*[:!\u2013\-]"
    r"|\bdeals?\s+(?:on|at|from|under)\b|\bup\s+to\s+\d+\s*%|\b(?:site|store)wide\b", re.I)


# "Free w/ purchase of X", "FREE with Pixel 10 purchase", "Buy a Pixel 10, get Buds free", "Free Buds
# when you buy a Pixel 10", "Free Echo Dot with Ring Video Doorbell"; not a same-product BOGO ("Buy 1, get 1 free") nor "free shipping w/ $39".
_FREE_WITH_PURCHASE = re.compile(
    r"\bfree\s+(?:w/|with)\s*.{0,60}?\b(?:purchase|order|buy)\b"
    r"|\bbuy\s+(?!(?:one|1|two|2|three|3)\b).{0,80}?\bget\b.{0,60}?\bfree\b"
    r"|\bfree\b.{0,60}?\b(?:when|if)\s+you\s+(?:buy|purchase|order)\b"
    r"|\bfree\b.{0,60}?(?:\bw/|\bwith\b)\s*(?:the\s+|a\s+|any\s+)?purchase\b"
    r"|^(?:get\s+(?:a\s+)?)?free\s+(?!shipping|delivery|returns|pickup|trial)\w.{0,60}?\s(?:w/|with)\s+(?!\$)", re.I)


def free_with_purchase(title: str) -> bool:
    """ "Pixel Buds 2a: Free w/ purchase of a Pixel 10": the only price named is the other product's."""
    return bool(_FREE_WITH_PURCHASE.search(title))


def looks_like_roundup(title: str) -> bool:
    """A sale or collection of many products ("Target Home Furniture Sale: Up to 60% off")."""
    return bool(_ROUNDUP.search(title))


# --- product description ----------------------------------------------------------------------

_PRICE_TAIL = re.compile(
    r"\s*(?:[:\-\u2013,]\s*)?(?:\b(?:for|at|now|just|only)\s+)?(?:US)?\$\s?\d.*$", re.I)
_FREE_SHIPPING = re.compile(r"\s*\+\s*(?:free\s+)?shipping.*$", re.I)
_PRICE_HEAD = re.compile(r"^\s*(?:save\s+)?(?:US)?\$\s?[\d,.]+\s+(?:off\s+)?(?:on\s+)?(?:the\s+)?", re.I)
_DEAL_TERMS = re.compile(
    r"\$\s?\d|\d\s*%\s*(?:off|savings|less|back)|\b(?:shipping|coupon|promo|checkout|buy now|sale"
    r"|deals?|prices?|priced|savings?|discount\w*|rewards?|clearance|expires?|ends|off|pickup)\b", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")


def product_name(title: str) -> str:
    """The title without the deal's terms: "adidas Samoa Shoes for $29 + free shipping" -> "adidas Samoa Shoes"."""
    name = _FREE_SHIPPING.sub("", title)
    name = _PRICE_HEAD.sub("", name)
    name = _PRICE_TAIL.sub("", name)
    return name.strip(" :-\u2013,") or title.strip()


def product_description(title: str, body: str, max_chars: int = 1200) -> str:
    """What the product is, for the pricers: its name and the body's sentences that describe it,
    leaving out sentences about price, discounts, shipping or coupons."""
    name = product_name(title)
    kept = [name]
    for line in body.splitlines():
        for sentence in _SENTENCE.split(line):
            sentence = sentence.strip()
            if sentence and not _DEAL_TERMS.search(sentence) and sentence not in kept:
                kept.append(sentence)
    text = "\n".join(kept)
    return text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0]
