"""Embeddings: the real offline MiniLM model, normalised vectors, and the per-text cache."""

from __future__ import annotations

import numpy as np
import pytest

from models.embeddings import DIM, Embedder


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
