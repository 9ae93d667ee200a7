"""The arguments the router gives a tool, read from the message by rules: price filters and
result limits, the product to value, and which found deal a notify or explain request names."""

from __future__ import annotations

import math
import re
from typing import Any

from agents.chat.settings_words import settings_arguments
from agents.chat.tools import MAX_PRICE_FILTER
from agents.chat.watch_words import WATCH_TOOLS, watch_arguments
from models.text import first_amount

QUERY_CHARS = 200  # a notify or explain query names a product; longer text is not one

URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`]+", re.I)
_LEAD_IN = re.compile(
    r"^(?:(?:hey|hi|hello|ok(?:ay)?|so|um+|hm+|yo|please|pls|plz|kindly|dealscout"
    r"|(?:could|can|would|will)\s+(?:you|u)(?:\s+(?:please|pls|kindly))?"
    r"|i(?:'d|\s+would)\s+like(?:\s+(?:you\s+)?to)?|i\s+(?:want|need)(?:\s+(?:you\s+)?to)?|go\s+ahead\s+and)\b[\s,!.:]*)+",
    re.I)
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "twenty": 20}
_UNIT = r"(?P<unit>\s*(?:dollars?|bucks|usd|euros?|eur|pounds|quid))?"
_NOT_MONEY = (r"(?!\s*(?:%|(?:percent|deals|items|results|offers|opportunities|bargains|days|hours|weeks|months|years)\b))")
_AMOUNT = r"(?P<amount>[$€£]?\s?\d[\d,]*(?:\.\d+)?\s?[kK]?(?![\w.])\s?[$€£]?)" + _UNIT + _NOT_MONEY
_CAP_WORDS = (r"(?:under|below|beneath|less\s+than|cheaper\s+than|at\s+most|max(?:imum)?|up\s+to|no\s+more\s+than"
              r"|not\s+over|within|budget(?:\s+of)?|<=?|≤)\s*:?\s*")
_CAP_BEFORE = re.compile(_CAP_WORDS + _AMOUNT, re.I)
# Any amount written after a cap word, also one no price can meet or that is no plain number
# ("0 dollars", "-$5", "$-5", "1e308", "$1e3", "$inf", "$nan"): it is said to be unusable, never dropped.
_WRITTEN_CAP = re.compile(
    _CAP_WORDS + r"(?P<amount>(?:[-−]|minus\s)?\s?[$€£]?\s?[-−]?\s?(?:\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?|\.\d+)"
    r"(?:\s?[kK])?(?![\w.])\s?[$€£]?|(?:[-−]|minus\s)?\s?[$€£]?\s?[-−]?\s?(?:inf(?:inity)?|nan)(?![\w.]))"
    + _UNIT + _NOT_MONEY, re.I)
_CAP_AFTER = re.compile(_AMOUNT + r"\s*(?:or\s+less|or\s+under|max(?:imum)?|tops|and\s+under)\b", re.I)
_LIMIT = re.compile(
    r"\btop\s+(?P<a>\d{1,2}|[a-z]+)\b|\b(?P<b>\d{1,2}|[a-z]+)\s+(?:best\s+|top\s+|cheapest\s+|good\s+|biggest\s+)?"
    r"(?:deals|opportunities|offers|bargains|finds)\b", re.I)
_ID = re.compile(r"(?:\b(?:deal|opportunity|opp|notification|alert|item|number|no\.?|id)\s*#?\s*|#\s*)(?P<id>\d{1,9})\b", re.I)
_NOTIFY_VERB = re.compile(
    r"^(?:keep\s+me\s+(?:posted|updated|informed)|(?:re-?)?(?:notify|alert|ping|text|e-?mail|message|remind|send|push)"
    r"(?:\s+(?:me|us))?(?:\s+(?:a|an|the))?(?:\s+(?:push\s+)?(?:alert|notification|notice|message|email|text|push)s?)?(?:\s+again)?)\b",
    re.I)
_DESTINATION = re.compile(r"^(?:to|via|by)\s+(?:my\s+)?(?:phone|e-?mail|inbox|telegram|slack|pushover|sms|text)\b", re.I)
_ABOUT = re.compile(r"^(?:about|on|for|regarding|re:?|abt|of)\b\s*", re.I)
_ABOUT_ANYWHERE = re.compile(r"\b(?:about|regarding|abt)\s+(?P<rest>.+)$", re.I)
_DETERMINERS = re.compile(r"^(?:(?:the|that|this|these|those|a|an|my|your)\s+)+", re.I)
_TRAILING = re.compile(r"(?:[\s,.!?;:]|\b(?:deals?|offers?|please|pls|again|now|thanks)\b)+$", re.I)
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
             "eighth": 8, "ninth": 9, "tenth": 10, "last": -1}
# "the second deal", "the 2nd one", "the last one": a place in the list of deals the chat showed.
_PLACE = re.compile(r"(?:the\s+)?(?:(?P<word>first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last)"
                    r"|(?P<number>\d{1,2})(?:st|nd|rd|th))(?:\s+(?:one|deal|opportunity|offer|item|result|find|bargain))?",
                    re.I)
_EXPLAIN_VERB = re.compile(r"^(?:explain|break\s*down)\s+", re.I)
# "explain the Sony deal": a found deal named by its product.
_EXPLAIN_DEAL = re.compile(r"^(?:explain|break\s*down)\s+(?:the\s+|that\s+|this\s+)?"
                           r"(?P<q>(?!(?:why|how|what|which|your|my|the|that|this|it)\b)[^?]{1,80}?)"
                           r"\s+(?:deal|offer|opportunity)\W*$", re.I)
_EXPLAIN_TARGET = re.compile(r"\b(?:estimate|valuation|price|value|number|appraisal)\s+(?:for|of|on)\s+(?P<q>.+)$", re.I)
_DESCRIPTION_FORMS = [re.compile(p, re.I) for p in (
    r"^how\s+much\s+(?:is|are)\s+(?P<d>.+?)\s+worth\W*$",
    r"^how\s+much\s+(?:does|do|would|should|will|might)\s+(?P<d>.+?)\s+(?:cost|go\s+for|sell\s+for|be\s+worth|be)\W*$",
    r"^how\s+much\s+should\s+i\s+pay\s+for\s+(?P<d>.+?)\W*$",
    r"^what(?:'s|s|\s+is)\s+(?P<d>.+?)\s+worth\W*$",
    r"^(?:estimate|guess|tell\s+me)\s+the\s+(?:value|price|worth)\s+of\s+(?P<d>.+?)\W*$",
    r"^(?:the\s+)?(?:value|price|worth)\s+of\s+(?P<d>.+?)\W*$",
    r"^(?:value|price|appraise|estimate)\s+(?:this|these|it)?\s*(?:for\s+me)?\s*(?P<d>.+?)\s*$",
    r"^how\s+much\s+(?:is|are|does|do)\s+(?P<d>.+?)(?:\s+cost)?\W*$",
)]
_NOTHING_NAMED = re.compile(r"(?:(?:this|that|it|these|those|the)\s*)?(?:one|item|thing|product)?")
# "what is this worth: <description>": an instruction of a few words, a separator, then the thing.
_INSTRUCTION = re.compile(r"^(?P<head>[^:?\n]{0,60}?)\s*(?::|\?|\s[-–—]\s|\s[–—])\s*(?P<d>\S.*)$", re.S)
_INSTRUCTION_HEAD = re.compile(r"^(?:wh|how\b|is\b|can\b|could\b)|\b(?:worth|price|value|estimate|appraise|cost|valuation)\b", re.I)


def parse_amount(text: str) -> float | None:
    """200 from "$200", "200 dollars", "1,500", "$1.5k" (the number read by models.text); None when
    there is none, or it is zero or too large to be finite."""
    value = first_amount(text)
    if value is None:
        return None
    value = value * 1000 if re.search(r"\d\s?[kK]\b", text) else value
    return value if math.isfinite(value) else None


def price_cap(message: str) -> float | None:
    for pattern in (_CAP_BEFORE, _CAP_AFTER):
        for match in pattern.finditer(message):
            amount = parse_amount(match.group("amount"))
            if amount is not None and amount > 0:
                return amount
    return None


def price_filter(message: str) -> tuple[float | None, str | None]:
    """The price cap a message asks for, and what was written when it is none that can be used
    ("under $0"): (200.0, None), (None, "$0"), or (None, None) when the message sets no cap."""
    cap = price_cap(message)
    if cap is not None and cap <= MAX_PRICE_FILTER:
        return cap, None
    written = _WRITTEN_CAP.search(message)
    if written is None:
        return None, None
    said = " ".join((written["amount"] + (written["unit"] or "")).split())
    return None, said if len(said) <= 24 else said[:24] + "…"


def result_limit(message: str) -> int | None:
    for match in _LIMIT.finditer(message):
        word = (match.group("a") or match.group("b")).lower()
        value = int(word) if word.isdigit() else _NUMBER_WORDS.get(word)
        if value and 0 < value <= 50:
            return value
    return None


def _tidy(text: str) -> str:
    """A short search query from a phrase: no leading articles, trailing "deal" or punctuation."""
    return _TRAILING.sub("", _DETERMINERS.sub("", text.strip()[:QUERY_CHARS])).strip()


def product_description(message: str) -> str:
    """The thing to value: what follows "what is this worth:" and the like, else the message."""
    text = message.strip()
    instruction = _INSTRUCTION.match(text)
    if instruction and len(instruction["head"].split()) <= 7 and _INSTRUCTION_HEAD.search(instruction["head"]):
        return instruction["d"].strip()
    lead = without_lead_in(text)
    for form in _DESCRIPTION_FORMS:
        match = form.match(lead)
        if match and match["d"].strip():
            return _DETERMINERS.sub("", match["d"].strip())
    return text


def listed_place(text: str) -> int | None:
    """2 for "the second deal" or "the 2nd one", -1 for "the last one": the place, in the list of
    deals the chat showed, that `text` (all of it) names; None when it names something else."""
    match = _PLACE.fullmatch(text.strip(" .,!?"))
    if match is None:
        return None
    return _ORDINALS[match["word"].lower()] if match["word"] else int(match["number"])


def _found_deal(query: str) -> dict[str, Any]:
    """A found deal's arguments: its place in the list when the query names one, else the query."""
    if not query:
        return {}
    place = listed_place(query)
    return {"position": place} if place is not None else {"query": query}


def notify_arguments(message: str) -> dict[str, Any]:
    lead = without_lead_in(message)
    found = _ID.search(lead)
    if found:
        return {"opportunity_id": int(found["id"])}
    url = URL.search(lead)
    if url:
        return {"query": url.group().rstrip(".,;!?)")}
    rest = _NOTIFY_VERB.sub("", lead, count=1).strip(" :,-")
    rest = _ABOUT.sub("", _DESTINATION.sub("", rest).strip(), count=1)
    if rest == lead.strip():  # no verb we know: fall back to "... about X"
        about = _ABOUT_ANYWHERE.search(lead)
        rest = about["rest"] if about else ""
    rest = _DESTINATION.sub("", _ABOUT.sub("", _tidy(rest), count=1)).strip()
    query = _tidy(re.sub(r"\s+(?:to|via|by)\s+(?:my\s+)?(?:phone|e-?mail|inbox|sms)\b.*$", "", rest, flags=re.I))
    return _found_deal(query)


def explain_arguments(message: str) -> dict[str, Any]:
    lead = without_lead_in(message)
    match = _EXPLAIN_TARGET.search(lead) or _EXPLAIN_DEAL.match(lead)
    if match:
        return _found_deal(_tidy(match["q"]))
    place = listed_place(_EXPLAIN_VERB.sub("", lead, count=1))
    return {"position": place} if place is not None else {}


def arguments_for(tool: str | None, message: str) -> dict[str, Any]:
    if tool == "estimate_price":
        return {"description": product_description(message)}
    if tool == "list_opportunities":
        cap, limit = price_filter(message)[0], result_limit(message)
        return {k: v for k, v in (("max_price", cap), ("limit", limit)) if v is not None}
    if tool == "notify_user":
        return notify_arguments(message)
    if tool == "explain_estimate":
        return explain_arguments(message)
    if tool in WATCH_TOOLS:
        return watch_arguments(tool, without_lead_in(message), price_cap(message))
    if tool == "change_settings":
        return settings_arguments(message)
    return {}


def names_a_product(description: str) -> bool:
    """False for "what is this worth?" and the like: an instruction with nothing to value."""
    return not _NOTHING_NAMED.fullmatch(description.strip(" .?!:,;-").lower())


def without_lead_in(text: str) -> str:
    """The message without greetings and politeness at its start."""
    return _LEAD_IN.sub("", text.strip(), count=1)
