"""Forest agent: a regressor over the description's embedding, predicting log-price.

Fitted by training/forest.py, which compares several regressors and keeps the best measured;
the saved artifact says which one it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib

from agents.pricing.regression import RegressionPricer
from models.embeddings import LEGACY_EMBEDDER, Embedder, embedding_mismatch


def fitted_embedder(path: Path) -> str | None:
    """The embedding a saved forest was fitted on (None: no readable forest there)."""
    try:
        return joblib.load(path).get("embedder")
    except Exception:  # missing, truncated or foreign: the pipeline fits a new one
        return None


class ForestAgent(RegressionPricer):
    name = "forest"

    def __init__(self, model: Any, embedder: Embedder, kind: str = ""):
        self.model = model
        self.embedder = embedder
        self.kind = kind or type(model).__name__
        self.note = f"{self.kind} on the description's embedding"

    @classmethod
    def load(cls, path: Path, embedder: Embedder) -> ForestAgent:
        if not path.is_file():
            raise FileNotFoundError(f"no forest model at {path}: run `launch.py train forest`")
        try:
            saved = joblib.load(path)
        except Exception as err:  # a truncated or foreign file: say which, not a pickle traceback
            raise ValueError(f"cannot load the forest model {path}: {err}; "
                             "rebuild it with `launch.py train forest`") from err
        built = saved.get("embedder") or LEGACY_EMBEDDER
        if built != embedder.key:
            raise ValueError(embedding_mismatch(f"the forest {path}", built, embedder.key))
        return cls(saved["model"], embedder, saved.get("kind", ""))

    def predict_log(self, texts: list[str]) -> list[float]:
        return list(self.model.predict(self.embedder.embed(texts)))
