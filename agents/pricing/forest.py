"""Forest agent: a regressor over the description's embedding, predicting log-price.

Fitted by training/forest.py, which compares several regressors and keeps the best measured;
the saved artifact says which one it is.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import joblib

from agents.pricing.text import clean_description, clean_descriptions
from models.embeddings import Embedder
from models.types import Estimate


class ForestAgent:
    name = "forest"

    def __init__(self, model: Any, embedder: Embedder, kind: str = ""):
        self.model = model
        self.embedder = embedder
        self.kind = kind or type(model).__name__

    @classmethod
    def load(cls, path: Path, embedder: Embedder) -> ForestAgent:
        if not path.is_file():
            raise FileNotFoundError(f"no forest model at {path}: run `launch.py train forest`")
        try:
            saved = joblib.load(path)
        except Exception as err:  # a truncated or foreign file: say which, not a pickle traceback
            raise ValueError(f"cannot load the forest model {path}: {err}; "
                             "rebuild it with `launch.py train forest`") from err
        if saved.get("embedder") != embedder.key:
            raise ValueError(f"{path} was fitted on {saved.get('embedder')} embeddings, not "
                             f"{embedder.key}; rebuild it with `launch.py train forest`")
        return cls(saved["model"], embedder, saved.get("kind", ""))

    def _estimates(self, texts: list[str], started: float) -> list[Estimate]:
        predictions = self.model.predict(self.embedder.embed(texts))
        per_item = (time.perf_counter() - started) / max(len(texts), 1)
        return [Estimate(agent=self.name, value=round(math.exp(float(p)), 2),
                         note=f"{self.kind} on the description's embedding",
                         latency_s=round(per_item, 4))
                for p in predictions]

    def estimate(self, description: str) -> Estimate:
        started = time.perf_counter()
        return self._estimates([clean_description(description)], started)[0]

    def estimate_batch(self, descriptions: list[str]) -> list[Estimate]:
        started = time.perf_counter()
        return self._estimates(clean_descriptions(descriptions), started)
