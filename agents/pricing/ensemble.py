"""Ensemble agent: a linear blend of whichever pricing agents answer, with a price interval.

training/ensemble.py fits one blend per subset of members on validation-split predictions, so
the ensemble still answers when a member is missing or fails.

The interval is cross-conformal: its half-width is the `level` quantile of the blend's
out-of-fold absolute log-price residuals on validation (each fold's residuals come from a blend
fitted without that fold). That is CV+ in spirit: about `level` coverage for products like the
validation ones, with a worst-case guarantee of 2*level-1 only; coverage on the held-out
reference test is what benchmarks/accuracy.py reports. The level itself is chosen on validation
for the alert rule (training/ensemble.py).

An estimate whose evidence is thin says why in `Estimate.thin` and gets a wider interval, twice
the half-width, a rule rather than a calibrated figure: its closest known products are further
than almost all validation products' (`min_similarity`, per retrieval side), its members
disagree more than on almost all validation products (`max_spread`), or a member says its own
evidence is thin (e.g. at its ceiling).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import joblib
from pydantic import BaseModel

from agents.pricing.text import DescriptionError, clean_description, clean_descriptions
from models.types import Estimate, Neighbour, Pricer

log = logging.getLogger(__name__)


def best_similarity(neighbours: Sequence[Neighbour]) -> dict[str, float]:
    """The closest neighbour's similarity on each retrieval side."""
    best: dict[str, float] = {}
    for n in neighbours:
        best[n.source] = max(best.get(n.source, -1.0), n.similarity)
    return best


def interval(centre: float, halfwidth: float, thin: str) -> tuple[float, float]:
    """The interval around a log-price centre: twice as wide when the evidence is thin."""
    width = halfwidth * (2 if thin else 1)
    return math.exp(centre - width), math.exp(centre + width)


def features(values: Sequence[float]) -> list[float]:
    """Each member's log-price, then their min and max."""
    logs = [math.log(max(v, 0.01)) for v in values]
    return [*logs, min(logs), max(logs)]


class Blend(BaseModel):
    """A linear model on `features` of these members' values, and its conformal half-width."""

    members: tuple[str, ...]
    coef: list[float]
    intercept: float
    halfwidth: float  # in log-price: the interval is value * exp(+-halfwidth)
    val_mae: float = 0.0
    max_spread: float | None = None  # members' log-price spread beyond which they disagree wildly

    def spread(self, values: dict[str, float]) -> float:
        *_, low, high = features([values[m] for m in self.members])
        return high - low

    def predict_log(self, values: dict[str, float]) -> float:
        x = features([values[m] for m in self.members])
        return self.intercept + sum(c * v for c, v in zip(self.coef, x, strict=True))


class EnsembleModel(BaseModel):
    level: float  # the interval's target coverage, e.g. 0.8
    blends: list[Blend]
    # Per retrieval side ("meaning", "words"): a best neighbour similarity below this is far.
    min_similarity: dict[str, float] = {}

    def thin_reason(self, blend: Blend, answers: dict[str, Estimate]) -> str:
        """Why an estimate from these answers rests on thin evidence ("" when it does not)."""
        reasons = [f"{name}: {answers[name].thin}" for name in blend.members if answers[name].thin]
        best = best_similarity([n for e in answers.values() for n in e.evidence])
        if self.min_similarity and not best:
            reasons.append("no similar products to compare with")
        far = [f"{side} {best[side]:.2f}" for side, cut in sorted(self.min_similarity.items())
               if side in best and best[side] < cut]
        if far:
            reasons.append(f"few similar products known (closest by {', '.join(far)})")
        values = {m: answers[m].value for m in blend.members}
        if blend.max_spread is not None and blend.spread(values) > blend.max_spread:
            reasons.append(f"the agents disagree (${min(values.values()):,.0f} to ${max(values.values()):,.0f})")
        return "; ".join(reasons)

    def blend_for(self, available: set[str]) -> Blend | None:
        """The fitted blend using the most of the available members (ties: best on validation)."""
        usable = [b for b in self.blends if set(b.members) <= available]
        return max(usable, key=lambda b: (len(b.members), -b.val_mae), default=None)

    @property
    def members(self) -> set[str]:
        return {m for b in self.blends for m in b.members}


class EnsembleAgent:
    name = "ensemble"

    def __init__(self, members: Sequence[Pricer], model: EnsembleModel):
        self.model = model
        self.members = [m for m in members if m.name in model.members and m.name != self.name]
        if not self.members:
            raise ValueError("none of the ensemble's members is available: "
                             f"it was fitted on {', '.join(sorted(model.members))}")

    @classmethod
    def load(cls, path: Path, members: Sequence[Pricer]) -> EnsembleAgent:
        try:
            model = EnsembleModel.model_validate(joblib.load(path))
        except Exception as err:
            raise ValueError(f"cannot load the ensemble {path}: {err}; "
                             "refit it with `launch.py train ensemble`") from err
        return cls(members, model)

    def combine(self, answers: dict[str, Estimate], started: float, failures: list[str]) -> Estimate:
        blend = self.model.blend_for(set(answers))
        if blend is None:
            raise ValueError("no ensemble member could price this: " + "; ".join(failures))
        centre = blend.predict_log({m: answers[m].value for m in blend.members})
        evidence = next((e.evidence for e in answers.values() if e.evidence), [])
        thin = self.model.thin_reason(blend, answers)
        low, high = interval(centre, blend.halfwidth, thin)
        note = f"blend of {', '.join(blend.members)}; {self.model.level:.0%} interval"
        if failures:
            note += "; left out: " + "; ".join(failures)
        return Estimate(
            agent=self.name, value=round(math.exp(centre), 2),
            low=round(low, 2), high=round(high, 2),
            evidence=evidence, members={m: e.value for m, e in answers.items()}, note=note, thin=thin,
            latency_s=round(time.perf_counter() - started, 4))

    def ask_members(self, text: str) -> tuple[dict[str, Estimate], list[str]]:
        """Each member's estimate of a cleaned description, and why any member is missing."""
        answers, failures = {}, []
        for member in self.members:
            try:
                answers[member.name] = member.estimate(text)
            except DescriptionError:
                raise
            except Exception as err:  # one member down (a hosted LLM, a store) must not sink the rest
                log.warning("%s failed: %s", member.name, err)
                failures.append(f"{member.name} failed ({str(err)[:120]})")
        return answers, failures

    def estimate(self, description: str) -> Estimate:
        started = time.perf_counter()
        answers, failures = self.ask_members(clean_description(description))
        return self.combine(answers, started, failures)

    def estimate_batch(self, descriptions: list[str]) -> list[Estimate]:
        started = time.perf_counter()
        texts = clean_descriptions(descriptions)
        per_member: dict[str, list[Estimate]] = {}
        failures = []
        for member in self.members:
            try:
                per_member[member.name] = member.estimate_batch(texts)
            except Exception as err:
                log.warning("%s failed: %s", member.name, err)
                failures.append(f"{member.name} failed ({str(err)[:120]})")
        out = []
        for i in range(len(texts)):
            answers = {name: found[i] for name, found in per_member.items()}
            out.append(self.combine(answers, started, failures))
        each = (time.perf_counter() - started) / max(len(texts), 1)
        for estimate in out:
            estimate.latency_s = round(each, 4)
        return out
