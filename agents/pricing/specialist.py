"""The specialist agent: the fine-tuned small LLM as a pricer the ensemble can use."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from agents.pricing.text import clean_descriptions
from models.config import Settings, is_hf_checkpoint
from models.types import Estimate


class PriceModel(Protocol):
    """What the agent needs from the model: prices for a batch of texts (None: no answer)."""

    def predict(self, texts: list[str]) -> list[float | None]: ...


def description_key(description: str) -> str:
    return hashlib.sha256(" ".join(description.split()).encode("utf-8")).hexdigest()


class SpecialistAgent:
    """Prices descriptions with the specialist model, in batches, remembering recent answers."""

    name = "specialist"

    def __init__(self, model: PriceModel, fallback_price: float, cache_size: int = 4096):
        self.model = model
        self.fallback_price = fallback_price
        self.cache_size = cache_size
        self._cache: OrderedDict[str, float | None] = OrderedDict()

    @classmethod
    def load(cls, directory: Path, base_model: Path | None = None) -> SpecialistAgent:
        from models.specialist import SpecialistModel

        model = SpecialistModel.load(directory, base_model)
        return cls(model, model.spec.fallback_price)

    @classmethod
    def from_settings(cls, settings: Settings) -> SpecialistAgent | None:
        """The trained specialist under the data directory, or None when there is none yet."""
        from models.specialist import SPEC_FILE

        directory = settings.specialist_dir
        if not (directory / SPEC_FILE).is_file():
            return None
        base = settings.base_model_dir
        return cls.load(directory, base if is_hf_checkpoint(base) else None)

    def estimate(self, description: str) -> Estimate:
        return self.estimate_batch([description])[0]

    def estimate_batch(self, descriptions: list[str]) -> list[Estimate]:
        started = time.perf_counter()
        texts = clean_descriptions(descriptions)
        keys = [description_key(t) for t in texts]
        known = {k: self._cache[k] for k in keys if k in self._cache}
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in known}
        if todo:
            known.update(zip(todo, self.model.predict(list(todo.values())), strict=True))
        for key in keys:
            self._remember(key, known[key])
        each = (time.perf_counter() - started) / max(len(texts), 1)
        return [self._estimate(known[key], each) for key in keys]

    def _estimate(self, value: float | None, latency: float) -> Estimate:
        if value is None:
            return Estimate(agent=self.name, value=self.fallback_price, latency_s=latency,
                            note="the model gave no number; the training median stands in")
        return Estimate(agent=self.name, value=value, latency_s=latency)

    def _remember(self, key: str, value: float | None) -> None:
        self._cache[key] = value
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
