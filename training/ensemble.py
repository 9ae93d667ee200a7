"""Fit the ensemble on validation-split predictions (rows no member trained on).

One linear blend per non-empty subset of members, so the ensemble answers with whatever members
are up. Each blend's interval half-width is a quantile of its out-of-fold absolute log-price
residuals (cross-conformal, see agents/pricing/ensemble.py for what that does and does not
promise). What counts as thin evidence is read off validation too: the 2% of validation products
with the furthest closest neighbour on each retrieval side, and the 2% on which a blend's members
disagree most. The interval level is chosen on validation for the alert rule: the level whose
rule flags the most half-price offers while keeping the precision in a 1-in-10 stream best
(training/evaluate.py deal_detection, the real agents.workflow.qualify).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from agents.pricing.ensemble import Blend, EnsembleModel, best_similarity, features, interval
from models.config import ENSEMBLE_FILE
from models.types import Estimate, Item, Neighbour, Pricer
from training.evaluate import deal_detection

FOLDS = 5
ALPHA = 1e-3  # a touch of ridge: with one member, its value, min and max are the same column
THIN_SHARE = 0.02  # validation products counted as far from everything / disagreed on, per side
LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9)  # interval levels the alert rule chooses from
USEFUL_RECALL = 0.4  # the chosen level flags at least this share of half-price offers when any does
ALERT_THRESHOLD = 50.0  # the default threshold the level is chosen for (Settings.threshold)


def member_estimates(members: Mapping[str, Pricer], items: Sequence[Item],
                     log: Callable[[str], None] = print) -> dict[str, list[Estimate]]:
    texts = [item.text for item in items]
    out = {}
    for name, member in members.items():
        log(f"  predicting the validation split with {name} ({len(texts)} items)")
        out[name] = member.estimate_batch(texts)
    return out


def conformal_halfwidth(abs_residuals: np.ndarray, level: float) -> float:
    """The ceil((n+1)*level)-th smallest residual: covers a new point with probability >= level."""
    n = len(abs_residuals)
    rank = min(n, math.ceil((n + 1) * level))
    return float(np.sort(abs_residuals)[rank - 1])


def fit_blend(names: Sequence[str], values: Mapping[str, np.ndarray], prices: np.ndarray,
              level: float, seed: int = 42) -> tuple[Blend, np.ndarray]:
    """The blend of these members and its out-of-fold log-price predictions."""
    x = np.array([features([values[m][i] for m in names]) for i in range(len(prices))])
    y = np.log(prices)
    oof = np.zeros_like(y)
    for fit_rows, held_rows in KFold(FOLDS, shuffle=True, random_state=seed).split(x):
        oof[held_rows] = Ridge(alpha=ALPHA).fit(x[fit_rows], y[fit_rows]).predict(x[held_rows])
    final = Ridge(alpha=ALPHA).fit(x, y)
    spreads = x[:, -1] - x[:, -2]  # max - min of the members' log-prices
    blend = Blend(members=tuple(names), coef=[float(c) for c in final.coef_],
                  intercept=float(final.intercept_),
                  halfwidth=conformal_halfwidth(np.abs(y - oof), level),
                  val_mae=float(np.mean(np.abs(np.exp(oof) - prices))),
                  max_spread=float(np.quantile(spreads, 1 - THIN_SHARE)) if len(names) > 1 else None)
    return blend, oof


def similarity_cuts(evidence: Sequence[Sequence]) -> dict[str, float]:
    """Per retrieval side, the best-neighbour similarity that only THIN_SHARE of validation is below."""
    best = [best_similarity(found) for found in evidence]
    sides = sorted({side for b in best for side in b})
    return {side: float(np.quantile([b[side] for b in best if side in b], THIN_SHARE)) for side in sides}


def fit_ensemble(values: Mapping[str, np.ndarray], prices: Sequence[float], *,
                 level: float | None = 0.8, estimates: Mapping[str, list[Estimate]] | None = None,
                 threshold: float = ALERT_THRESHOLD) -> EnsembleModel:
    """Blends for every subset of the members in `values` (each an array aligned with `prices`).

    With the members' `estimates` their evidence sets what counts as far; `level=None` chooses the
    interval level for the alert rule (module docstring)."""
    if level is not None and not 0 < level < 1:
        raise ValueError(f"interval level must be between 0 and 1, not {level}")
    prices_arr = np.asarray(prices, dtype=float)
    if len(prices_arr) < 4 * FOLDS:
        raise ValueError(f"too few validation items ({len(prices_arr)}) to fit the ensemble")
    names = sorted(values)
    if not names:
        raise ValueError("no members to blend: build the vector store or fit the forest first")
    subsets = [s for size in range(1, len(names) + 1) for s in itertools.combinations(names, size)]
    fitted = [fit_blend(subset, values, prices_arr, level or 0.8) for subset in subsets]
    evidence = ([[n for e in estimates.values() for n in e[i].evidence] for i in range(len(prices_arr))]
                if estimates else [])
    model = EnsembleModel(level=level or 0.8, blends=[b for b, _ in fitted],
                          min_similarity=similarity_cuts(evidence) if evidence else {})
    if level is None:
        full, oof = fitted[-1]
        answers = [{m: Estimate(agent=m, value=float(values[m][i]), evidence=evidence[i] if evidence else [],
                                thin=estimates[m][i].thin if estimates else "")
                    for m in full.members} for i in range(len(prices_arr))]
        thin = [model.thin_reason(full, a) for a in answers]
        model.level = choose_level(oof, prices_arr, thin, threshold, evidence)
        for blend, blend_oof in fitted:  # only the half-width depends on the level
            blend.halfwidth = conformal_halfwidth(np.abs(np.log(prices_arr) - blend_oof), model.level)
    return model


def choose_level(oof: np.ndarray, prices: np.ndarray, thin: list[str], threshold: float,
                 evidence: Sequence[list[Neighbour]] = ()) -> float:
    """The LEVELS entry whose intervals give the alert rule the best precision among those that
    flag at least USEFUL_RECALL of half-price offers (the most flagged when none does)."""
    residuals = np.abs(np.log(prices) - oof)
    scored = []
    for level in LEVELS:
        h = conformal_halfwidth(residuals, level)
        estimates = [Estimate(agent="ensemble", value=math.exp(c), low=low, high=high, thin=t,
                              evidence=evidence[i] if evidence else [])
                     for i, (c, t) in enumerate(zip(oof, thin, strict=True))
                     for low, high in [interval(c, h, t)]]
        scored.append((level, deal_detection(estimates, list(prices), threshold)))
    useful = [(lv, d) for lv, d in scored if d.flagged_50 >= USEFUL_RECALL]
    if useful:
        return max(useful, key=lambda ld: (ld[1].precision_1in10, ld[1].flagged_50))[0]
    return max(scored, key=lambda ld: ld[1].flagged_50)[0]


def train_ensemble(members: Mapping[str, Pricer], val: Sequence[Item], models_dir: Path, *,
                   level: float | None = None, log: Callable[[str], None] = print) -> EnsembleModel:
    members = {name: m for name, m in members.items() if name != "ensemble"}
    estimates = member_estimates(members, val, log)
    values = {name: np.array([e.value for e in found], dtype=float) for name, found in estimates.items()}
    model = fit_ensemble(values, [i.price for i in val], level=level, estimates=estimates)
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / ENSEMBLE_FILE
    tmp = path.with_suffix(".tmp")
    joblib.dump(model.model_dump(), tmp)
    tmp.replace(path)
    for blend in model.blends:
        log(f"  blend {'+'.join(blend.members):32} validation MAE ${blend.val_mae:8.2f} (out of fold)"
            f"  {model.level:.0%} interval x/÷ {math.exp(blend.halfwidth):.2f}")
    if model.min_similarity:
        log("  thin evidence below closest-product similarity "
            + ", ".join(f"{side} {cut:.2f}" for side, cut in model.min_similarity.items()))
    return model
