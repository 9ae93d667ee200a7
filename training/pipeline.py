"""Build every artifact the pricing agents load, each only when missing or stale.

Order: the split (from Settings.catalogue, .reference and .extra_catalogue), the baselines, the
vector store and the forest (the training split's catalogue items), the lexical index (the whole
training split), the ensemble (validation split). `build_all` is what
`launch.py train all` and `make run` call; each step can also run alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from agents.pricing import make_embedder, pricers
from agents.pricing.ensemble import EnsembleModel
from agents.pricing.forest import fitted_embedder
from models.config import Settings
from models.embeddings import Embedder
from models.types import Item
from training import data
from training.ensemble import train_ensemble
from training.forest import ForestReport, fit_forest
from training.lexical import fit_lexical
from training.weights import price_prior_weights
from vectorstore.store import VectorStore

Log = Callable[[str], None]


def ensure_split(settings: Settings, log: Log = print, *, force: bool = False) -> bool:
    """Make the seeded split from the configured catalogue (and reference and extra data) if none
    exists, or anew with `force`."""
    if data.split_exists(settings.split_dir):
        if not force:
            return False
        if settings.catalogue is None:  # e.g. made by `launch.py data --from-hub`: no file to remake it from
            log("split kept: set DEALSCOUT_CATALOGUE to remake it")
            return False
    if settings.catalogue is None:
        raise ValueError(f"no split at {settings.split_dir} and no catalogue to make one: set "
                         "DEALSCOUT_CATALOGUE or run `launch.py data --catalogue FILE`")
    report = data.load_catalogue(settings.catalogue)
    log(f"catalogue: {report.summary()}")
    make_split(settings, report, str(settings.catalogue), log=log)
    return True


def make_split(settings: Settings, report: data.LoadReport, source: str, *, seed: int = 42,
               log: Log = print, **options: int | None) -> data.Splits:
    """Split curated catalogue items (with Settings.reference held out and Settings.extra_catalogue
    added to training, when set) and save the split with a manifest saying how it was made."""
    if not report.items:
        raise ValueError(f"no usable items in {source}")
    reference = extra = None
    if settings.reference is not None:
        reference = {item.title for item in data.load_catalogue(settings.reference).items}
        log(f"reference: {len(reference)} items of the distribution deals come from")
    if settings.extra_catalogue is not None:
        more = data.load_catalogue(settings.extra_catalogue, extra=True)
        log(f"extra training data: {more.summary()}")
        extra = more.items
    splits = data.split_items(report.items, seed=seed, reference=reference, extra=extra, **options)
    data.save_splits(splits, settings.split_dir, {
        "source": source, "seed": seed, "skipped": dict(report.skipped),
        "reference": str(settings.reference or ""), "extra": str(settings.extra_catalogue or "")})
    held_out = "".join(f", {name} {len(part)}" for name, part in (
        ("reference test", splits.reference_test), ("expensive test", splits.expensive_test)) if part)
    log(f"saved train {len(splits.train)}, val {len(splits.val)}, test {len(splits.test)}{held_out} "
        f"items to {settings.split_dir}")
    return splits


def ensure_baselines(settings: Settings, log: Log = print, *, force: bool = False) -> bool:
    from training.baselines import BASELINES, baseline_path, train_baselines

    if all(baseline_path(settings.models_dir, name).is_file() for name in BASELINES) and not force:
        return False
    train_baselines(data.load_split(settings.split_dir, "train"), settings.models_dir)
    log(f"baselines: {', '.join(BASELINES)}")
    return True


def open_store(settings: Settings, embedder: Embedder) -> VectorStore:
    return VectorStore.from_settings(embedder, settings)


def dense_items(train: list[Item]) -> list[Item]:
    """The training items the embedding members (store, forest) read: the catalogue's, not the
    extra data. Embedding ~32k extra texts would take `make run` past 15 minutes on 2 cores; the
    extra data reaches the ensemble through the lexical index and the TF-IDF ridge."""
    return [item for item in train if item.source != "extra"]


def prior_weights(settings: Settings, items: list[Item]) -> np.ndarray:
    """training/weights.py's price prior of these training items towards the validation split."""
    return price_prior_weights([i.price for i in items],
                               [i.price for i in data.load_split(settings.split_dir, "val")])


def build_store(settings: Settings, embedder: Embedder | None = None, *, rebuild: bool = False,
                progress: bool = True, log: Log = print, ray_address: str | None = None) -> int:
    """Add the training split to the store (skipping what is there); returns the number added.
    With `ray_address`, the embedding runs on that Ray cluster (training/distributed.py)."""
    store = open_store(settings, embedder or make_embedder(settings))
    if not store.fits_embedder():  # built with another embedding (or empty, made for one)
        if store.count() and not rebuild:
            log(f"vector store: holds {store.built_with} vectors, embedding is now {store.embedder.key}: rebuilding")
        rebuild = True
    if rebuild:
        store.reset()
    items = dense_items(data.load_split(settings.split_dir, "train"))
    weights = prior_weights(settings, items)
    if ray_address:
        from training.distributed import build_store_on_ray

        run = build_store_on_ray(store, items, weights, settings, ray_address)
        added = run.done
        log(f"ray {ray_address}: {added} embedded in {run.seconds:.0f} s ({run.per_s:.1f} items/s)")
    else:
        started = time.perf_counter()
        added = store.build(items, weights=weights, progress=progress)
        seconds = time.perf_counter() - started
        log(f"{added} embedded and stored in {seconds:.0f} s ({added / max(seconds, 1e-9):.1f} items/s)")
    log(f"vector store: {added} added, {store.count()} items"
        f" ({settings.chroma_url or settings.chroma_dir})")
    return added


def train_forest(settings: Settings, embedder: Embedder | None = None, *, progress: bool = True,
                 log: Log = print) -> ForestReport:
    log("forest: comparing regressors on a held-out slice of the training split")
    items = dense_items(data.load_split(settings.split_dir, "train"))
    report = fit_forest(items, embedder or make_embedder(settings), settings.models_dir,
                        weights=prior_weights(settings, items), progress=progress, log=log)
    log(f"forest: kept {report.chosen}, saved {report.path}")
    return report


def train_lexical(settings: Settings, log: Log = print) -> None:
    fit_lexical(data.load_split(settings.split_dir, "train"), data.load_split(settings.split_dir, "val"),
                settings.models_dir, log=log)


def fit_ensemble(settings: Settings, embedder: Embedder | None = None, *, level: float | None = None,
                 log: Log = print) -> EnsembleModel:
    members = pricers(settings, embedder or make_embedder(settings))
    members.pop("ensemble", None)
    if not members:
        raise ValueError("no pricing agent to blend: run `launch.py train store` or "
                         "`launch.py train forest` first")
    log(f"ensemble: fitting on the validation split with {', '.join(members)}")
    return train_ensemble(members, data.load_split(settings.split_dir, "val"), settings.models_dir,
                          level=level, log=log)


def _ensemble_stale(settings: Settings, embedder: Embedder) -> bool:
    path = settings.ensemble_file
    if not path.is_file():
        return True
    for member in (settings.forest_file, settings.lexical_file):
        if member.is_file() and member.stat().st_mtime > path.stat().st_mtime:
            return True
    found = pricers(settings, embedder)
    fitted_on = found["ensemble"].model.members if "ensemble" in found else set()
    return fitted_on != set(found) - {"ensemble"}


def build_all(settings: Settings, *, force: bool = False, progress: bool = True,
              log: Log = print) -> list[str]:
    """Build whatever is missing (everything with force); returns the names of what was built."""
    embedder = make_embedder(settings)
    built = []
    if ensure_split(settings, log, force=force):
        built.append("split")
    if ensure_baselines(settings, log, force=force):
        built.append("baselines")
    if build_store(settings, embedder, rebuild=force, progress=progress, log=log):
        built.append("store")
    if force or fitted_embedder(settings.forest_file) != embedder.key:
        train_forest(settings, embedder, progress=progress, log=log)
        built.append("forest")
    if force or not settings.lexical_file.is_file():
        train_lexical(settings, log=log)
        built.append("lexical")
    if force or _ensemble_stale(settings, embedder):
        fit_ensemble(settings, embedder, log=log)
        built.append("ensemble")
    if not built:
        log("every artifact is already built")
    return built
