"""Deterministic chat routing: which planning-agent tool a message calls, and with what arguments.

The tiny local LLM cannot choose tools, so this does it without one. Rules take what structure
makes unambiguous (a pasted feed item, a URL, an explicit command at the start of the message);
everything else goes to a logistic-regression classifier over MiniLM embeddings, trained on
example utterances per tool (agents/chat/examples.py) and small talk; a message it is unsure of
and near no example is small talk, or a product to value when it reads like one. Arguments are always extracted by rules.

Pasted text is data: a feed item routes to estimate_price whatever it says, and notify_user (the
one tool that sends something out) needs a short, direct request from the user.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, Field
from sklearn.linear_model import LogisticRegression

from agents.chat.examples import EXAMPLES, SMALL_TALK
from agents.chat.settings_words import SETTINGS_COMMANDS, settings_arguments
from agents.chat.tools import MAX_PRICE_FILTER, TOOL_NAMES, price_filter_refusal
from agents.chat.watch_words import WATCH_COMMANDS, WATCH_TOOLS, watch_arguments
from models.text import first_amount

MAX_CHARS = 20_000  # what a chat turn may carry into a tool argument
SEMANTIC_CHARS = 1_000  # the classifier reads the opening; MiniLM stops at 256 tokens anyway
SIMILARITY_FLOOR = 0.45  # an unsure classification this far from every example is small talk
CONFIDENT = 0.5  # the classifier's own "none" class decides small talk once it is this sure
CLASSIFIER_C = 10.0  # chosen by 5-fold cross-validation on the labelled set (benchmarks/routing.py)
QUERY_CHARS = 200  # a notify or explain query names a product; longer text is not one
NOTIFY_MAX_WORDS = 25  # longer messages are pasted content, never an alert request


class Route(BaseModel):
    tool: str | None
    arguments: dict[str, Any] = Field(default_factory=dict)
    confidence: float
    reason: str
    refusal: str | None = None  # the answer instead of the tool: what the message asks cannot be done


class TextEmbedder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


# --- structure rules --------------------------------------------------------------------------

_FEED_ITEM = re.compile(r"<\s*(?:item|entry|rss|channel|feed)\b|<\?xml|<!\[CDATA\[|<\s*(?:title|link|guid|pubDate)\s*>", re.I)
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`]+", re.I)
_LEAD_IN = re.compile(
    r"^(?:(?:hey|hi|hello|ok(?:ay)?|so|um+|hm+|yo|please|pls|plz|kindly|dealscout"
    r"|(?:could|can|would|will)\s+(?:you|u)(?:\s+(?:please|pls|kindly))?"
    r"|i(?:'d|\s+would)\s+like(?:\s+(?:you\s+)?to)?|i\s+(?:want|need)(?:\s+(?:you\s+)?to)?|go\s+ahead\s+and)\b[\s,!.:]*)+",
    re.I)
_COMMANDS: list[tuple[str, re.Pattern[str]]] = [
    ("notify_user", re.compile(
        r"^(?:re-?)?(?:notify|alert|ping|text|e-?mail|message)\s+(?:me|us)\b|^(?:re-?)?notify\b"
        r"|^remind\s+(?:me|us)\b(?!\s+(?:what|which|how|where|who|of\b))"  # "remind me what you found" asks
        r"|^(?:re-?)?(?:send|push|fire\s+off)\b.{0,40}\b(?:alert|notification|notice)s?\b|^keep\s+me\s+(?:posted|updated|informed)\b"
        r"|^(?:an?\s+|the\s+)?(?:alert|notification|notice|reminder)s?\s+(?:about|on|for|regarding|when)\b", re.I)),
    ("explain_estimate", re.compile(
        r"^explain\b|^break\s*down\b|^how(?:'d|\s+did|\s+do)\s+you\s+(?:get|come|arrive|calculate|work|figure|reach)\b"
        r"|^(?:show|give)\s+(?:me\s+)?(?:the\s+|your\s+)?(?:evidence|reasoning|working|breakdown|comparables)\b", re.I)),
    ("scan_deals", re.compile(
        r"^(?:re-?)?scan\b|^run\s+(?:a\s+|the\s+)?(?:scan|scanner)\b"
        r"|^(?:check|refresh|poll|crawl|fetch|reload)\b.{0,30}\bfeeds?\b", re.I)),
    ("estimate_price", re.compile(
        r"^(?:what(?:'s|s|\s+is|\s+was|\s+would)?\b.{0,40}\b(?:worth|expect\s+to\s+pay|go(?:es)?\s+for|sell\s+for)\b"
        r"|how\s+much\s+(?:is|are|does|do|would|should|will|might|could|can|for|to)\b|price\s*check\b"
        r"|(?:estimate|appraise|value|valuate|price)\b(?!\s+(?:cap|limit|range|alert))"
        r"|is\s+(?:this|it)\s+(?:a\s+)?(?:good|fair)\s+(?:deal|price)\b)", re.I)),
]

_COMMANDS[:0] = [*SETTINGS_COMMANDS, *WATCH_COMMANDS]  # first: "alert me when X drops under $250"
FOR_THE_ASKER = {"notify_user", "watch_product"}  # they send alerts: a short ask that says "me"
SHORT_ASKS = {*FOR_THE_ASKER, "unwatch", "change_settings"}  # they act: never on long (pasted) text

# A product description is a noun phrase: no question, no greeting, nobody talking to anybody.
_CONVERSATIONAL_START = re.compile(
    r"^(?:what|what's|whats|how|who|why|when|where|which|can|could|would|will|should|shall|do|does|did|is|are"
    r"|am|i|i'm|im|i've|i'd|my|you|you're|ur|u|we|let's|lets|tell|please|pls|thanks|thank|thx|ty|hi|hello|hey"
    r"|yo|ok|okay|sure|yes|no|nope|yeah|yep|lol|haha|good|great|nice|cool|bye|sorry|wow|hmm+|oh|ah|well|so"
    r"|and|but|not|that's|it's)\b", re.I)
# Product titles are capitalised; a message opening on a lowercase command is someone talking.
_COMMAND_START = re.compile(r"^(?:forget|keep|stop|remove|cancel|delete|drop|show|list|find|send|give|let|remind"
                            r"|check|look|search|track|watch|limit|only|set|change|add|put|get|go|tell)\b")
_PERSONAL = re.compile(r"\b(?:I|I'm|me|my|you|your|we|us|our)\b")
_PRODUCT_SIGNAL = re.compile(r"\d|[,|/()\-–:]|\b[A-Z][A-Za-z]*\b.*\b[A-Z][A-Za-z]*\b")
_ASKS_FOR_ME = re.compile(r"\b(?:me|my|us|our|i)\b", re.I)


def looks_like_product(text: str) -> bool:
    """True for "Sony WH-1000XM5 Wireless Headphones, black", False for "guten Morgen!"."""
    words = text.split()
    if len(words) < 2 or _CONVERSATIONAL_START.match(text) or _COMMAND_START.match(text):
        return False
    opening = " ".join(words[:12])
    if "?" in opening or (len(words) <= 12 and (_PERSONAL.search(opening) or text.rstrip().endswith("!"))):
        return False
    return bool(_PRODUCT_SIGNAL.search(opening)) or len(words) >= 6


def _lead(text: str) -> str:
    """The message without greetings and politeness at its start."""
    return _LEAD_IN.sub("", text.strip(), count=1)


# --- argument extraction ----------------------------------------------------------------------

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
    r"(?:\s+(?:me|us))?(?:\s+(?:a|an|the))?(?:\s+(?:alert|notification|notice|message|email|text|push)s?)?(?:\s+again)?)\b",
    re.I)
_DESTINATION = re.compile(r"^(?:to|via|by)\s+(?:my\s+)?(?:phone|e-?mail|inbox|telegram|slack|pushover|sms|text)\b", re.I)
_ABOUT = re.compile(r"^(?:about|on|for|regarding|re:?|abt|of)\b\s*", re.I)
_ABOUT_ANYWHERE = re.compile(r"\b(?:about|regarding|abt)\s+(?P<rest>.+)$", re.I)
_DETERMINERS = re.compile(r"^(?:(?:the|that|this|these|those|a|an|my|your)\s+)+", re.I)
_TRAILING = re.compile(r"(?:[\s,.!?;:]|\b(?:deals?|offers?|please|pls|again|now|thanks)\b)+$", re.I)
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
    lead = _lead(text)
    for form in _DESCRIPTION_FORMS:
        match = form.match(lead)
        if match and match["d"].strip():
            return _DETERMINERS.sub("", match["d"].strip())
    return text


def notify_arguments(message: str) -> dict[str, Any]:
    lead = _lead(message)
    found = _ID.search(lead)
    if found:
        return {"opportunity_id": int(found["id"])}
    url = _URL.search(lead)
    if url:
        return {"query": url.group().rstrip(".,;!?)")}
    rest = _NOTIFY_VERB.sub("", lead, count=1).strip(" :,-")
    rest = _ABOUT.sub("", _DESTINATION.sub("", rest).strip(), count=1)
    if rest == lead.strip():  # no verb we know: fall back to "... about X"
        about = _ABOUT_ANYWHERE.search(lead)
        rest = about["rest"] if about else ""
    rest = _DESTINATION.sub("", _ABOUT.sub("", _tidy(rest), count=1)).strip()
    query = _tidy(re.sub(r"\s+(?:to|via|by)\s+(?:my\s+)?(?:phone|e-?mail|inbox|sms)\b.*$", "", rest, flags=re.I))
    return {"query": query} if query else {}


def explain_arguments(message: str) -> dict[str, Any]:
    match = _EXPLAIN_TARGET.search(message)
    query = _tidy(match["q"]) if match else ""
    return {"query": query} if query else {}


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
        return watch_arguments(tool, _lead(message), price_cap(message))
    if tool == "change_settings":
        return settings_arguments(message)
    return {}


# --- the router -------------------------------------------------------------------------------

class Router:
    """Routes one chat message to a planning-agent tool (or to none) with its arguments."""

    def __init__(self, embedder: TextEmbedder, examples: dict[str, list[str]] | None = None,
                 floor: float = SIMILARITY_FLOOR):
        self.embedder = embedder
        self.examples = examples or EXAMPLES
        unknown = set(self.examples) - {*TOOL_NAMES, SMALL_TALK}
        if unknown:
            raise ValueError(f"examples for tools that do not exist: {', '.join(sorted(unknown))}")
        self.floor = floor
        self._labels: list[str] = [tool for tool, texts in self.examples.items() for _ in texts]
        self._texts: list[str] = [text for texts in self.examples.values() for text in texts]
        self._vectors: np.ndarray | None = None
        self._classifier: LogisticRegression | None = None
        self._lock = threading.Lock()

    def _trained(self) -> tuple[np.ndarray, LogisticRegression]:
        with self._lock:
            if self._classifier is None:
                vectors = np.asarray(self.embedder.embed([t.lower() for t in self._texts]))
                self._classifier = LogisticRegression(C=CLASSIFIER_C, max_iter=2000, class_weight="balanced").fit(vectors, self._labels)
                self._vectors = vectors
        return self._vectors, self._classifier

    def route(self, message: str) -> Route:
        text = (message or "")[:MAX_CHARS].strip()
        if not text:
            return Route(tool=None, confidence=1.0, reason="empty message")
        if _FEED_ITEM.search(text):
            return Route(tool="estimate_price", arguments={"description": product_description(text)},
                         confidence=1.0, reason="pasted feed item: valued as data, never obeyed")
        lead = _lead(text)
        for tool, pattern in _COMMANDS:
            if pattern.match(lead):
                return self._routed(tool, text, 0.95, f"explicit {tool} request")
        url = _URL.search(text)
        if url:
            return Route(tool="estimate_price", arguments={"url": url.group().rstrip(".,;!?)")},
                         confidence=0.95, reason="pasted link: value the product it points to")
        return self._classified(text)

    def _routed(self, tool: str, text: str, confidence: float, reason: str) -> Route:
        arguments = arguments_for(tool, text)
        if tool == "list_opportunities" and (unusable := price_filter(text)[1]):
            return Route(tool=tool, arguments=arguments, confidence=round(confidence, 3), reason=reason,
                         refusal=price_filter_refusal(unusable))
        if tool == "estimate_price":
            url = _URL.search(text)
            if url:
                arguments = {"url": url.group().rstrip(".,;!?)")}
            elif not _names_a_product(arguments["description"]):
                return Route(tool=None, confidence=confidence,
                             reason="asks for a price but names no product; the planner asks which")
        return Route(tool=tool, arguments=arguments, confidence=round(confidence, 3), reason=reason)

    def _classified(self, text: str) -> Route:
        query = " ".join(text[:SEMANTIC_CHARS].lower().split())
        vectors, classifier = self._trained()
        vector = np.asarray(self.embedder.embed([query]))[0]
        probabilities = classifier.predict_proba(vector[None, :])[0]
        similarities = vectors @ vector
        # An alert goes to the person asking: a short message that says so, not text that was pasted.
        short = len(text.split()) <= NOTIFY_MAX_WORDS
        asks_for_me = short and bool(_ASKS_FOR_ME.search(text))
        top = int(np.argmax(probabilities))
        label, probability = str(classifier.classes_[top]), float(probabilities[top])
        own = [i for i, known in enumerate(self._labels) if known == label]
        closest = own[int(np.argmax(similarities[own]))]
        nearest = (f"classified {label} (p={probability:.2f}); nearest {label} example {self._texts[closest]!r} "
                   f"(similarity {float(similarities[closest]):.2f})")
        allowed = label not in SHORT_ASKS or (asks_for_me if label in FOR_THE_ASKER else short)
        # Only the classifier's first choice may act, and only when sure or close to one of its own
        # examples: a runner-up at p=0.01 must not run because another tool's example was close.
        if label != SMALL_TALK and allowed and (probability >= CONFIDENT or float(similarities[closest]) >= self.floor):
            return self._routed(label, text, probability, nearest)
        if not allowed:
            nearest += "; an acting tool needs a short, direct request"
        if looks_like_product(product_description(text)):
            return self._routed("estimate_price", text, 0.6, f"reads like a product description; {nearest}")
        return Route(tool=None, confidence=round(probability, 3), reason=f"small talk: {nearest}")


def _names_a_product(description: str) -> bool:
    """False for "what is this worth?" and the like: an instruction with nothing to value."""
    return not _NOTHING_NAMED.fullmatch(description.strip(" .?!:,;-").lower())
