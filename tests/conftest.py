"""Hermetic settings: `make test` exports the data files `make run` uses (DEALSCOUT_REFERENCE,
DEALSCOUT_EXTRA_CATALOGUE); a test that wants them says so itself."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_shared_data_from_make(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DEALSCOUT_REFERENCE", "DEALSCOUT_EXTRA_CATALOGUE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def router():
    """The chat's router with the real MiniLM classifier, built once per test module."""
    from agents.chat.router import Router
    from models.embeddings import Embedder

    return Router(Embedder())
