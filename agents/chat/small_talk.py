"""What the planner says when no tool fits: greetings, thanks, questions about itself, the rest.

The local default model generates in this process, on the CPUs every other user's request needs,
one reply at a time, and a 135M model says little worth the wait. So with it, what we can
recognise gets a short fixed answer, and only the rest goes to the model: a few replies at once
(`cap`); a caller that finds them all busy waits `slot_wait_s` at most, and no reply is waited for
longer than `time_limit_s`, after which the help text answers instead (the model alone answers in
~0.5 s on 2 cores, so under load a user gets the help text in well under 2 s rather than a place
in a queue). A hosted model answers all small talk itself.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from models.llm import ChatModel, Message, ProviderError

SMALL_TALK_PROMPT = """You are DealScout, a friendly deal-finding assistant. Answer in one or two short
sentences. You can: value a product ("what is this worth: ..."), scan deal feeds ("scan for deals
now"), show the best deals ("best deals under $200"), alert the user ("notify me about ...")."""

HELP = ("I can value a product (\"what is this worth: Sony WH-1000XM5 headphones\"), scan the deal feeds "
        "(\"scan for deals now\"), show what I found (\"best deals under $200\"), alert you "
        "(\"notify me about the headphones\") and explain an estimate (\"explain that estimate\").")

CAP = 1  # llama.cpp answers one call at a time anyway; more waiting callers only queue longer
TIME_LIMIT_S = 1.5
SLOT_WAIT_S = 0.25
MAX_TOKENS = 60  # two short sentences, all of a reply that is kept
MAX_WORDS = 12  # a longer message says more than hello: the model reads it

_NAME = r"(?:\s+(?:there|dealscout|friend|all|everyone|again))?"
_KINDS: list[tuple[str, re.Pattern[str]]] = [
    ("help", re.compile(
        r"(?:(?:can|could|would)\s+(?:you|u)\s+)?help(?:\s+me)?(?:\s+out)?(?:\s+please)?"
        r"|i\s+(?:need|want)\s+(?:some\s+)?help|(?:how\s+do\s+i|where\s+do\s+i)\s+(?:start|begin)"
        r"|what\s+(?:can|could)\s+(?:you|u)\s+do(?:\s+for\s+me)?"
        r"|what\s+(?:do\s+you\s+do|are\s+you\s+(?:able\s+to\s+do|for|good\s+at))"
        r"|how\s+(?:do\s+i|can\s+i|to)\s+use\s+(?:this|you|it|dealscout)|how\s+does\s+(?:this|it)\s+work"
        r"|what\s+(?:are\s+)?(?:your|the)\s+(?:commands|options|features)")),
    ("who", re.compile(
        r"who\s+(?:are|r)\s+(?:you|u)|what\s+are\s+you|what(?:'s|\s+is)\s+your\s+name"
        r"|are\s+you\s+(?:an?\s+)?(?:bot|robot|human|ai|person|real)|introduce\s+yourself")),
    ("thanks", re.compile(
        r"(?:thanks|thank\s+you|thx|ty|cheers|many\s+thanks|much\s+appreciated|appreciate\s+it)"
        r"(?:\s+(?:a\s+lot|so\s+much|very\s+much|a\s+ton|again|loads|mate|buddy))*")),
    ("how_are_you", re.compile(
        r"how\s+(?:are|r)\s+(?:you|u)(?:\s+(?:doing|today))*|how(?:'s|\s+is)\s+it\s+going|what'?s\s+up|sup")),
    ("greeting", re.compile(
        rf"(?:hi|hello|hey|hiya|howdy|yo|greetings|hey\s+hey|good\s+(?:morning|afternoon|evening|day)){_NAME}"
        r"|dealscout")),
]
# Which answer a message of several recognised parts gets ("hi, who are you?" -> who).
_ANSWERS = {
    "help": HELP,
    "who": ("I'm DealScout, an open-source assistant: I read deal feeds, estimate what each product is "
            "really worth with a team of pricing models, and tell you about the deals well below it. "
            "Ask me \"what can you do\" for examples."),
    "thanks": "You're welcome! Paste another product any time and I'll tell you what it's worth.",
    "how_are_you": ("Doing well, thanks, and ready to check prices. Paste a product (\"what is this "
                    "worth: ...\") or ask me to scan for deals."),
    "greeting": ("Hello! I'm DealScout. Paste a product and I'll tell you what it's worth, or say "
                 "\"scan for deals now\". Ask \"what can you do\" for more."),
}


def canned_reply(message: str) -> str | None:
    """The fixed answer for a message made only of greetings, thanks, "who are you", "what can
    you do" or "help"; None for anything else."""
    text = " ".join(message.lower().replace("’", "'").split())
    if not text or len(text.split()) > MAX_WORDS:
        return None
    kinds = []
    for part in filter(None, (p.strip() for p in re.split(r"[,.!?;:]+|\s+-\s+", text))):
        kind = next((k for k, pattern in _KINDS if pattern.fullmatch(part)), None)
        if kind is None:
            return None
        kinds.append(kind)
    if not kinds:
        return None
    return _ANSWERS[next(k for k in _ANSWERS if k in kinds)]


T = TypeVar("T")


class ModelGate:
    """At most `cap` calls at once; a caller waits at most `slot_wait_s` for a free slot and
    `time_limit_s` for the slot and its answer together, then gets None. A call past the limit
    finishes in the background, still holding its slot, so the cap bounds the work in flight,
    not just the waiting."""

    def __init__(self, cap: int = CAP, time_limit_s: float = TIME_LIMIT_S, slot_wait_s: float = SLOT_WAIT_S):
        self.time_limit_s, self.slot_wait_s = time_limit_s, slot_wait_s
        self._slots = threading.BoundedSemaphore(cap)

    def call(self, fn: Callable[[], T]) -> T | None:
        deadline = time.monotonic() + self.time_limit_s
        if not self._slots.acquire(timeout=min(self.slot_wait_s, self.time_limit_s)):
            return None
        answer: Future[T] = Future()

        def work() -> None:
            try:
                answer.set_result(fn())
            except BaseException as err:  # handed to the caller, who may have left already
                answer.set_exception(err)
            finally:
                self._slots.release()

        threading.Thread(target=work, name="small-talk", daemon=True).start()
        try:
            return answer.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            return None


class SmallTalk:
    """One per app: its gate is shared by every chat session."""

    def __init__(self, gate: ModelGate | None = None):
        self.gate = gate or ModelGate()

    def answer(self, llm: ChatModel, message: str) -> str:
        try:
            if not llm.in_process:
                return _first_sentences(_ask(llm, message))
            canned = canned_reply(message)
            if canned:
                return canned
            reply = self.gate.call(lambda: _ask(llm, message))
        except ProviderError:
            return HELP
        return HELP if reply is None else _first_sentences(reply)


def _ask(llm: ChatModel, message: str) -> str:
    return llm.chat([Message(role="system", content=SMALL_TALK_PROMPT),
                     Message(role="user", content=message[:2000])], max_tokens=MAX_TOKENS).content


def _first_sentences(reply: str) -> str:
    """A tiny model rambles: keep its first two sentences, then say what DealScout can do."""
    sentences = re.split(r"(?<=[.!?])\s+", reply.strip())
    text = " ".join(sentences[:2])[:300]
    return f"{text}\n\n{HELP}" if text else HELP
