"""The pricing agents as one set: what input they accept and which of them can be loaded now."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agents.pricing.text import clean_description
from models.config import Settings
from models.types import Estimate, Pricer

if TYPE_CHECKING:
    from models.embeddings import Embedder

log = logging.getLogger(__name__)


def make_embedder(settings: Settings) -> Embedder:
    from models.embeddings import Embedder

    return Embedder(cache_path=settings.embedding_cache, backend=settings.embeddings,
                    max_seq_length=settings.embedding_tokens)


def load_pricers(settings: Settings, embedder: Embedder | None = None
                 ) -> tuple[dict[str, Pricer], dict[str, str]]:
    """Every pricing agent whose artifacts load, and why each other one is missing."""
    from agents.pricing.ensemble import EnsembleAgent
    from agents.pricing.forest import ForestAgent
    from agents.pricing.frontier import FrontierAgent
    from agents.pricing.lexical import LexicalIndex, TfidfAgent
    from agents.pricing.specialist import SpecialistAgent
    from vectorstore.store import StoreError

    embedder = embedder or make_embedder(settings)
    found: dict[str, Pricer] = {}
    missing: dict[str, str] = {}
    try:
        specialist = SpecialistAgent.from_settings(settings)
        if specialist is not None:
            found["specialist"] = specialist
        else:
            missing["specialist"] = "no fine-tuned specialist yet"
    except Exception as err:  # a broken adapter must not take the other agents down
        missing["specialist"] = f"cannot load: {err}"
    lexical = None
    try:
        lexical = LexicalIndex.load(settings.lexical_file)
        found["tfidf"] = TfidfAgent(lexical)
    except (FileNotFoundError, ValueError) as err:
        missing["tfidf"] = str(err)
    try:
        frontier = FrontierAgent.from_settings(settings, embedder, lexical)
    except StoreError as err:
        missing["frontier"] = str(err)
    else:
        if frontier is not None:
            found["frontier"] = frontier
        else:
            missing["frontier"] = "the vector store is empty: run `launch.py train store`"
    forest_path = settings.forest_file
    try:
        found["forest"] = ForestAgent.load(forest_path, embedder)
    except FileNotFoundError:
        missing["forest"] = "no forest model: run `launch.py train forest`"
    except ValueError as err:
        missing["forest"] = str(err)
    ensemble_path = settings.ensemble_file
    if not ensemble_path.is_file():
        missing["ensemble"] = "no ensemble: run `launch.py train ensemble`"
    else:
        try:
            found["ensemble"] = EnsembleAgent.load(ensemble_path, list(found.values()))
        except ValueError as err:
            missing["ensemble"] = str(err)
    for name, why in missing.items():
        log.info("%s agent not available: %s", name, why)
    return found, missing


PREFERRED_PRICERS = ("ensemble", "frontier", "forest", "tfidf", "specialist")


def main_pricer(found: dict[str, Pricer]) -> Pricer:
    """The pricer that speaks for the app and the scans: the ensemble, else the best one built."""
    for name in PREFERRED_PRICERS:
        if name in found:
            return found[name]
    raise ValueError("no pricing agent is built yet: run `launch.py train all` first")


def pricers(settings: Settings, embedder: Embedder | None = None) -> dict[str, Pricer]:
    """Every pricing agent whose artifacts exist, plus the ensemble over them when it is fitted.

    Nothing is built here: missing artifacts just leave their agent out.
    """
    return load_pricers(settings, embedder)[0]


def load_pricer(name: str, settings: Settings) -> Pricer:
    """One agent by name, or a ValueError that says which artifact to build."""
    found, missing = load_pricers(settings)
    if name not in found:
        raise ValueError(f"the {name} agent is not available: {missing.get(name, 'unknown agent')}")
    return found[name]


def price_report(description: str, found: Mapping[str, Pricer]) -> dict[str, Estimate]:
    """Each of the loaded agents' estimate of one description, the ensemble last: what `launch.py
    price` prints and the app's Price tab shows, from the one place both call."""
    import time

    from agents.pricing.ensemble import EnsembleAgent

    text = clean_description(description)
    if not found:
        raise ValueError("no pricing agent is built yet: run `launch.py train all` first")
    ensemble = found.get("ensemble")
    others = {name: p for name, p in found.items() if name != "ensemble"}
    report: dict[str, Estimate] = {}
    if isinstance(ensemble, EnsembleAgent):  # ask each member once: the same answers it blends
        started = time.perf_counter()
        answers, failures = ensemble.ask_members(text)
        report.update(answers)
        members = {m.name for m in ensemble.members}
        report.update({name: p.estimate(text) for name, p in others.items() if name not in members})
        report["ensemble"] = ensemble.combine(answers, started, failures)
    else:
        report.update({name: p.estimate(text) for name, p in others.items()})
        if ensemble is not None:
            report["ensemble"] = ensemble.estimate(text)
    return report


def catalogue_map(settings: Settings, *, limit: int = 2000, method: str = "pca") -> Any:
    """The 3D plotly map of the vector store, for the UI (which reaches the store only through here)."""
    from vectorstore.map import store_map
    from vectorstore.store import VectorStore

    store = VectorStore.from_settings(make_embedder(settings), settings)
    return store_map(store, limit=limit, method=method)
