"""Core types shared by every part of DealScout (the data path in ../shared/DESIGN.md)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

# The curated price range: training keeps items inside it, models clamp to it. Laptops, TVs and
# e-bikes are common deals, so it reaches past the catalogue's $999 (more_products goes to $6.9k).
MIN_PRICE, MAX_PRICE = 0.50, 9_999.99


def money(value: float) -> str:
    return f"${value:,.2f}"


class Item(BaseModel):
    """A catalogue product with a known price."""

    title: str
    category: str
    price: float
    text: str
    details: dict[str, str] = Field(default_factory=dict)
    source: str = "catalogue"  # "extra": more training data, re-weighted to the catalogue's prices


class Neighbour(BaseModel):
    """A similar known product, used as evidence for an estimate."""

    title: str
    category: str
    price: float
    similarity: float
    weight: float = 1.0  # the item's training weight (price prior): how much it counts in an estimate
    source: str = ""  # which retrieval found it: "meaning" (embeddings) or "words" (TF-IDF)


# Weight of a neighbour = similarity ** SHARPNESS: close matches count far more than loose ones.
SHARPNESS = 4.0


def neighbour_estimate(neighbours: Sequence[Neighbour], sharpness: float = SHARPNESS, *,
                       prior: bool = True) -> float:
    """Similarity-weighted mean of the neighbours' prices, in log space (prices spread widely);
    with `prior` each neighbour also counts with its training weight (training/weights.py)."""
    if not neighbours:
        raise ValueError("no similar items to price from")
    weights = [max(n.similarity, 1e-3) ** sharpness * (n.weight if prior else 1.0) for n in neighbours]
    logs = [math.log(max(n.price, 0.01)) for n in neighbours]
    return math.exp(sum(w * x for w, x in zip(weights, logs, strict=True)) / sum(weights))


class Estimate(BaseModel):
    """One agent's answer to 'what is this worth?'."""

    agent: str
    value: float
    low: float | None = None
    high: float | None = None
    evidence: list[Neighbour] = Field(default_factory=list)
    members: dict[str, float] = Field(default_factory=dict)  # the ensemble's inputs
    note: str = ""
    # Why the evidence is thin ("" when it is not): few similar products known, members that
    # disagree wildly, a member at its ceiling. Said to the user; such an estimate never alerts.
    thin: str = ""
    latency_s: float = 0.0


class Deal(BaseModel):
    """A feed entry turned into a product offer."""

    title: str
    description: str
    price: float
    url: str
    guid: str
    retailer: str = ""
    category: str = ""
    feed: str = ""
    claimed_price: float | None = None  # the regular price the retailer claims (agents/claims.py)
    seen_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class Opportunity(BaseModel):
    """A deal whose ensemble estimate beats its price by the threshold."""

    deal: Deal
    estimate: Estimate
    discount: float
    reason: str


class TextEmbedder(Protocol):
    """Normalised vectors for texts (models.embeddings.Embedder is one)."""

    def embed(self, texts: Sequence[str]) -> Any: ...


@runtime_checkable
class Pricer(Protocol):
    """What every pricing agent offers; the ensemble knows nothing else about its members."""

    name: str

    def estimate(self, description: str) -> Estimate: ...

    def estimate_batch(self, descriptions: list[str]) -> list[Estimate]: ...


class ValuePricer:
    """Base for pricers that only produce numbers: subclasses implement `predict`."""

    name: str

    def predict(self, descriptions: list[str]) -> list[float]:
        raise NotImplementedError

    def estimate_batch(self, descriptions: list[str]) -> list[Estimate]:
        started = time.perf_counter()
        values = self.predict(descriptions)
        each = (time.perf_counter() - started) / max(len(descriptions), 1)
        return [Estimate(agent=self.name, value=float(v), latency_s=each) for v in values]

    def estimate(self, description: str) -> Estimate:
        return self.estimate_batch([description])[0]
