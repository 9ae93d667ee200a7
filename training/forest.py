"""Fit the forest agent's regressor: embeddings -> log-price.

Several regressors are compared on a seeded held-out slice of the training split (the validation
split is kept for the ensemble); the best by category-balanced MAE is refitted on the whole
training split. Training rows are weighted: by default so each category counts the same (the
catalogue is Software-heavy, deal feeds are not); the pipeline passes the price prior of
training/weights.py instead (on the reference validation part, SVR $126 -> $118 MAE).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from pydantic import BaseModel
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.svm import SVR

from models.config import FOREST_FILE
from models.embeddings import Embedder
from models.types import Item

CANDIDATES: dict[str, Callable[[], Any]] = {
    "random_forest": lambda: RandomForestRegressor(
        n_estimators=200, max_features=0.2, min_samples_leaf=2, n_jobs=-1, random_state=42),
    "hist_gradient_boosting": lambda: HistGradientBoostingRegressor(
        max_iter=400, learning_rate=0.05, l2_regularization=1.0, random_state=42),
    "ridge": lambda: Ridge(alpha=3.0),
    "svr": lambda: SVR(C=3.0, epsilon=0.1),
}


class CandidateScore(BaseModel):
    name: str
    mae: float
    balanced_mae: float  # mean of per-category MAEs: what the selection uses
    rmsle: float
    fit_s: float


class ForestReport(BaseModel):
    chosen: str
    scores: list[CandidateScore]
    train_items: int
    path: str


def category_weights(categories: list[str]) -> np.ndarray:
    """Each category's rows weigh the same in total; mean weight 1."""
    counts = Counter(categories)
    weights = np.array([1.0 / counts[c] for c in categories])
    return weights / weights.mean()


def _score(name: str, model: Any, x: np.ndarray, y: np.ndarray, categories: np.ndarray,
           weights: np.ndarray, fit_rows: np.ndarray, hold_rows: np.ndarray) -> CandidateScore:
    started = time.perf_counter()
    model.fit(x[fit_rows], y[fit_rows], sample_weight=weights[fit_rows])
    fit_s = time.perf_counter() - started
    guess, truth = np.exp(model.predict(x[hold_rows])), np.exp(y[hold_rows])
    errors, held = np.abs(guess - truth), categories[hold_rows]
    balanced = float(np.mean([errors[held == c].mean() for c in np.unique(held)]))
    rmsle = math.sqrt(float(np.mean((np.log1p(guess) - np.log1p(truth)) ** 2)))
    return CandidateScore(name=name, mae=float(errors.mean()), balanced_mae=balanced, rmsle=rmsle,
                          fit_s=round(fit_s, 2))


def fit_forest(train: list[Item], embedder: Embedder, models_dir: Path, *,
               candidates: list[str] | None = None, holdout: float = 0.2, seed: int = 42,
               weights: np.ndarray | None = None, progress: bool = True,
               log: Callable[[str], None] = print) -> ForestReport:
    """Compare the candidates, refit the best on all of `train`, save it under models_dir.

    `weights`: one per training item (e.g. the price prior of training/weights.py); by default
    each category counts the same."""
    names = candidates or list(CANDIDATES)
    unknown = set(names) - set(CANDIDATES)
    if unknown:
        raise ValueError(f"unknown regressor(s) {sorted(unknown)}; choose from {list(CANDIDATES)}")
    if len(train) < 20:
        raise ValueError(f"too few training items ({len(train)}) to fit a regressor")
    x = embedder.embed([item.text for item in train], progress=progress)
    y = np.log(np.array([item.price for item in train]))
    order = np.random.default_rng(seed).permutation(len(train))
    cut = int(len(train) * (1 - holdout))
    fit_rows, hold_rows = order[:cut], order[cut:]
    categories = np.array([item.category for item in train])
    if weights is None:
        weights = category_weights(list(categories))
    scores = []
    for name in names:
        found = _score(name, CANDIDATES[name](), x, y, categories, weights, fit_rows, hold_rows)
        log(f"  {name:24} MAE ${found.mae:8.2f}  per-category MAE ${found.balanced_mae:8.2f}  "
            f"RMSLE {found.rmsle:.3f}  fit {found.fit_s:6.1f}s")
        scores.append(found)
    best = min(scores, key=lambda s: s.balanced_mae).name
    model = CANDIDATES[best]().fit(x, y, sample_weight=weights)
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / FOREST_FILE
    tmp = path.with_suffix(".tmp")
    joblib.dump({"model": model, "kind": best, "embedder": embedder.key,
                 "scores": [s.model_dump() for s in scores]}, tmp)
    tmp.replace(path)
    return ForestReport(chosen=best, scores=scores, train_items=len(train), path=str(path))
