"""The catalogue in Chroma: build it from a split (idempotent, resumable) and find similar products.

Embedded (`PersistentClient` under a folder) by default, or a `chroma run` server over HTTP.
We always pass our own vectors: Chroma's default embedding function would download a model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from models.config import Settings
from models.embeddings import LEGACY_EMBEDDER, Embedder, embedding_mismatch
from models.types import Item, Neighbour

COLLECTION = "catalogue"
BUILD_BATCH = 256
QUERY_BATCH = 256


class StoreError(RuntimeError):
    """The vector store cannot be reached or used; the text says what to do."""


def item_id(item: Item) -> str:
    """Stable across runs and machines, so a rebuild skips what is already there."""
    return hashlib.sha1(f"{item.title}\0{item.text}".encode()).hexdigest()


def _client(chroma_dir: Path, chroma_url: str | None) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    quiet = ChromaSettings(anonymized_telemetry=False)
    if not chroma_url:
        chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(chroma_dir), settings=quiet)
    url = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
    if not url.hostname:
        raise StoreError(f"chroma_url {chroma_url!r} has no host; use e.g. http://127.0.0.1:8000")
    try:
        return chromadb.HttpClient(host=url.hostname, port=url.port or 8000,
                                   ssl=url.scheme == "https", settings=quiet)
    except Exception as err:  # chromadb raises plain ValueError/ConnectError on a dead server
        raise StoreError(f"cannot reach the Chroma server at {chroma_url}: {err}") from err


def item_weights(items: Sequence[Item], weights: Sequence[float] | None) -> dict[str, float]:
    if weights is None:
        return {}
    return {item_id(item): float(w) for item, w in zip(items, weights, strict=True)}


class VectorStore:
    """One Chroma collection of catalogue items (metadata: price, category, title)."""

    def __init__(self, client: Any, embedder: Embedder, name: str = COLLECTION):
        self.client = client
        self.embedder = embedder
        self.name = name
        self.collection = self._collection()
        self._embedder_checked = False

    def _collection(self) -> Any:
        # The metadata is written when the collection is created, and ignored when it exists.
        return self.client.get_or_create_collection(
            self.name, embedding_function=None, metadata={"hnsw:space": "cosine", "embedder": self.embedder.key})

    @classmethod
    def open(cls, embedder: Embedder, *, chroma_dir: Path, chroma_url: str | None = None,
             name: str = COLLECTION) -> VectorStore:
        return cls(_client(chroma_dir, chroma_url), embedder, name)

    @classmethod
    def from_settings(cls, embedder: Embedder, settings: Settings) -> VectorStore:
        """The configured store: the Chroma server at settings.chroma_url, else settings.chroma_dir."""
        return cls.open(embedder, chroma_dir=settings.chroma_dir, chroma_url=settings.chroma_url)

    def reset(self) -> None:
        """Drop every stored item (for a rebuild from a changed split)."""
        self.client.delete_collection(self.name)
        self.collection = self._collection()

    @property
    def built_with(self) -> str:
        """The embedding the stored vectors were made with (an embedder's key)."""
        return str((self.collection.metadata or {}).get("embedder", LEGACY_EMBEDDER))

    def fits_embedder(self) -> bool:
        """Whether this store's vectors and its embedder's agree (an empty store fits any after a reset)."""
        return self.built_with == self.embedder.key

    def check_embedder(self) -> None:
        """Vectors of another embedding (backend, tokens read) would answer, wrongly: refuse."""
        if not self._embedder_checked and not self.fits_embedder():
            raise StoreError(embedding_mismatch("the vector store", self.built_with, self.embedder.key))
        self._embedder_checked = True

    def count(self) -> int:
        return self.collection.count()

    def present(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        step = self.client.get_max_batch_size()
        for start in range(0, len(ids), step):
            found.update(self.collection.get(ids=list(ids[start:start + step]), include=[])["ids"])
        return found

    def missing(self, items: Sequence[Item]) -> list[tuple[str, Item]]:
        """(id, item) for each distinct item not yet stored, in order."""
        unique = {item_id(item): item for item in items}
        have = self.present(list(unique))
        return [(i, item) for i, item in unique.items() if i not in have]

    def add(self, batch: Sequence[tuple[str, Item]], vectors: np.ndarray,
            weight_of: dict[str, float] | None = None) -> None:
        """Store one batch of (id, item) with its vectors; an id already there is overwritten. The
        texts are not stored: nothing reads them back, and Chroma's full-text index of them took
        two thirds of the store's write time."""
        self.collection.upsert(
            ids=[i for i, _ in batch],
            embeddings=np.asarray(vectors, dtype=np.float32),
            metadatas=[{"price": item.price, "category": item.category, "title": item.title,
                        "weight": (weight_of or {}).get(i, 1.0)} for i, item in batch],
        )

    def build(self, items: Sequence[Item], *, weights: Sequence[float] | None = None,
              batch_size: int = BUILD_BATCH, progress: bool = True,
              on_batch: Callable[[int], None] | None = None) -> int:
        """Add the items not yet in the store; returns how many were added.

        `weights`: each item's training weight (stored; a neighbour counts with it). Safe to rerun
        after a kill: ids are stable and present ones are skipped.
        """
        batch_size = max(1, min(batch_size, self.client.get_max_batch_size()))
        if not self.fits_embedder() and self.count() == 0:
            self.reset()  # an empty store made for another embedding: take this one's key
        self.check_embedder()
        todo = self.missing(items)
        weight_of = item_weights(items, weights)
        bar = None
        if progress and todo:
            from tqdm import tqdm

            done = len({item_id(item) for item in items}) - len(todo)
            bar = tqdm(total=done + len(todo), initial=done, desc="vector store", unit="item")
        added = 0
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            self.add(batch, self.embedder.embed([item.text for _, item in batch]), weight_of)
            added += len(batch)
            if bar:
                bar.update(len(batch))
            if on_batch:
                on_batch(added)
        if bar:
            bar.close()
        return added

    def query_vectors(self, vectors: np.ndarray, k: int = 5) -> list[list[Neighbour]]:
        """The k nearest items to each vector, most similar first (similarity = cosine)."""
        if len(vectors) == 0:
            return []
        n = self.count()
        if n == 0:
            raise StoreError("the vector store is empty: run `launch.py train store` first")
        self.check_embedder()
        vectors = np.asarray(vectors, dtype=np.float32)
        found: list[list[Neighbour]] = []
        for start in range(0, len(vectors), QUERY_BATCH):
            result = self.collection.query(query_embeddings=vectors[start:start + QUERY_BATCH],
                                           n_results=min(k, n), include=["metadatas", "distances"])
            found += [
                [Neighbour(title=str(meta["title"]), category=str(meta["category"]),
                           price=float(meta["price"]), similarity=round(1.0 - float(dist), 6),
                           weight=float(meta.get("weight", 1.0)), source="meaning")
                 for meta, dist in zip(metas, dists, strict=True)]
                for metas, dists in zip(result["metadatas"], result["distances"], strict=True)
            ]
        return found

    def query(self, text: str, k: int = 5) -> list[Neighbour]:
        return self.query_vectors(self.embedder.embed([text]), k)[0]

    def query_batch(self, texts: Sequence[str], k: int = 5) -> list[list[Neighbour]]:
        return self.query_vectors(self.embedder.embed(list(texts)), k)

    def sample(self, limit: int = 2000) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Up to `limit` stored vectors and their metadata (for the map)."""
        got = self.collection.get(limit=limit, include=["embeddings", "metadatas"])
        return np.asarray(got["embeddings"], dtype=np.float32), list(got["metadatas"])
