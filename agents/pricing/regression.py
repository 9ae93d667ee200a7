"""What the regression pricers share: clean the descriptions, predict log-price, answer Estimates."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from agents.pricing.text import clean_description, clean_descriptions
from models.types import Estimate


class RegressionPricer:
    """Subclasses set `name` and `note` and implement `predict_log`; `ceiling` (when set) caps an
    answer beyond the training data's prices, where a regressor only extrapolates."""

    name: str
    note: str
    ceiling: float | None = None

    def predict_log(self, texts: list[str]) -> Sequence[float]:
        raise NotImplementedError

    def _estimates(self, texts: list[str], started: float) -> list[Estimate]:
        logs = self.predict_log(texts)
        per_item = (time.perf_counter() - started) / max(len(texts), 1)
        cap = self.ceiling if self.ceiling is not None else math.inf
        return [Estimate(agent=self.name, value=round(min(math.exp(float(v)), cap), 2), note=self.note,
                         latency_s=round(per_item, 4))
                for v in logs]

    def estimate(self, description: str) -> Estimate:
        started = time.perf_counter()
        return self._estimates([clean_description(description)], started)[0]

    def estimate_batch(self, descriptions: list[str]) -> list[Estimate]:
        started = time.perf_counter()
        return self._estimates(clean_descriptions(descriptions), started)
