"""Embeddings: the real offline MiniLM model, normalised vectors, and the per-text cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.config import Settings
from models.embeddings import DIM, Embedder, native_bf16


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_vectors_are_normalised_and_meaningful(embedder: Embedder) -> None:
    vectors = embedder.embed([
        "Cordless drill driver 20V with two lithium batteries and charger",
        "20-volt cordless power drill kit, battery included",
        "Acoustic guitar strings, phosphor bronze, light gauge",
    ])
    assert vectors.shape == (3, DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    drills, drill_guitar = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert drills > drill_guitar + 0.3


def test_empty_list_and_odd_text(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, DIM)
    odd = embedder.embed(["", "   ", "Ü" * 100_000, "<b>日本語の説明</b>"])
    assert odd.shape == (4, DIM) and np.isfinite(odd).all()


def test_cache_reuses_vectors_and_survives_reopen(embedder: Embedder, tmp_path) -> None:
    cache = tmp_path / "emb.sqlite"
    first = Embedder(cache_path=cache)
    first._model = embedder._load()  # share the loaded weights; the cache is what is under test
    texts = ["red kettle 1.7 litre", "blue kettle", "red kettle 1.7 litre"]
    vectors = first.embed(texts)
    assert len(first.cache) == 2  # the duplicate text is embedded and stored once
    assert np.array_equal(vectors[0], vectors[2])

    again = Embedder(cache_path=cache)

    def no_model(_texts):
        raise AssertionError("cached texts must not be embedded again")

    again._encode = no_model
    assert np.array_equal(again.embed(texts), vectors)


def test_cache_is_keyed_by_model_settings(embedder: Embedder, tmp_path) -> None:
    cache = tmp_path / "emb.sqlite"
    full = Embedder(cache_path=cache)
    full._model = embedder._load()
    full.embed(["a long product description " * 40])
    short = Embedder(cache_path=cache, max_seq_length=32)
    assert short.key != full.key
    calls = []
    short._encode = lambda texts: calls.append(texts) or np.zeros((len(texts), DIM), np.float32)
    short.embed(["a long product description " * 40])
    assert calls, "a different max_seq_length must not reuse the full-length vector"


def test_recent_texts_are_not_embedded_twice(embedder: Embedder) -> None:
    fresh = Embedder()
    fresh._model = embedder._load()
    calls = []
    encode = fresh._encode
    fresh._encode = lambda texts: calls.append(list(texts)) or encode(texts)
    first = fresh.embed(["oak dining table"])
    first[0, :] = 0  # the caller's array is its own
    again = fresh.embed(["oak dining table", "pine bookshelf"])
    assert calls == [["oak dining table"], ["pine bookshelf"]]
    assert np.linalg.norm(again[0]) == pytest.approx(1, abs=1e-4)


PRODUCTS = ["Sony WH-1000XM5 wireless noise cancelling headphones, black, 30 hours of battery",
            "DEWALT 20V MAX cordless drill driver kit with two batteries and charger " * 6,
            "Acoustic guitar strings, phosphor bronze, light gauge"]


@pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bfloat16: MiniLM stays float32")
def test_where_the_cpu_has_bf16_torch_runs_minilm_in_it_with_float32s_vectors() -> None:
    """1.7x the float32 rate on two cores (benchmarks/speed.py); the vectors keep the float32 key
    and cache, so they must stand in for float32's."""
    embedder = Embedder(backend="torch")
    model = embedder._load()
    seen = []
    hook = model[0].auto_model.encoder.layer[0].intermediate.dense.register_forward_hook(
        lambda module, inputs, output: seen.append(output.dtype))
    try:
        fast = embedder.embed(PRODUCTS)
    finally:
        hook.remove()
    assert embedder.bf16 and seen and set(seen) == {torch.bfloat16}
    exact = Embedder(backend="torch", bf16=False)
    exact._model = model
    assert exact.key == embedder.key
    assert (exact.embed(PRODUCTS) * fast).sum(axis=1).min() >= 0.9999


def test_the_tokens_read_are_part_of_the_key_and_128_is_the_default(embedder: Embedder) -> None:
    from agents.pricing import make_embedder

    default = make_embedder(Settings(_env_file=None))
    assert default.key == make_embedder(Settings(_env_file=None, embedding_tokens=128)).key == embedder.key
    assert default.key == "all-MiniLM-L6-v2/onnx-int8-fused/128"
    full = make_embedder(Settings(_env_file=None, embedding_tokens=256))
    assert full.key == "all-MiniLM-L6-v2/onnx-int8-fused/default" != default.key  # what the model was trained on
    long_text = [PRODUCTS[1] * 4]  # ~300 tokens: the default reads the first 128
    assert default._load().max_seq_length == 128 and full._load().max_seq_length == 256
    assert float(full.embed(long_text)[0] @ embedder.embed(long_text)[0]) < 0.99
    short_text = [PRODUCTS[0]]  # under 128 tokens: read whole either way
    assert float(full.embed(short_text)[0] @ embedder.embed(short_text)[0]) > 0.9999
