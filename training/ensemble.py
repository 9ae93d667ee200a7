"""Fit the ensemble on validation-split predictions (rows no member trained on).

One linear blend per non-empty subset of members, so the ensemble answers with whatever members
are up. Each blend's interval half-width is the split-conformal quantile of its out-of-fold
absolute log-price residuals, so the fitted rows never judge their own fit.
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

from agents.pricing.ensemble import Blend, EnsembleModel, features
from models.config import ENSEMBLE_FILE
from models.types import Item, Pricer

FOLDS = 5
ALPHA = 1e-3  # a touch of ridge: with one member, its value, min and max are the same column


def member_predictions(members: Mapping[str, Pricer], items: Sequence[Item],
                       log: Callable[[str], None] = print) -> dict[str, np.ndarray]:
    texts = [item.text for item in items]
    out = {}
    for name, member in members.items():
        log(f"  predicting the validation split with {name} ({len(texts)} items)")
        out[name] = np.array([e.value for e in member.estimate_batch(texts)], dtype=float)
    return out


def conformal_halfwidth(abs_residuals: np.ndarray, level: float) -> float:
    """The ceil((n+1)*level)-th smallest residual: covers a new point with probability >= level."""
    n = len(abs_residuals)
    rank = min(n, math.ceil((n + 1) * level))
    return float(np.sort(abs_residuals)[rank - 1])


def fit_blend(names: Sequence[str], values: Mapping[str, np.ndarray], prices: np.ndarray,
              level: float, seed: int = 42) -> Blend:
    x = np.array([features([values[m][i] for m in names]) for i in range(len(prices))])
    y = np.log(prices)
    oof = np.zeros_like(y)
    for fit_rows, held_rows in KFold(FOLDS, shuffle=True, random_state=seed).split(x):
        oof[held_rows] = Ridge(alpha=ALPHA).fit(x[fit_rows], y[fit_rows]).predict(x[held_rows])
    final = Ridge(alpha=ALPHA).fit(x, y)
    return Blend(members=tuple(names), coef=[float(c) for c in final.coef_],
                 intercept=float(final.intercept_),
                 halfwidth=conformal_halfwidth(np.abs(y - oof), level),
                 val_mae=float(np.mean(np.abs(np.exp(oof) - prices))))


def fit_ensemble(values: Mapping[str, np.ndarray], prices: Sequence[float], *,
                 level: float = 0.8) -> EnsembleModel:
    """Blends for every subset of the members in `values` (each an array aligned with `prices`)."""
    if not 0 < level < 1:
        raise ValueError(f"interval level must be between 0 and 1, not {level}")
    prices_arr = np.asarray(prices, dtype=float)
    if len(prices_arr) < 4 * FOLDS:
        raise ValueError(f"too few validation items ({len(prices_arr)}) to fit the ensemble")
    names = sorted(values)
    if not names:
        raise ValueError("no members to blend: build the vector store or fit the forest first")
    blends = [fit_blend(subset, values, prices_arr, level)
              for size in range(1, len(names) + 1)
              for subset in itertools.combinations(names, size)]
    return EnsembleModel(level=level, blends=blends)


def train_ensemble(members: Mapping[str, Pricer], val: Sequence[Item], models_dir: Path, *,
                   level: float = 0.8, log: Callable[[str], None] = print) -> EnsembleModel:
    members = {name: m for name, m in members.items() if name != "ensemble"}
    model = fit_ensemble(member_predictions(members, val, log), [i.price for i in val], level=level)
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / ENSEMBLE_FILE
    tmp = path.with_suffix(".tmp")
    joblib.dump(model.model_dump(), tmp)
    tmp.replace(path)
    for blend in model.blends:
        log(f"  blend {'+'.join(blend.members):32} validation MAE ${blend.val_mae:8.2f} (out of fold)"
            f"  {level:.0%} interval x/÷ {math.exp(blend.halfwidth):.2f}")
    return model
