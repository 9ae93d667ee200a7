"""How fast the pricing path is, on this machine:

    .venv/bin/python benchmarks/speed.py [--items N] [--queries N] [--prices N] [--mae N] [--json FILE]

1. raw embedding rate vs vector-store build rate on the same N items the store indexes (the ratio is
   what the store adds on top of embedding) for each way of embedding, in the same run: torch
   float32 (the first default), torch in bf16 where the CPU has it (the second), ONNX int8 and
   ONNX int8 reading 128 tokens (the default); how far each one's vectors agree with
   float32's (cosine, top-10 neighbour overlap); with --mae N the reference protocol's MAE of
   each: an SVR (the forest agent's regressor) and a 5-nearest-neighbour price (the frontier's
   retrieval) fitted on the same seeded N training items embedded that way, scored on every
   reference-test item, each difference to float32 with a 95% paired bootstrap interval;
2. query latency p50/p95 against the built store (or, if none is built, a store of random
   vectors as large as the catalogue), by vector and by text (embedding included);
3. single-item price latency p50/p95 per agent and for the ensemble.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.svm import SVR

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.pricing import pricers  # noqa: E402
from models.config import Settings  # noqa: E402
from models.embeddings import Embedder  # noqa: E402
from training.data import REFERENCE_TEST, load_split  # noqa: E402
from training.pipeline import dense_items  # noqa: E402
from vectorstore.store import VectorStore  # noqa: E402

CATALOGUE_SIZE = 10_602


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


@dataclass(frozen=True)
class Way:
    """One way of embedding: the backend, bf16 (None: where the CPU has it) and tokens read."""

    name: str
    backend: str = "onnx"
    bf16: bool | None = None
    tokens: int = 256


WAYS = (Way("torch float32", backend="torch", bf16=False), Way("torch, bf16 where native", backend="torch"),
        Way("onnx int8"), Way("onnx int8, 128 tokens (default)", tokens=128))


def fresh_embedder(way: Way = WAYS[-1]) -> Embedder:
    """Loaded, uncached, remembering nothing: each timing does its own embedding."""
    embedder = Embedder(backend=way.backend, bf16=way.bf16, max_seq_length=way.tokens)
    embedder.embed(["warm-up: load the model outside the timings"])
    return embedder


def build_rates(items, way: Way, settings: Settings) -> tuple[dict[str, float], np.ndarray]:
    texts = [item.text for item in items]
    embedder = fresh_embedder(way)
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    raw = len(texts) / (time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp:
        store = VectorStore.open(fresh_embedder(way), chroma_dir=Path(tmp))
        started = time.perf_counter()
        store.build(items, progress=False)
        build = len(items) / (time.perf_counter() - started)
    return {"items": len(items), "embed_per_s": round(raw, 1), "build_per_s": round(build, 1),
            "build_over_embed": round(build / raw, 3), "bf16": bool(embedder.bf16)}, vectors


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


def reference_mae(settings: Settings, train_items: int, seed: int = 18) -> dict[str, dict[str, object]]:
    """Each way's reference-protocol MAE from models fitted on its own vectors (section 1 above)."""
    train = load_split(settings.split_dir, "train")
    picked = np.random.default_rng(seed).choice(len(train), min(train_items, len(train)), replace=False)
    fit = [train[i] for i in sorted(picked)]
    test = load_split(settings.split_dir, REFERENCE_TEST)
    if not test:
        return {}
    log_prices, truth = np.log([i.price for i in fit]), np.array([i.price for i in test])
    errors: dict[str, dict[str, np.ndarray]] = {}
    for way in WAYS:
        embedder = fresh_embedder(way)
        x_fit, x_test = embedder.embed([i.text for i in fit]), embedder.embed([i.text for i in test])
        svr = SVR(C=3.0, epsilon=0.1).fit(x_fit, log_prices)  # training/forest.py's chosen candidate
        nearest = np.argsort(-(x_test @ x_fit.T), axis=1)[:, :5]
        errors[way.name] = {"svr": np.abs(np.exp(svr.predict(x_test)) - truth),
                            "knn5": np.abs(np.exp(log_prices[nearest].mean(axis=1)) - truth)}
    resamples = np.random.default_rng(0).integers(0, len(test), size=(5000, len(test)))
    base = errors[WAYS[0].name]
    out: dict[str, dict[str, object]] = {}
    for name, errs in errors.items():
        out[name] = {}
        for model, e in errs.items():
            difference = e - base[model]
            low, high = np.percentile(difference[resamples].mean(axis=1), [2.5, 97.5])
            out[name][model] = {"mae": round(float(e.mean()), 2), "vs_float32": round(float(difference.mean()), 2),
                                "ci95": [round(float(low), 2), round(float(high), 2)]}
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
        pricer = pricers(settings, Embedder(backend=settings.embeddings, max_seq_length=settings.embedding_tokens))[name]
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
    parser.add_argument("--items", type=int, default=400, help="items for the build-rate test")
    parser.add_argument("--queries", type=int, default=100, help="queries for the latency test")
    parser.add_argument("--prices", type=int, default=30, help="descriptions priced per agent")
    parser.add_argument("--mae", type=int, default=0, help="training items the MAE models are fitted on (0: no MAE)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    settings = Settings()
    train = load_split(settings.split_dir, "train")
    test = load_split(settings.split_dir, "test")
    results: dict[str, object] = {}

    print(f"(load average {os.getloadavg()[0]:.2f} at the start; {os.cpu_count()} CPUs)")
    # What the store indexes (the catalogue's training items, ~157 tokens each), sampled: the
    # split's first items are mostly extra data, ~133 tokens, which flattered every rate by ~15%.
    stored = dense_items(train)
    sample = [stored[i] for i in sorted(np.random.default_rng(0).choice(len(stored), min(args.items, len(stored)),
                                                                         replace=False))]
    vectors = {}
    for way in WAYS:
        rates, vectors[way.name] = build_rates(sample, way, settings)
        results[f"build {way.name}"] = rates
        agree = results[f"agreement {way.name}"] = agreement(vectors[WAYS[0].name], vectors[way.name])
        print(f"{way.name:28} embedding {rates['embed_per_s']:6.1f} items/s, store build {rates['build_per_s']:6.1f} "
              f"items/s ({rates['build_over_embed']:.0%}); vs float32: cosine min {agree['cosine_min']}, mean "
              f"{agree['cosine_mean']}, top-10 neighbours shared {agree['top10_overlap']:.0%}"
              f"{'' if way.backend != 'torch' else ', bf16' if rates['bf16'] else ', float32'}"
              f" (load {os.getloadavg()[0]:.2f})", flush=True)
    if args.mae:
        mae = results["reference_mae"] = reference_mae(settings, args.mae)
        print(f"reference MAE (SVR and 5-NN fitted on {args.mae} training items embedded each way; "
              f"every reference-test item; difference to float32 with a 95% bootstrap interval):")
        for name, models in mae.items():
            print(f"  {name:28} " + "; ".join(f"{m} ${f['mae']:.2f} ({f['vs_float32']:+.2f}, "
                                              f"{f['ci95'][0]:+.2f} to {f['ci95'][1]:+.2f})" for m, f in models.items()))
        if not mae:
            print("  (no reference test split: run `launch.py data` with a reference set)")

    queries = [item.text for item in test[: args.queries]]
    embedder = Embedder(backend=settings.embeddings, max_seq_length=settings.embedding_tokens)
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
