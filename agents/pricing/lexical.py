"""Lexical side of pricing: TF-IDF over the training items' words, brands and model numbers.

One artifact (fitted by training/lexical.py) holds the vectorizer, every training item's sparse
vector with its title, category and price, and a ridge regression on log-price over the same
vectors. The frontier agent retrieves from it beside the dense store (hybrid retrieval: MiniLM
alone matches "Garmin Forerunner 255" to watch bands), and the tfidf agent prices with the ridge.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from agents.pricing.regression import RegressionPricer
from models.types import Neighbour


@dataclass
class LexicalIndex:
    vectorizer: Any  # sklearn TfidfVectorizer (rows come out L2-normalised: dot = cosine)
    matrix: Any  # scipy CSR, one row per training item
    titles: list[str]
    categories: list[str]
    prices: np.ndarray
    weights: np.ndarray  # each item's training weight (price prior): neighbours count with it
    ridge: Any  # sklearn Ridge on log-price over the same vectors

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        joblib.dump({f.name: getattr(self, f.name) for f in fields(self)}, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        if not path.is_file():
            raise FileNotFoundError(f"no lexical index at {path}: run `launch.py train lexical`")
        try:
            return cls(**joblib.load(path))
        except Exception as err:  # truncated or from an older version: say what to do
            raise ValueError(f"cannot load the lexical index {path}: {err}; "
                             "rebuild it with `launch.py train lexical`") from err

    def __len__(self) -> int:
        return len(self.titles)

    @cached_property
    def _by_term(self) -> Any:
        """The matrix transposed, as CSR, once: a query then reads only its own terms' rows
        (0.1 ms), where `query @ matrix.T` converted the whole matrix on every call (~20 ms)."""
        return self.matrix.T.tocsr()

    def search(self, texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """For each text, the row numbers of its k most similar items and their cosine similarities."""
        sims = (self.vectorizer.transform(texts) @ self._by_term).toarray()
        k = min(k, sims.shape[1])
        rows = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, rows, 1), axis=1)
        rows = np.take_along_axis(rows, order, 1)
        return rows, np.take_along_axis(sims, rows, 1)

    def neighbours(self, texts: list[str], k: int) -> list[list[Neighbour]]:
        rows, sims = self.search(texts, k)
        return [[Neighbour(title=self.titles[r], category=self.categories[r], price=float(self.prices[r]),
                           similarity=round(float(s), 6), weight=float(self.weights[r]), source="words")
                 for r, s in zip(row, sim, strict=True)]
                for row, sim in zip(rows, sims, strict=True)]

    def predict_log(self, texts: list[str]) -> np.ndarray:
        return self.ridge.predict(self.vectorizer.transform(texts))


class TfidfAgent(RegressionPricer):
    """Ridge regression on log-price over the description's TF-IDF vector."""

    name = "tfidf"
    note = "TF-IDF ridge on the description's words"

    def __init__(self, index: LexicalIndex):
        self.index = index
        self.ceiling = float(index.prices.max())

    def predict_log(self, texts: list[str]) -> list[float]:
        return list(self.index.predict_log(texts))
