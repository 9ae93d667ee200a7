"""Vector store: build (idempotent, resumable after a kill), query, map, and a real Chroma server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from models.embeddings import Embedder
from models.types import Item
from vectorstore.map import store_map
from vectorstore.store import StoreError, VectorStore, item_id

ROOT = Path(__file__).resolve().parents[1]
CHROMA = Path(sys.executable).parent / "chroma"

KINDS = [
    ("Tools_and_Home_Improvement", "cordless drill with battery and charger", 89.0),
    ("Musical_Instruments", "acoustic guitar strings, phosphor bronze", 9.5),
    ("Electronics", "wireless noise cancelling over-ear headphones", 199.0),
    ("Automotive", "car floor mats, all weather rubber, set of four", 45.0),
    ("Software", "antivirus security suite, one year licence for three PCs", 29.99),
    ("Appliances", "stainless steel dishwasher, built-in, 24 inch", 649.0),
]


def make_items(n: int) -> list[Item]:
    items = []
    for i in range(n):
        category, what, price = KINDS[i % len(KINDS)]
        items.append(Item(title=f"{what.split(',')[0].title()} model {i}", category=category,
                          price=price + i % 7, text=f"{what} model {i}. " + what * 3))
    return items


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def store(embedder: Embedder, tmp_path: Path) -> VectorStore:
    return VectorStore.open(embedder, chroma_dir=tmp_path / "chroma")


def test_build_is_idempotent_and_query_finds_similar(store: VectorStore) -> None:
    items = make_items(24)
    assert store.build(items, batch_size=10, progress=False) == 24
    assert store.build(items + items[:5], progress=False) == 0  # reruns and duplicates add nothing
    assert store.count() == 24
    found = store.query("a 20V power drill for the workshop", k=4)
    assert len(found) == 4
    assert found[0].category == "Tools_and_Home_Improvement"
    assert [n.similarity for n in found] == sorted((n.similarity for n in found), reverse=True)
    assert 0 < found[0].similarity <= 1
    batch = store.query_batch(["guitar strings", "dishwasher"], k=2)
    assert [b[0].category for b in batch] == ["Musical_Instruments", "Appliances"]


def test_the_store_keeps_vectors_and_what_pricing_reads_not_the_texts(store: VectorStore) -> None:
    """Chroma indexed every stored text for full-text search, which nothing here uses: two thirds
    of the store's write time (0.9 -> 0.3 ms an item)."""
    items = make_items(6)
    store.build(items, progress=False)
    got = store.collection.get(include=["documents", "metadatas"])
    assert got["documents"] == [None] * 6
    assert {m["title"] for m in got["metadatas"]} == {item.title for item in items}
    assert store.query("guitar strings", k=1)[0].title == items[1].title


def test_query_on_empty_store_says_what_to_do(store: VectorStore) -> None:
    with pytest.raises(StoreError, match="train store"):
        store.query("anything")


def test_reset_empties_the_store(store: VectorStore) -> None:
    store.build(make_items(6), progress=False)
    store.reset()
    assert store.count() == 0


def test_a_store_answers_only_the_embedding_that_built_it(store: VectorStore, tmp_path: Path) -> None:
    """Vectors of 32 tokens queried with 256-token vectors would answer, wrongly, without a word."""
    store.build(make_items(6), progress=False)
    assert store.built_with == store.embedder.key == "all-MiniLM-L6-v2/onnx-int8-fused/128"
    other = VectorStore.open(Embedder(max_seq_length=32), chroma_dir=tmp_path / "chroma")
    assert not other.fits_embedder()
    with pytest.raises(StoreError, match=r"built with MiniLM on ONNX Runtime int8 reading 128 tokens but questions are now "
                       r"embedded with MiniLM on ONNX Runtime int8 reading 32 tokens: run `launch.py train "
                       r"all` .*, or set DEALSCOUT_EMBEDDINGS=onnx DEALSCOUT_EMBEDDING_TOKENS=128 to use it as built"):
        other.query("guitar strings")
    with pytest.raises(StoreError, match="rebuild"):  # nor are other vectors added beside them
        other.build(make_items(8), progress=False)
    assert other.count() == 6
    other.reset()
    assert other.build(make_items(6), progress=False) == 6 and other.built_with == "all-MiniLM-L6-v2/onnx-int8-fused/32"
    assert other.query("guitar strings", k=1)[0].category == "Musical_Instruments"


def test_a_store_from_before_the_key_was_recorded_is_read_as_torch(embedder: Embedder, tmp_path: Path) -> None:
    """Stores built before onnx became the default hold torch vectors and no key: torch reads them,
    the default refuses (and `train all` rebuilds them: tests/test_ensemble.py)."""
    import chromadb

    torch = Embedder(backend="torch", max_seq_length=256)

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    old = client.get_or_create_collection("catalogue", embedding_function=None,
                                          metadata={"hnsw:space": "cosine"})
    items = make_items(3)
    old.add(ids=[item_id(i) for i in items], embeddings=torch.embed([i.text for i in items]),
            metadatas=[{"price": i.price, "category": i.category, "title": i.title} for i in items])
    assert VectorStore(client, torch).query(items[1].text, k=1)[0].title == items[1].title
    with pytest.raises(StoreError, match="built with MiniLM on torch reading 256 tokens .* "
                       "DEALSCOUT_EMBEDDINGS=torch DEALSCOUT_EMBEDDING_TOKENS=256"):
        VectorStore(client, embedder).query("strings")


def test_map_is_a_figure_coloured_by_category(store: VectorStore) -> None:
    store.build(make_items(30), progress=False)
    fig = store_map(store, method="pca")
    assert {t.name for t in fig.data} == {k[0].replace("_", " ") for k in KINDS}
    assert sum(len(t.x) for t in fig.data) == 30


def test_item_ids_are_stable() -> None:
    a, b = make_items(2)
    assert item_id(a) == item_id(a.model_copy()) != item_id(b)


def test_bad_server_url_is_a_clear_error(embedder: Embedder, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="Chroma server"):
        VectorStore.open(embedder, chroma_dir=tmp_path, chroma_url="http://127.0.0.1:9")


BUILD_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from models.embeddings import Embedder
    from tests.test_vectorstore import make_items
    from vectorstore.store import VectorStore

    store = VectorStore.open(Embedder(), chroma_dir=Path(sys.argv[1]))
    store.build(make_items(int(sys.argv[2])), batch_size=8, progress=False,
                on_batch=lambda added: print("added", added, flush=True))
    print("done", flush=True)
""")


def test_build_resumes_after_kill(embedder: Embedder, tmp_path: Path) -> None:
    total = 120
    proc = subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, str(tmp_path / "chroma"), str(total)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # blocks until the first batch is committed
        assert first.startswith("added"), first
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
    store = VectorStore.open(embedder, chroma_dir=tmp_path / "chroma")
    partial = store.count()
    assert 0 < partial < total, "the kill must land mid-build for this test to mean anything"
    assert store.build(make_items(total), progress=False) == total - partial
    ids = store.collection.get(include=[])["ids"]
    assert len(ids) == len(set(ids)) == total
    assert set(ids) == {item_id(i) for i in make_items(total)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path: Path):
    if not CHROMA.exists():
        pytest.skip("the chroma CLI is not installed in this environment")
    port = free_port()
    log = (tmp_path / "chroma.log").open("w")
    proc = subprocess.Popen([str(CHROMA), "run", "--path", str(tmp_path / "server"),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # starting, on a busy machine: a bound, not a timing
    while True:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"chroma server did not start: {(tmp_path / 'chroma.log').read_text()[-2000:]}")
        time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_http_server_store(embedder: Embedder, tmp_path: Path, chroma_server: str) -> None:
    store = VectorStore.open(embedder, chroma_dir=tmp_path / "unused", chroma_url=chroma_server)
    assert store.build(make_items(18), batch_size=5, progress=False) == 18
    again = VectorStore.open(embedder, chroma_dir=tmp_path / "unused", chroma_url=chroma_server)
    assert again.count() == 18 and again.build(make_items(18), progress=False) == 0
    assert again.query("headphones with noise cancelling", k=1)[0].category == "Electronics"
    assert not (tmp_path / "unused").exists()
