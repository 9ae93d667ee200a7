"""Baselines every real model must beat: the training mean, engineered features, TF-IDF ridge."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.types import MAX_PRICE, MIN_PRICE, Item, ValuePricer

_WEIGHT = re.compile(
    r"(\d+(?:\.\d+)?)\s*(pounds?|lbs?|ounces?|oz|kilograms?|kg|grams?|g)\b", re.IGNORECASE
)
_TO_POUNDS = {"p": 1.0, "l": 1.0, "o": 1 / 16, "k": 2.2046, "g": 1 / 453.6}
_PREMIUM = re.compile(r"\b(professional|pro|premium|heavy[- ]duty|commercial|stainless|wireless)\b", re.I)
_CHEAP = re.compile(r"\b(pack of|sticker|case|cover|cable|replacement|refill|download|code)\b", re.I)


class ConstantPricer(ValuePricer):
    """Always the training mean: the floor any model must clear."""

    name = "constant"

    def fit(self, items: list[Item]) -> ConstantPricer:
        self.mean = float(np.mean([item.price for item in items]))
        return self

    def predict(self, descriptions: list[str]) -> list[float]:
        return [self.mean] * len(descriptions)


def weight_pounds(text: str) -> float | None:
    match = _WEIGHT.search(text)
    if not match:
        return None
    unit = match.group(2).lower()
    factor = _TO_POUNDS["g" if unit in ("g", "gram", "grams") else unit[0]]
    return float(match.group(1)) * factor


class FeaturesPricer(ValuePricer):
    """Linear regression on log-price over features a person would think of first."""

    name = "features"

    def features(self, text: str) -> list[float]:
        weight = weight_pounds(text)
        first = text.split(maxsplit=1)[0].lower() if text.strip() else ""
        return [
            math.log1p(weight) if weight is not None else 0.0,
            float(weight is None),
            math.log1p(len(text)),
            float(first in self.brands),
            math.log1p(sum(ch.isdigit() for ch in text)),
            float(bool(_PREMIUM.search(text))),
            float(bool(_CHEAP.search(text))),
        ]

    def fit(self, items: list[Item]) -> FeaturesPricer:
        brands = Counter(item.details.get("Brand", "").split(maxsplit=1)[0].lower()
                         for item in items if item.details.get("Brand"))
        self.brands = {b for b, n in brands.items() if n >= 3}
        x = np.array([self.features(item.text) for item in items])
        y = np.log1p([item.price for item in items])
        self.model = make_pipeline(StandardScaler(), LinearRegression()).fit(x, y)
        return self

    def predict(self, descriptions: list[str]) -> list[float]:
        x = np.array([self.features(text) for text in descriptions])
        return np.expm1(self.model.predict(x)).clip(MIN_PRICE, MAX_PRICE).tolist()


class TfidfRidgePricer(ValuePricer):
    """Bag of words and bigrams, ridge regression on log-price: strong and cheap."""

    name = "tfidf_ridge"

    def fit(self, items: list[Item]) -> TfidfRidgePricer:
        self.model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=100_000, sublinear_tf=True),
            Ridge(alpha=1.0),
        ).fit([item.text for item in items], np.log1p([item.price for item in items]))
        return self

    def predict(self, descriptions: list[str]) -> list[float]:
        return np.expm1(self.model.predict(descriptions)).clip(MIN_PRICE, MAX_PRICE).tolist()


BASELINES = {cls.name: cls for cls in (ConstantPricer, FeaturesPricer, TfidfRidgePricer)}


def baseline_path(models_dir: Path, name: str) -> Path:
    return models_dir / f"baseline_{name}.joblib"


def train_baselines(train: list[Item], models_dir: Path) -> dict[str, ValuePricer]:
    models_dir.mkdir(parents=True, exist_ok=True)
    fitted = {}
    for name, cls in BASELINES.items():
        fitted[name] = cls().fit(train)
        joblib.dump(fitted[name], baseline_path(models_dir, name))
    return fitted


def load_baseline(models_dir: Path, name: str) -> ValuePricer:
    path = baseline_path(models_dir, name)
    if not path.is_file():
        raise ValueError(f"no {name} baseline at {path}: run `launch.py train baseline`")
    return joblib.load(path)
