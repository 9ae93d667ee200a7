"""Frontier agent: price a product from the most similar known products (retrieval) and, when
the LLM is one worth asking, from the LLM reading those items.

Retrieval is hybrid: the k nearest by meaning (MiniLM in the Chroma store) and the k nearest by
words (TF-IDF: brands, model names and numbers; agents/pricing/lexical.py). Each side gives a
similarity- and prior-weighted mean log-price and the estimate is their geometric mean. Measured
on the reference validation part (k=10): meaning alone $111 MAE, words alone $102, both $100;
a single list ranked by raw similarity did worse ($108), the two similarities are not on one scale.

Measured (shared/VERIFIED.md): with a <=1.5B local model the LLM's number is worse than the
similarity-weighted mean of the neighbours' prices, so by default the estimate rests on the
neighbours and the LLM is neither loaded nor called; a hosted model's answer is used when it is
sane (near the neighbours' prices), and every fallback says why in Estimate.note.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from itertools import zip_longest

from pydantic import BaseModel, Field

from agents.pricing.lexical import LexicalIndex
from agents.pricing.text import clean_descriptions
from models.breaker import ModelBreaker
from models.config import Settings
from models.embeddings import Embedder
from models.llm import ChatModel, Message, ProviderError, structured
from models.text import first_amount
from models.types import SHARPNESS, Estimate, Neighbour, money, neighbour_estimate
from vectorstore.store import VectorStore

log = logging.getLogger(__name__)

DEFAULT_K = 10
PLAUSIBLE_FACTOR = 3.0  # an LLM number beyond [min/3, max*3] of the neighbours' prices is not used
PROMPT_CHARS = 1500
HOSTED_PROVIDERS = ("openai", "anthropic")  # capable enough for the frontier to trust their number


class PriceAnswer(BaseModel):
    """The estimated price of the product in US dollars."""

    price: float = Field(description="price in US dollars, a plain number")


def hybrid_estimate(by_meaning: Sequence[Neighbour], by_words: Sequence[Neighbour],
                    sharpness: float = SHARPNESS) -> float:
    """The geometric mean of each retrieval side's neighbour estimate (one side may be empty)."""
    sides = [neighbour_estimate(found, sharpness) for found in (by_meaning, by_words) if found]
    if not sides:
        raise ValueError("no similar items to price from")
    return math.exp(sum(math.log(v) for v in sides) / len(sides))


def merge_evidence(by_meaning: Sequence[Neighbour], by_words: Sequence[Neighbour]) -> list[Neighbour]:
    """Both sides' neighbours, alternating and most similar first, each product once."""
    merged, seen = [], set()
    for n in (n for pair in zip_longest(by_meaning, by_words) for n in pair if n is not None):
        if (n.title, n.price) not in seen:
            seen.add((n.title, n.price))
            merged.append(n)
    return merged


def frontier_asks_llm(spec: str, mode: str = "auto") -> bool:
    """Whether the frontier asks its LLM: measured, a <=1.5B local model makes the neighbours'
    estimate worse, so by default only hosted models are asked."""
    if mode in ("always", "never"):
        return mode == "always"
    return spec.split(":", 1)[0].strip().lower() in HOSTED_PROVIDERS


def plausible_range(neighbours: Sequence[Neighbour]) -> tuple[float, float]:
    prices = [n.price for n in neighbours]
    return min(prices) / PLAUSIBLE_FACTOR, max(prices) * PLAUSIBLE_FACTOR


def price_messages(description: str, neighbours: Sequence[Neighbour]) -> list[Message]:
    lines = "\n".join(f"- {n.title[:150]}: {money(n.price)} (similarity {n.similarity:.2f})"
                      for n in neighbours)
    return [
        Message(role="system", content="You estimate the retail price of products in US dollars. "
                                       "Answer with the price only."),
        Message(role="user", content=(
            f"Here are similar items and their prices, most similar first:\n{lines}\n\n"
            f"How much does this cost to the nearest dollar?\n\n{description[:PROMPT_CHARS]}")),
    ]


class FrontierAgent:
    """Retrieval-augmented pricer over a VectorStore, with an optional ChatModel."""

    name = "frontier"

    def __init__(self, store: VectorStore, llm: ChatModel | None = None, *, trust_llm: bool = False,
                 k: int = DEFAULT_K, sharpness: float = SHARPNESS, lexical: LexicalIndex | None = None):
        self.store = store
        self.lexical = lexical
        self.llm = llm
        self.breaker = ModelBreaker()  # a dead model is skipped for a minute, not asked per estimate
        self.trust_llm = trust_llm and llm is not None
        self.k = k
        self.sharpness = sharpness

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Embedder,
                      lexical: LexicalIndex | None = None) -> FrontierAgent | None:
        """The agent over the configured store (and the lexical index, when there is one), or None
        when the store is empty. StoreError: unreachable, or built with another embedding."""
        store = VectorStore.from_settings(embedder, settings)
        if store.count() == 0:
            return None
        store.check_embedder()
        spec = settings.llm_for("frontier")
        llm = None
        if frontier_asks_llm(spec, settings.frontier_llm):
            from models.providers import make_chat_model

            llm = make_chat_model(spec, settings)
        return cls(store, llm, trust_llm=llm is not None, lexical=lexical)

    def _ask_llm(self, description: str, neighbours: list[Neighbour]) -> tuple[float | None, str]:
        """The LLM's number, or None and why it is not used."""
        assert self.llm is not None
        if not self.breaker.allows():
            return None, f"{self.llm.name} is skipped for a while: it failed ({self.breaker.error})"
        messages = price_messages(description, neighbours)
        try:
            value: float | None = structured(self.llm, messages, PriceAnswer, max_tokens=50).price
        except ProviderError:
            try:  # some models will not fill a tool call; read a plain answer instead
                value = first_amount(self.llm.chat(messages, max_tokens=20).content)
            except ProviderError as err:
                self.breaker.failed(str(err).splitlines()[0][:120] if str(err) else type(err).__name__)
                return None, f"{self.llm.name} failed ({str(err)[:120]})"
        self.breaker.worked()
        if value is None:
            return None, f"{self.llm.name} gave no number"
        low, high = plausible_range(neighbours)
        if not low <= value <= high:
            return None, (f"{self.llm.name} said {money(value)}, outside the plausible "
                          f"{money(low)}-{money(high)} for similar items")
        return value, ""

    def _estimate(self, description: str, by_meaning: list[Neighbour], by_words: list[Neighbour],
                  started: float) -> Estimate:
        base = hybrid_estimate(by_meaning, by_words, self.sharpness)
        neighbours = merge_evidence(by_meaning, by_words)
        sides = " and ".join(side for side, found in (("meaning", by_meaning), ("words", by_words)) if found)
        note = f"similarity-weighted price of {len(neighbours)} products similar in {sides}"
        value = base
        if self.trust_llm:
            answer, why = self._ask_llm(description, neighbours[:self.k])
            if answer is not None:
                value = answer
                note = f"{self.llm.name} read {min(len(neighbours), self.k)} similar items (they alone: {money(base)})"
            else:
                note += f"; LLM answer not used: {why}"
        return Estimate(agent=self.name, value=round(value, 2), evidence=neighbours, note=note,
                        latency_s=round(time.perf_counter() - started, 4))

    def retrieve(self, texts: list[str]) -> tuple[list[list[Neighbour]], list[list[Neighbour]]]:
        """Each cleaned text's neighbours by meaning and by words (empty without a lexical index)."""
        by_meaning = self.store.query_batch(texts, self.k)
        by_words = self.lexical.neighbours(texts, self.k) if self.lexical else [[] for _ in texts]
        return by_meaning, by_words

    def estimate(self, description: str) -> Estimate:
        return self.estimate_batch([description])[0]

    def estimate_batch(self, descriptions: list[str]) -> list[Estimate]:
        started = time.perf_counter()
        texts = clean_descriptions(descriptions)
        by_meaning, by_words = self.retrieve(texts)
        per_item = (time.perf_counter() - started) / max(len(texts), 1)
        return [self._estimate(text, meaning, words, time.perf_counter() - per_item)
                for text, meaning, words in zip(texts, by_meaning, by_words, strict=True)]
