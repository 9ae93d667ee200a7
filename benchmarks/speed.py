"""How fast the pricing path is, on this machine:

    .venv/bin/python benchmarks/speed.py [--items N] [--queries N] [--prices N] [--mae N] [--json FILE]

1. raw embedding rate vs vector-store build rate on the same N training items (the ratio is
   what the store adds on top of embedding), for the torch and the ONNX int8 backend in the
   same run, and how far their vectors agree (cosine, top-10 neighbour overlap); with --mae N
   also the ensemble's MAE on N reference-test items with queries embedded by each backend
   (store and forest as built);
2. query latency p50/p95 against the built store (or, if none is built, a store of random
   vectors as large as the catalogue), by vector and by text (embedding included);
3. single-item price latency p50/p95 per agent and for the ensemble.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.pricing import pricers  # noqa: E402
from models.config import Settings  # noqa: E402
from models.embeddings import Embedder  # noqa: E402
from training.data import REFERENCE_TEST, load_split  # noqa: E402
from vectorstore.store import VectorStore  # noqa: E402

CATALOGUE_SIZE = 10_602


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


BACKENDS = ("torch", "onnx")


def fresh_embedder(backend: str = "torch", settings: Settings | None = None) -> Embedder:
    """Loaded, uncached, remembering nothing: each timing does its own embedding."""
    embedder = Embedder(backend=backend, onnx_dir=(settings or Settings()).onnx_dir)
    embedder.embed(["warm-up: load the model outside the timings"])
    return embedder


def build_rates(items, backend: str, settings: Settings) -> tuple[dict[str, float], np.ndarray]:
    texts = [item.text for item in items]
    embedder = fresh_embedder(backend, settings)
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    raw = len(texts) / (time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp:
        store = VectorStore.open(fresh_embedder(backend, settings), chroma_dir=Path(tmp))
        started = time.perf_counter()
        store.build(items, progress=False)
        build = len(items) / (time.perf_counter() - started)
    return {"items": len(items), "embed_per_s": round(raw, 1), "build_per_s": round(build, 1),
            "build_over_embed": round(build / raw, 3)}, vectors


def agreement(exact: np.ndarray, fast: np.ndarray, k: int = 10) -> dict[str, float]:
    """How far the fast vectors stand in for the exact ones: cosine per text, and how many of each
    text's k nearest others (what retrieval returns) are the same."""
    cosines = (exact * fast).sum(axis=1)
    def nearest(v: np.ndarray) -> np.ndarray:
        similarities = v @ v.T
        np.fill_diagonal(similarities, -np.inf)
        return np.argsort(-similarities, axis=1)[:, :k]
    overlap = [len(set(a) & set(b)) / k for a, b in zip(nearest(exact), nearest(fast), strict=True)]
    return {"cosine_min": round(float(cosines.min()), 4), "cosine_mean": round(float(cosines.mean()), 4),
            f"top{k}_overlap": round(float(np.mean(overlap)), 3)}


def reference_mae(settings: Settings, limit: int) -> dict[str, float]:
    """The ensemble's MAE on `limit` reference-test items, its queries embedded by each backend."""
    items = load_split(settings.split_dir, REFERENCE_TEST)[:limit]
    out = {}
    for backend in BACKENDS:
        members = pricers(settings, Embedder(backend=backend, onnx_dir=settings.onnx_dir))
        if "ensemble" not in members or not items:
            return {}
        guesses = [e.value for e in members["ensemble"].estimate_batch([item.text for item in items])]
        out[backend] = round(float(np.mean([abs(g - item.price) for g, item in zip(guesses, items, strict=True)])), 2)
    return out


def query_latency(store: VectorStore, texts: list[str]) -> dict[str, object]:
    vectors = fresh_embedder().embed(texts)
    store.embedder = fresh_embedder()  # by-text queries embed for themselves
    store.query_vectors(vectors[:1])  # warm the index
    by_vector, by_text = [], []
    for vector in vectors:
        started = time.perf_counter()
        store.query_vectors(vector[None, :], k=5)
        by_vector.append(time.perf_counter() - started)
    for text in texts:
        started = time.perf_counter()
        store.query(text, k=5)
        by_text.append(time.perf_counter() - started)
    return {"store_items": store.count(), "by_vector": percentiles(by_vector),
            "by_text": percentiles(by_text)}


def synthetic_store(embedder: Embedder, directory: Path) -> VectorStore:
    """Random unit vectors, as many as the catalogue: index speed does not depend on meaning."""
    store = VectorStore.open(embedder, chroma_dir=directory)
    vectors = np.random.default_rng(0).normal(size=(CATALOGUE_SIZE, embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    step = store.client.get_max_batch_size()
    for start in range(0, CATALOGUE_SIZE, step):
        rows = range(start, min(start + step, CATALOGUE_SIZE))
        store.collection.add(ids=[f"r{i}" for i in rows], embeddings=vectors[rows.start:rows.stop],
                             metadatas=[{"price": 1.0, "category": "x", "title": f"r{i}"} for i in rows])
    return store


def price_latency(settings: Settings, texts: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for name in pricers(settings):
        # A fresh, uncached embedder per agent, so no agent rides on another's embeddings.
        pricer = pricers(settings, Embedder())[name]
        pricer.estimate(texts[0])  # warm-up: loads models
        seconds = []
        for text in texts[1:]:
            started = time.perf_counter()
            pricer.estimate(text)
            seconds.append(time.perf_counter() - started)
        out[name] = percentiles(seconds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200, help="items for the build-rate test")
    parser.add_argument("--queries", type=int, default=100, help="queries for the latency test")
    parser.add_argument("--prices", type=int, default=30, help="descriptions priced per agent")
    parser.add_argument("--mae", type=int, default=0, help="reference-test items for the MAE per backend")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    settings = Settings()
    train = load_split(settings.split_dir, "train")
    test = load_split(settings.split_dir, "test")
    results: dict[str, object] = {}

    vectors = {}
    for backend in BACKENDS:
        rates, vectors[backend] = build_rates(train[: args.items], backend, settings)
        results[f"build_{backend}"] = rates
        print(f"embedding {backend:5} {rates['embed_per_s']:8.1f} items/s  ({rates['items']} training items)")
        print(f"store build {backend:5} {rates['build_per_s']:6.1f} items/s  = {rates['build_over_embed']:.0%} "
              f"of the raw embedding rate")
    agree = results["agreement"] = agreement(vectors["torch"], vectors["onnx"])
    print(f"onnx vs torch cosine min {agree['cosine_min']}, mean {agree['cosine_mean']}; top-10 neighbours "
          f"shared {agree['top10_overlap']:.0%}")
    if args.mae:
        mae = results["reference_mae"] = reference_mae(settings, args.mae)
        print("reference MAE " + (", ".join(f"{b} ${v:.2f}" for b, v in mae.items()) or "(no ensemble built)")
              + f"  ({args.mae} reference-test items; queries by each backend, store and forest as built)")

    queries = [item.text for item in test[: args.queries]]
    embedder = Embedder()
    store = VectorStore.from_settings(embedder, settings)
    with tempfile.TemporaryDirectory() as tmp:
        if store.count() < 1000:
            print(f"(no built store at {settings.chroma_dir}: timing {CATALOGUE_SIZE} random vectors)")
            store = synthetic_store(embedder, Path(tmp))
        latency = query_latency(store, queries)
    results["query"] = latency
    print(f"query k=5     {latency['store_items']} items: by vector p50 {latency['by_vector']['p50_ms']} ms, "
          f"p95 {latency['by_vector']['p95_ms']} ms; by text p50 {latency['by_text']['p50_ms']} ms, "
          f"p95 {latency['by_text']['p95_ms']} ms")

    prices = price_latency(settings, [item.text for item in test[: args.prices + 1]])
    results["price"] = prices
    if not prices:
        print("price         no agent built yet: run `launch.py train all`")
    for name, figures in prices.items():
        print(f"price {name:10} p50 {figures['p50_ms']:8.1f} ms  p95 {figures['p95_ms']:8.1f} ms  (one item)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
