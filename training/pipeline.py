"""Build every artifact the pricing agents load, each only when missing or stale.

Order: the split (from Settings.catalogue), the baselines, the vector store (training split),
the forest (training split), the ensemble (validation split). `build_all` is what
`launch.py train all` and `make run` call; each step can also run alone.
"""

from __future__ import annotations

from collections.abc import Callable

from agents.pricing import make_embedder, pricers
from agents.pricing.ensemble import EnsembleModel
from models.config import Settings
from models.embeddings import Embedder
from training import data
from training.ensemble import train_ensemble
from training.forest import ForestReport, fit_forest
from vectorstore.store import VectorStore

Log = Callable[[str], None]


def ensure_split(settings: Settings, log: Log = print) -> bool:
    """Make the seeded train/val/test split from the configured catalogue if none exists."""
    if data.split_exists(settings.split_dir):
        return False
    if settings.catalogue is None:
        raise ValueError(f"no split at {settings.split_dir} and no catalogue to make one: set "
                         "DEALSCOUT_CATALOGUE or run `launch.py data --catalogue FILE`")
    report = data.load_catalogue(settings.catalogue)
    log(f"catalogue: {report.summary()}")
    if not report.items:
        raise ValueError(f"no usable items in {settings.catalogue}")
    splits = data.split_items(report.items)
    data.save_splits(splits, settings.split_dir, {"source": str(settings.catalogue), "seed": 42,
                                                  "skipped": dict(report.skipped)})
    log(f"split: train {len(splits.train)}, val {len(splits.val)}, test {len(splits.test)}")
    return True


def ensure_baselines(settings: Settings, log: Log = print) -> bool:
    from training.baselines import BASELINES, baseline_path, train_baselines

    if all(baseline_path(settings.models_dir, name).is_file() for name in BASELINES):
        return False
    train_baselines(data.load_split(settings.split_dir, "train"), settings.models_dir)
    log(f"baselines: {', '.join(BASELINES)}")
    return True


def open_store(settings: Settings, embedder: Embedder) -> VectorStore:
    return VectorStore.open(embedder, chroma_dir=settings.chroma_dir, chroma_url=settings.chroma_url)


def build_store(settings: Settings, embedder: Embedder | None = None, *, rebuild: bool = False,
                progress: bool = True, log: Log = print) -> int:
    """Add the training split to the store (skipping what is there); returns the number added."""
    store = open_store(settings, embedder or make_embedder(settings))
    if rebuild:
        store.reset()
    added = store.build(data.load_split(settings.split_dir, "train"), progress=progress)
    log(f"vector store: {added} added, {store.count()} items"
        f" ({settings.chroma_url or settings.chroma_dir})")
    return added


def train_forest(settings: Settings, embedder: Embedder | None = None, *, progress: bool = True,
                 log: Log = print) -> ForestReport:
    log("forest: comparing regressors on a held-out slice of the training split")
    report = fit_forest(data.load_split(settings.split_dir, "train"),
                        embedder or make_embedder(settings), settings.models_dir,
                        progress=progress, log=log)
    log(f"forest: kept {report.chosen}, saved {report.path}")
    return report


def fit_ensemble(settings: Settings, embedder: Embedder | None = None, *, level: float = 0.8,
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
    forest = settings.forest_file
    if forest.is_file() and forest.stat().st_mtime > path.stat().st_mtime:
        return True
    found = pricers(settings, embedder)
    fitted_on = found["ensemble"].model.members if "ensemble" in found else set()
    return fitted_on != set(found) - {"ensemble"}


def build_all(settings: Settings, *, force: bool = False, progress: bool = True,
              log: Log = print) -> list[str]:
    """Build whatever is missing (everything with force); returns the names of what was built."""
    embedder = make_embedder(settings)
    built = []
    if ensure_split(settings, log):
        built.append("split")
    if ensure_baselines(settings, log):
        built.append("baselines")
    if build_store(settings, embedder, rebuild=force, progress=progress, log=log):
        built.append("store")
    if force or not settings.forest_file.is_file():
        train_forest(settings, embedder, progress=progress, log=log)
        built.append("forest")
    if force or _ensemble_stale(settings, embedder):
        fit_ensemble(settings, embedder, log=log)
        built.append("ensemble")
    if not built:
        log("every artifact is already built")
    return built
