"""Every price model by name, so the CLI and the benchmarks judge them the same way."""

from __future__ import annotations

from models.config import Settings
from models.types import Pricer
from training.baselines import BASELINES, load_baseline

AGENTS = ("specialist", "tfidf", "frontier", "forest", "ensemble")
# Loadable by name, not in the default run: minutes of digit generation on CPU.
REFERENCES = ("specialist_untuned",)


def model_names() -> list[str]:
    return [*BASELINES, *AGENTS]


def load_model(name: str, settings: Settings) -> Pricer:
    if name in BASELINES:
        return load_baseline(settings.models_dir, name)
    if name in AGENTS:
        from agents.pricing import load_pricer

        return load_pricer(name, settings)
    if name == "specialist_untuned":
        return untuned_specialist(settings)
    raise ValueError(f"unknown model {name!r}; choose from {', '.join([*model_names(), *REFERENCES])}")


def untuned_specialist(settings: Settings) -> Pricer:
    """The specialist's base model before fine-tuning, writing the number after "Price is $"
    (chat template for an instruct base): what fine-tuning is judged against."""
    from statistics import median

    from agents.pricing.specialist import SpecialistAgent
    from models.config import is_hf_checkpoint
    from models.specialist import SpecialistModel, load_tokenizer
    from training.data import load_split
    from training.finetune import specialist_format
    from training.finetune_config import FinetuneConfig

    base = settings.base_model_dir
    if not is_hf_checkpoint(base):
        raise ValueError("no base model: run `launch.py train base`")
    fmt = specialist_format(load_tokenizer(base), FinetuneConfig())
    fallback = median(item.price for item in load_split(settings.split_dir, "train"))
    return SpecialistAgent(SpecialistModel.untuned(base, fmt, fallback), fallback)
