"""Deterministic chat routing: which planning-agent tool a message calls, and with what arguments.

The tiny local LLM cannot choose tools, so this does it without one. Rules take what structure
makes unambiguous (a pasted feed item, a URL, an explicit command at the start of the message);
everything else goes to a logistic-regression classifier over MiniLM embeddings, trained on
example utterances per tool (agents/chat/examples.py) and small talk; a message it is unsure of
and near no example is small talk, or a product to value when it reads like one. Arguments are
always extracted by rules (agents/chat/arguments.py).

Pasted text is data: a feed item routes to estimate_price whatever it says, and notify_user (the
one tool that sends something out) needs a short, direct request from the user.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, Field
from sklearn.linear_model import LogisticRegression

from agents.chat.arguments import (
    URL,
    arguments_for,
    names_a_product,
    price_filter,
    product_description,
    without_lead_in,
)
from agents.chat.examples import EXAMPLES, SMALL_TALK
from agents.chat.settings_words import SETTINGS_COMMANDS
from agents.chat.tools import TOOL_NAMES, price_filter_refusal
from agents.chat.watch_words import WATCH_COMMANDS

MAX_CHARS = 20_000  # what a chat turn may carry into a tool argument
SEMANTIC_CHARS = 1_000  # the classifier reads the opening; MiniLM stops at 256 tokens anyway
SIMILARITY_FLOOR = 0.45  # an unsure classification this far from every example is small talk
CONFIDENT = 0.5  # the classifier's own "none" class decides small talk once it is this sure
CLASSIFIER_C = 10.0  # chosen by 5-fold cross-validation on the labelled set (benchmarks/routing.py)
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
# "don't scan", "don't alert me": a command said not to run asks for nothing (the unwatch rules, tried
# first, take "don't alert me about the roomba").
_NEGATED_COMMAND = re.compile(
    r"^(?:don['’]?t|do\s+not|never)\s+(?:scan|notify|alert|ping|text|e-?mail|message|send|push|remind|refresh|run)"
    r"(?:\s+(?:me|us|it|them|anything|anyone|now|again|yet|today|the\s+feeds?|for\s+(?:new\s+)?deals|please))*\W*$", re.I)
FOR_THE_ASKER = {"notify_user", "watch_product"}  # they send alerts: a short ask that says "me"
SHORT_ASKS = {*FOR_THE_ASKER, "unwatch", "change_settings"}  # they act: never on long (pasted) text

# A product description is a noun phrase: no question, no greeting, nobody talking to anybody.
_CONVERSATIONAL_START = re.compile(
    r"^(?:what|what's|whats|how|who|why|when|where|which|can|could|would|will|should|shall|do|does|did|is|are"
    r"|am|i|i'm|im|i've|i'd|my|you|you're|ur|u|we|let's|lets|tell|please|pls|thanks|thank|thx|ty|hi|hello|hey"
    r"|yo|ok|okay|sure|yes|no|nope|yeah|yep|lol|haha|good|great|nice|cool|bye|sorry|wow|hmm+|oh|ah|well|so"
    r"|and|but|not|that's|it's|never|nevermind)\b", re.I)
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
        lead = without_lead_in(text)
        for tool, pattern in _COMMANDS:
            if pattern.match(lead):
                return self._routed(tool, text, 0.95, f"explicit {tool} request")
        if _NEGATED_COMMAND.match(lead):
            return Route(tool=None, confidence=0.95, reason="a command said not to run: nothing to do")
        url = URL.search(text)
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
            url = URL.search(text)
            if url:
                arguments = {"url": url.group().rstrip(".,;!?)")}
            elif not names_a_product(arguments["description"]):
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

