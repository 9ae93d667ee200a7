"""Judge any price predictor on the same items: MAE, RMSLE, hit rate, per category, a chart."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from tqdm import tqdm

from agents.workflow import qualify
from models.types import Deal, Estimate, Item, Pricer

Predictor = Pricer | Callable[[str], float]
BATCH = 32
OFFER_LEVELS = (0.5, 0.7, 0.9, 1.0)  # offers at these fractions of the true price
STREAM_DEALS = 0.1  # in the precision figure one offer in ten is at half price, the rest at full price


def is_hit(truth: float, guess: float) -> bool:
    error = abs(guess - truth)
    return error < 40 or error < 0.2 * truth


def error_band(truth: float, guess: float) -> str:
    error = abs(guess - truth)
    if is_hit(truth, guess):
        return "green"
    return "orange" if error < 80 or error < 0.4 * truth else "red"


class Scores(BaseModel):
    n: int
    mae: float
    rmsle: float
    hits: float  # fraction of items within $40 or 20%
    coverage: float | None = None  # fraction of truths inside the estimate's interval
    mean_width: float | None = None  # mean interval width, dollars
    mae_low: float = 0.0  # 95% bootstrap interval of the MAE (resampling the items, seeded)
    mae_high: float = 0.0


class Report(Scores):
    model: str
    seconds_per_item: float
    per_category: dict[str, Scores]


def score(truths: list[float], guesses: list[float],
          intervals: list[tuple[float, float]] | None = None) -> Scores:
    n = len(truths)
    if n == 0:
        raise ValueError("nothing to score: no items")
    mae = sum(abs(g - t) for t, g in zip(truths, guesses, strict=True)) / n
    rmsle = math.sqrt(sum((math.log1p(max(g, 0)) - math.log1p(t)) ** 2
                          for t, g in zip(truths, guesses, strict=True)) / n)
    hits = sum(is_hit(t, g) for t, g in zip(truths, guesses, strict=True)) / n
    coverage = width = None
    if intervals:
        coverage = sum(lo <= t <= hi for t, (lo, hi) in zip(truths, intervals, strict=True)) / n
        width = sum(hi - lo for lo, hi in intervals) / n
    low, high = bootstrap_interval([abs(g - t) for t, g in zip(truths, guesses, strict=True)])
    return Scores(n=n, mae=mae, rmsle=rmsle, hits=hits, coverage=coverage, mean_width=width,
                  mae_low=low, mae_high=high)


def bootstrap_interval(errors: list[float], *, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of `errors`: a difference inside it is no win."""
    values = np.asarray(errors, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


class DealScores(BaseModel):
    """How the real qualify rule treats offers at fractions of each item's true price."""

    n: int
    threshold: float
    flagged_50: float
    flagged_70: float
    flagged_90: float
    flagged_100: float
    precision_1in10: float  # of the alerts in a stream where 1 offer in 10 is at 50%, 9 at 100%
    thin: float  # share of estimates marked as resting on thin evidence (they never alert)


def deal_detection(estimates: list[Estimate], truths: list[float], threshold: float) -> DealScores:
    if not estimates:
        raise ValueError("nothing to score: no items")
    flagged = {}
    for level in OFFER_LEVELS:
        hits = 0
        for estimate, truth in zip(estimates, truths, strict=True):
            offer = Deal(title="offer", description="offer", price=round(truth * level, 2), url="", guid="")
            hits += qualify(offer, estimate, threshold) is not None
        flagged[level] = hits / len(estimates)
    real, false = STREAM_DEALS * flagged[0.5], (1 - STREAM_DEALS) * flagged[1.0]
    return DealScores(n=len(estimates), threshold=threshold, flagged_50=flagged[0.5], flagged_70=flagged[0.7],
                      flagged_90=flagged[0.9], flagged_100=flagged[1.0],
                      precision_1in10=real / (real + false) if real + false else 0.0,
                      thin=sum(bool(e.thin) for e in estimates) / len(estimates))


def predict_all(predictor: Predictor, texts: list[str], progress: bool = True) -> list[Estimate]:
    name = getattr(predictor, "name", getattr(predictor, "__name__", "model"))
    out: list[Estimate] = []
    with tqdm(total=len(texts), desc=f"evaluating {name}", disable=not progress, leave=False) as bar:
        for start in range(0, len(texts), BATCH):
            batch = texts[start:start + BATCH]
            if isinstance(predictor, Pricer):
                out += predictor.estimate_batch(batch)
            else:
                out += [Estimate(agent=name, value=float(predictor(t))) for t in batch]
            bar.update(len(batch))
    return out


def evaluate(predictor: Predictor, items: list[Item], *, name: str | None = None,
             chart: Path | None = None, progress: bool = True) -> Report:
    name = name or getattr(predictor, "name", "model")
    started = time.perf_counter()
    estimates = predict_all(predictor, [item.text for item in items], progress)
    return report(estimates, items, name=name, seconds=time.perf_counter() - started, chart=chart)


def report(estimates: list[Estimate], items: list[Item], *, name: str, seconds: float = 0.0,
           chart: Path | None = None) -> Report:
    """Scores of estimates already made for these items (aligned), overall and per category."""
    truths = [item.price for item in items]
    guesses = [e.value for e in estimates]
    with_interval = all(e.low is not None and e.high is not None for e in estimates)
    intervals = [(e.low, e.high) for e in estimates] if with_interval else None
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        by_cat[item.category].append(i)
    per_category = {
        cat: score([truths[i] for i in idx], [guesses[i] for i in idx],
                   [intervals[i] for i in idx] if intervals else None)
        for cat, idx in sorted(by_cat.items())
    }
    overall = score(truths, guesses, intervals)
    if chart:
        scatter(truths, guesses, name, overall, chart)
    return Report(model=name, seconds_per_item=seconds / len(items), per_category=per_category,
                  **overall.model_dump())


def scatter(truths: list[float], guesses: list[float], name: str, scores: Scores, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = [error_band(t, g) for t, g in zip(truths, guesses, strict=True)]
    top = max(max(truths), max(guesses)) * 1.05
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.scatter(truths, guesses, s=8, c=colours)
    ax.plot([0, top], [0, top], color="deepskyblue", lw=1)
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="true price ($)", ylabel="estimate ($)",
           title=f"{name}: MAE ${scores.mae:,.2f}, RMSLE {scores.rmsle:.2f}, hits {scores.hits:.1%}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
