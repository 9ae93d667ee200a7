"""Forest agent: regressor comparison, saving, loading, and what it does with odd input."""

from __future__ import annotations

import hashlib

import joblib
import numpy as np
import pytest

from agents.pricing.forest import ForestAgent
from agents.pricing.text import DescriptionError
from models.config import FOREST_FILE
from models.embeddings import Embedder
from models.types import Item
from training.forest import fit_forest

WORDS = ["drill", "guitar", "headphones", "mats", "antivirus", "dishwasher", "cable", "case"]
PRICES = {"drill": 90, "guitar": 300, "headphones": 150, "mats": 40, "antivirus": 30,
          "dishwasher": 650, "cable": 8, "case": 15}


class BagEmbedder:
    """A cheap stand-in for MiniLM: hashed bag of words, normalised."""

    key = "bag-of-words"
    dim = 64

    def embed(self, texts, *, progress=False):
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def items(n: int, seed: int = 0) -> list[Item]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        word = WORDS[i % len(WORDS)]
        price = PRICES[word] * float(np.exp(rng.normal(0, 0.1)))
        out.append(Item(title=f"{word} {i}", category="Electronics", price=round(price, 2),
                        text=f"{word} {word} {rng.choice(WORDS)} item"))
    return out


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    models_dir = tmp_path_factory.mktemp("models")
    report = fit_forest(items(160), BagEmbedder(), models_dir, candidates=["ridge", "random_forest"],
                        progress=False, log=lambda _: None)
    return models_dir, report


def test_compares_candidates_and_keeps_the_best(fitted) -> None:
    models_dir, report = fitted
    assert {s.name for s in report.scores} == {"ridge", "random_forest"}
    assert report.chosen == min(report.scores, key=lambda s: s.balanced_mae).name
    saved = joblib.load(models_dir / FOREST_FILE)
    assert saved["kind"] == report.chosen and saved["embedder"] == "bag-of-words"


def test_agent_prices_what_it_learned(fitted) -> None:
    models_dir, _ = fitted
    agent = ForestAgent.load(models_dir / FOREST_FILE, BagEmbedder())
    dishwasher = agent.estimate("dishwasher dishwasher item")
    cable = agent.estimate("cable cable item")
    assert dishwasher.value > 5 * cable.value
    assert dishwasher.agent == "forest" and agent.kind in dishwasher.note
    batch = agent.estimate_batch(["dishwasher dishwasher item", "cable cable item"])
    assert [e.value for e in batch] == [dishwasher.value, cable.value]


def test_odd_input(fitted) -> None:
    models_dir, _ = fitted
    agent = ForestAgent.load(models_dir / FOREST_FILE, BagEmbedder())
    with pytest.raises(DescriptionError):
        agent.estimate("   ")
    assert agent.estimate("<b>guitar</b> " * 800_000).value > 0  # ~10 MB of HTML
    assert agent.estimate("Gitarre für Anfänger").value > 0


def test_refuses_other_embeddings_and_broken_files(fitted, tmp_path) -> None:
    models_dir, _ = fitted
    with pytest.raises(ValueError, match="forest .* was built with the embedding bag-of-words .* `launch.py train all`"):
        ForestAgent.load(models_dir / FOREST_FILE, Embedder())
    broken = tmp_path / FOREST_FILE
    broken.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot load"):
        ForestAgent.load(broken, BagEmbedder())


def test_bad_fit_requests(tmp_path) -> None:
    with pytest.raises(ValueError, match="too few"):
        fit_forest(items(5), BagEmbedder(), tmp_path, progress=False, log=lambda _: None)
    with pytest.raises(ValueError, match="unknown regressor"):
        fit_forest(items(50), BagEmbedder(), tmp_path, candidates=["magic"], progress=False)


def test_every_candidate_fits_on_real_embeddings(tmp_path) -> None:
    from tests.test_vectorstore import make_items

    report = fit_forest(make_items(60), Embedder(), tmp_path, progress=False, log=lambda _: None)
    assert {s.name for s in report.scores} == {"random_forest", "hist_gradient_boosting", "ridge", "svr"}
    agent = ForestAgent.load(tmp_path / FOREST_FILE, Embedder())
    assert 5 < agent.estimate("stainless steel dishwasher").value < 1000


def test_category_weights_make_categories_count_the_same() -> None:
    from training.forest import category_weights

    weights = category_weights(["Software"] * 9 + ["Automotive"])
    assert weights[:9].sum() == pytest.approx(weights[9]) and weights.mean() == pytest.approx(1)
