"""Every price model by name, so the CLI and the benchmarks judge them the same way."""

from __future__ import annotations

from models.config import Settings
from models.types import Pricer
from training.baselines import BASELINES, load_baseline

AGENTS = ("specialist", "frontier", "forest", "ensemble")


def model_names() -> list[str]:
    return [*BASELINES, *AGENTS]


def load_model(name: str, settings: Settings) -> Pricer:
    if name in BASELINES:
        return load_baseline(settings.models_dir, name)
    if name in AGENTS:
        from agents.pricing import load_pricer

        return load_pricer(name, settings)
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(model_names())}")
