"""The ONNX backend of the embeddings: exported from the shipped model once, offline; its int8
vectors agree with torch's, do not depend on what else is embedded with them, and are cached apart."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from models.embeddings import DIM, Embedder
from models.onnx_embeddings import ONNX_FILE

TEXTS = [
    "Cordless drill driver 20V with two lithium batteries and charger",
    "20-volt cordless power drill kit, battery included",
    "Acoustic guitar strings, phosphor bronze, light gauge",
    "Sony WH-1000XM5 wireless noise cancelling headphones, 30 hour battery, black",
    "Front brake pads set for Honda Civic 2016-2021, ceramic, low dust",
    "hello",
    "",
    "Samsung 65 inch QLED 4K smart TV with HDR10+, Alexa built in, 120 Hz " * 12,
    "<b>日本語の説明</b> stainless steel kettle 1.7 l",
    "Whirlpool refrigerator water filter replacement, 2 pack, NSF certified",
]


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def onnx(onnx_dir) -> Embedder:
    return Embedder(backend="onnx", onnx_dir=onnx_dir)


def test_onnx_vectors_agree_with_torch(onnx: Embedder) -> None:
    fast, exact = onnx.embed(TEXTS), Embedder(backend="torch").embed(TEXTS)
    assert fast.shape == (len(TEXTS), DIM) and fast.dtype == np.float32
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    cosines = (fast * exact).sum(axis=1)
    assert cosines.min() > 0.97 and cosines.mean() > 0.985, cosines
    # What retrieval reads: the two drills are each other's nearest under both. The other texts are
    # unrelated to each other, so their nearest is a near-tie int8 may flip (headphones: a drill or
    # guitar strings); benchmarks/speed.py measures top-10 agreement on catalogue items instead.
    for vectors in (fast, exact):
        nearest = np.argsort(-(vectors @ vectors.T), axis=1)[:, 1]
        assert nearest[0] == 1 and nearest[1] == 0


def test_a_text_gets_the_same_vector_whatever_is_embedded_beside_it(onnx: Embedder) -> None:
    together = onnx._encode(TEXTS)
    alone = np.vstack([onnx._encode([t]) for t in TEXTS])
    assert np.allclose(together, alone, atol=1e-6)  # int8 scales per run: batched, they differed


def test_texts_run_two_at_a_time_one_thread_each(onnx: Embedder) -> None:
    """One text's run kept two threads half idle: runs go two at a time now (1.6x the rate). The
    runs meet at a barrier, which only runs at once pass; a vector is still its text's alone."""
    encoder = onnx._load()
    session, meet = encoder.session, threading.Barrier(2, timeout=120)

    class Meeting:
        def run(self, outputs, feed):
            meet.wait()  # two runs must be in flight together, else this breaks
            return session.run(outputs, feed)

    encoder.session = Meeting()
    try:
        together = encoder.encode(TEXTS[:4])
    finally:
        encoder.session = session
    assert np.allclose(together, np.vstack([encoder.encode([t]) for t in TEXTS[:4]]), atol=1e-6)


def test_the_export_is_made_once_and_reused(onnx: Embedder, onnx_dir) -> None:
    onnx.embed(["warm"])
    exported = onnx_dir / ONNX_FILE
    made = exported.stat().st_mtime_ns
    again = Embedder(backend="onnx", onnx_dir=onnx_dir)
    again.embed(["a second process would load it the same way"])
    assert exported.stat().st_mtime_ns == made
    assert [p.name for p in onnx_dir.iterdir()] == [ONNX_FILE]  # no half-made leftovers


def test_the_export_is_fused_one_int8_attention_a_layer(onnx: Embedder, onnx_dir) -> None:
    """Traced with sdpa attention, 60 loose nodes a model (Softmax, MatMul, Where, IsNaN) that the
    optimizer could not fuse; traced eager, each layer is one QAttention: 7% more texts a second."""
    import collections

    import onnx as onnx_format

    onnx.embed(["warm"])
    ops = collections.Counter(n.op_type for n in onnx_format.load(str(onnx_dir / ONNX_FILE)).graph.node)
    assert ops["QAttention"] == 6 and ops["EmbedLayerNormalization"] == 1
    assert not {"Softmax", "MatMul", "IsNaN", "Where"} & set(ops)


def test_backends_do_not_share_cached_vectors(onnx_dir) -> None:
    assert Embedder(onnx_dir=onnx_dir).key == Embedder().key == "all-MiniLM-L6-v2/onnx-int8-fused/128"
    # torch vectors of 256 tokens, cached and stored before onnx was the default, keep their key
    assert Embedder(backend="torch", max_seq_length=256).key == "all-MiniLM-L6-v2/default"


def test_the_default_export_is_kept_in_the_user_cache_per_model(monkeypatch, tmp_path) -> None:
    """Derived from the installed model alone, so one export serves every checkout and data folder;
    scripts/setup.sh makes it, and another model (or package version) gets a folder of its own."""
    from models.embeddings import default_model_path
    from models.onnx_embeddings import default_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    shipped = default_dir(default_model_path())
    assert shipped.parent == tmp_path / "dealscout" and shipped.name.startswith("minilm-onnx-")
    assert default_dir(str(tmp_path / "another-model")) != shipped


def test_a_wrong_backend_is_one_clear_sentence(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown embedding backend 'gpu'"):
        Embedder(backend="gpu")
