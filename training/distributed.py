"""The vector store and batch pricing on a Ray cluster (the optional `scale` extra: `pip install .[scale]`).

Ray Data hands batches of texts to a pool of actors, each loading MiniLM once (on a GPU when the
cluster has GPUs: one actor per GPU; else one per CPU), and the driver writes what comes back to
the store, a `chroma run` server every node can reach (DEALSCOUT_CHROMA_URL). The driver asks the
store what it already holds first, so a build cut off anywhere resumes; a worker that dies
mid-batch is restarted by Ray and its batch retried.

Pricing runs the ensemble in the actors instead; every node needs the same data folder (built
artifacts) at the same path, e.g. on a shared disk.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.config import Settings
from models.types import Item
from vectorstore.store import VectorStore, item_weights

BATCH = 64  # texts per actor call: large enough to amortise the hop, small enough to retry cheaply
# Ray Data restarts a dead actor and retries its batch, however often (its default; a batch is
# safe to redo): tests/test_ray_build.py kills one mid-build.


class ScaleError(RuntimeError):
    """Ray is missing or the cluster cannot be used; the text says what to do."""


class EmbedBatch:
    """A Ray Data actor: loads the embedder once, then turns {"id", "text"} batches into vectors."""

    def __init__(self, backend: str, device: str, tokens: int):
        from models.embeddings import Embedder

        self.embedder = Embedder(backend=backend, device=device, max_seq_length=tokens)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        return {"id": batch["id"], "vector": list(self.embedder.embed(list(batch["text"])))}


class PriceBatch:
    """A Ray Data actor: loads the pricing agents once, then estimates {"text"} batches."""

    def __init__(self, settings: dict[str, Any]):
        from agents.pricing import main_pricer, pricers

        self.pricer = main_pricer(pricers(Settings(**settings)))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        return {"row": batch["row"], "answer": [json.dumps(price_answer(self.pricer, str(t))) for t in batch["text"]]}


def price_answer(pricer: Any, text: str) -> dict[str, Any]:
    """{"estimate": ...} or, for a description that cannot be priced, {"error": why}."""
    try:
        return {"estimate": pricer.estimate(text).model_dump(mode="json")}
    except ValueError as err:
        return {"error": str(err)}


@dataclass
class RayRun:
    done: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


def connect(address: str) -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ScaleError("Ray is not installed: `pip install .[scale]` (or `pip install 'ray[data]'`)") from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ScaleError(f"cannot reach the Ray cluster at {address}: {str(err).splitlines()[0]}") from None
    # The command reports its own progress: not Ray Data's bars, plan dumps and INFO lines too.
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    return ray


def _pool(ray: Any, use_gpus: bool) -> dict[str, Any]:
    """One actor per GPU when there are GPUs to use, else one per CPU."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    if gpus and use_gpus:
        return {"compute": ray.data.ActorPoolStrategy(min_size=1, max_size=gpus), "num_gpus": 1}
    return {"compute": ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, cpus)), "num_cpus": 1}


def embed_on_ray(address: str, rows: Sequence[tuple[str, str]], settings: Settings, *,
                 actor: type = EmbedBatch) -> Iterator[tuple[list[str], np.ndarray]]:
    """(ids, vectors) for (id, text) rows, batch by batch as the actors finish them."""
    ray = connect(address)
    # The vectors must be the ones the app queries with: GPUs serve the torch backend only.
    pool = _pool(ray, use_gpus=settings.embeddings == "torch")
    device = "cuda" if pool.get("num_gpus") else "cpu"
    data = ray.data.from_items([{"id": i, "text": t} for i, t in rows])
    vectors = data.map_batches(actor, batch_size=BATCH, batch_format="numpy",
                               fn_constructor_kwargs={"backend": settings.embeddings, "device": device,
                                                      "tokens": settings.embedding_tokens},
                               **pool)
    for batch in vectors.iter_batches(batch_size=None, batch_format="numpy"):
        yield [str(i) for i in batch["id"]], np.stack(batch["vector"]).astype(np.float32)


def build_store_on_ray(store: VectorStore, items: Sequence[Item], weights: Sequence[float] | None,
                       settings: Settings, address: str, *, actor: type = EmbedBatch,
                       on_batch: Callable[[int], None] | None = None) -> RayRun:
    """Add the items not yet in `store`, embedded on the cluster; returns how many and how fast."""
    started = time.perf_counter()
    todo = dict(store.missing(items))
    weight_of = item_weights(items, weights)
    added = 0
    if todo:
        for ids, vectors in embed_on_ray(address, [(i, item.text) for i, item in todo.items()], settings,
                                         actor=actor):
            store.add([(i, todo[i]) for i in ids], vectors, weight_of)
            added += len(ids)
            if on_batch:
                on_batch(added)
    return RayRun(added, time.perf_counter() - started)


def price_on_ray(address: str, texts: Sequence[str], settings: Settings) -> tuple[list[dict[str, Any]], RayRun]:
    """Each text's price_answer, in the order given, priced on the cluster."""
    started = time.perf_counter()
    ray = connect(address)
    pool = _pool(ray, use_gpus=False)  # the pricers run on CPUs
    shared = {"data_dir": str(settings.data_dir.resolve()), "chroma_url": settings.chroma_url,
              "embeddings": settings.embeddings, "embedding_tokens": settings.embedding_tokens}
    data = ray.data.from_items([{"row": n, "text": t} for n, t in enumerate(texts)])
    out: list[dict[str, Any]] = [{} for _ in texts]
    priced = data.map_batches(PriceBatch, batch_size=BATCH, batch_format="numpy",
                              fn_constructor_kwargs={"settings": shared}, **pool)
    for batch in priced.iter_batches(batch_size=None, batch_format="numpy"):
        for row, answer in zip(batch["row"], batch["answer"], strict=True):
            out[int(row)] = json.loads(str(answer))
    return out, RayRun(len(texts), time.perf_counter() - started)

