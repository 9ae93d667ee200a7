"""Ensemble: blends fitted per member subset, conformal intervals, and the end-to-end wiring."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import joblib
import numpy as np
import pytest
from typer.testing import CliRunner

from agents.pricing.ensemble import EnsembleAgent, EnsembleModel
from agents.pricing.text import DescriptionError
from models.config import ENSEMBLE_FILE
from models.types import Estimate, Item
from training.ensemble import conformal_halfwidth, fit_ensemble, train_ensemble


def synthetic(n: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """True prices and two noisy members, one biased high; blending should beat both."""
    rng = np.random.default_rng(seed)
    prices = np.exp(rng.uniform(1, 6.5, n))
    return prices, {"good": prices * np.exp(rng.normal(0, 0.3, n)),
                    "biased": 1.5 * prices * np.exp(rng.normal(0, 0.6, n))}


class TablePricer:
    """A member that answers from a lookup table of description -> value, or fails."""

    def __init__(self, name: str, table: dict[str, float] | None = None, error: str = ""):
        self.name, self.table, self.error = name, table or {}, error

    def estimate(self, description: str) -> Estimate:
        if self.error:
            raise RuntimeError(self.error)
        return Estimate(agent=self.name, value=self.table.get(description, 50.0))

    def estimate_batch(self, descriptions: list[str]) -> list[Estimate]:
        return [self.estimate(d) for d in descriptions]


def test_conformal_halfwidth() -> None:
    residuals = np.arange(1, 11, dtype=float)  # n=10: rank ceil(11*0.8)=9
    assert conformal_halfwidth(residuals, 0.8) == 9.0
    assert conformal_halfwidth(residuals, 0.99) == 10.0


def test_blend_beats_members_and_interval_covers() -> None:
    prices, values = synthetic(600, seed=1)
    model = fit_ensemble(values, prices, level=0.8)
    assert {b.members for b in model.blends} == {("biased",), ("good",), ("biased", "good")}
    both = model.blend_for({"good", "biased"})
    good_alone = model.blend_for({"good"})
    raw_good_mae = float(np.mean(np.abs(values["good"] - prices)))
    assert both.val_mae < raw_good_mae and both.val_mae <= good_alone.val_mae * 1.02
    # coverage on fresh data from the same process
    test_prices, test_values = synthetic(3000, seed=2)
    centre = np.array([both.predict_log({m: test_values[m][i] for m in both.members})
                       for i in range(3000)])
    covered = np.mean(np.abs(np.log(test_prices) - centre) <= both.halfwidth)
    assert 0.75 < covered < 0.86


def test_agent_uses_what_answers() -> None:
    prices, values = synthetic(200, seed=3)
    model = fit_ensemble(values, prices)
    good = TablePricer("good", {"tv": 400.0})
    biased = TablePricer("biased", {"tv": 650.0})
    agent = EnsembleAgent([good, biased], model)
    estimate = agent.estimate("tv")
    assert estimate.low < estimate.value < estimate.high
    assert estimate.members == {"good": 400.0, "biased": 650.0}
    assert 250 < estimate.value < 600

    down = EnsembleAgent([good, TablePricer("biased", error="server down")], model)
    alone = down.estimate("tv")
    assert set(alone.members) == {"good"} and "biased failed (server down)" in alone.note
    assert alone.value == pytest.approx(np.exp(model.blend_for({"good"}).predict_log({"good": 400})),
                                        rel=1e-3)

    dead = EnsembleAgent([TablePricer("good", error="x"), TablePricer("biased", error="y")], model)
    with pytest.raises(ValueError, match="no ensemble member"):
        dead.estimate("tv")
    with pytest.raises(DescriptionError):
        agent.estimate(" ")
    assert [e.value for e in agent.estimate_batch(["tv", "tv"])] == [estimate.value] * 2


def test_unknown_members_are_refused() -> None:
    prices, values = synthetic(100, seed=4)
    with pytest.raises(ValueError, match="none of the ensemble's members"):
        EnsembleAgent([TablePricer("other")], fit_ensemble(values, prices))


def test_train_saves_a_loadable_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    val = [Item(title=f"t{i}", category="Electronics", price=float(np.exp(rng.uniform(1, 6))),
                text=f"item {i}") for i in range(60)]
    good = TablePricer("good", {i.text: i.price * float(np.exp(rng.normal(0, 0.2))) for i in val})
    train_ensemble({"good": good}, val, tmp_path, log=lambda _: None)
    agent = EnsembleAgent.load(tmp_path / ENSEMBLE_FILE, [good])
    assert isinstance(agent.model, EnsembleModel) and agent.estimate("item 3").low is not None
    with pytest.raises(ValueError, match="too few"):
        fit_ensemble({"good": np.ones(5)}, [1.0] * 5)
    (tmp_path / "bad.joblib").write_bytes(b"junk")
    with pytest.raises(ValueError, match="train ensemble"):
        EnsembleAgent.load(tmp_path / "bad.joblib", [good])
    joblib.dump({"level": 0.8}, tmp_path / "partial.joblib")
    with pytest.raises(ValueError, match="cannot load"):
        EnsembleAgent.load(tmp_path / "partial.joblib", [good])


@pytest.mark.slow
def test_train_all_then_price_from_the_cli(tmp_path: Path, monkeypatch) -> None:
    """The whole wiring on a small real catalogue: split, store, forest, ensemble, `price`."""
    source = os.environ.get("DEALSCOUT_TEST_CATALOGUE")
    if not source:
        pytest.skip("DEALSCOUT_TEST_CATALOGUE is not set")
    per_category: dict[str, int] = {}
    rows = []
    with gzip.open(source, "rt", encoding="utf-8") as f:
        for line in f:
            category = json.loads(line)["category"]
            if per_category.get(category, 0) < 12:
                per_category[category] = per_category.get(category, 0) + 1
                rows.append(line)
    small = tmp_path / "catalogue.jsonl"
    small.write_text("".join(rows), encoding="utf-8")
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DEALSCOUT_CATALOGUE", str(small))
    monkeypatch.setenv("DEALSCOUT_LLM", "local")
    monkeypatch.delenv("DEALSCOUT_CHROMA_URL", raising=False)
    from launch import app

    runner = CliRunner()
    built = runner.invoke(app, ["train", "all"])
    assert built.exit_code == 0, built.output
    for name in ("forest.joblib", "ensemble.joblib", "embeddings.sqlite"):
        assert (tmp_path / "var" / "models" / name).is_file()
    again = runner.invoke(app, ["train", "all"])
    assert again.exit_code == 0 and "already built" in again.output
    forced = runner.invoke(app, ["train", "all", "--force"])  # issue 13: it kept the split and baselines
    assert forced.exit_code == 0 and "saved train" in forced.output and "baselines:" in forced.output

    priced = runner.invoke(app, ["price", "<p>Cordless drill, 20V, two batteries</p>", "--json"])
    assert priced.exit_code == 0, priced.output
    report = json.loads(priced.stdout)
    assert set(report) == {"tfidf", "frontier", "forest", "ensemble"}
    ensemble = report["ensemble"]
    assert ensemble["low"] < ensemble["value"] < ensemble["high"]
    assert set(ensemble["members"]) == {"tfidf", "frontier", "forest"} and ensemble["evidence"]
    assert {n["source"] for n in ensemble["evidence"]} == {"meaning", "words"}  # hybrid retrieval
    assert "thin" in ensemble

    human = runner.invoke(app, ["price", "Stainless steel 24 inch dishwasher"])
    assert human.exit_code == 0 and "ensemble" in human.stdout and "similar items" in human.stdout
    empty = runner.invoke(app, ["price", "   "])
    assert empty.exit_code == 1 and "empty" in empty.output

    scored = runner.invoke(app, ["evaluate", "--model", "ensemble", "--deals", "--json", "--limit", "20"])
    assert scored.exit_code == 0, scored.output
    found = json.loads(scored.stdout)
    assert {"flagged_50", "flagged_70", "flagged_90", "flagged_100", "precision_1in10"} <= set(found)
    assert found["accuracy"]["n"] == 20 and found["accuracy"]["mae_low"] <= found["accuracy"]["mae"]

    feeds = os.environ.get("DEALSCOUT_TEST_FEEDS_DIR")
    if feeds:  # the captured real feeds: every deal priced and judged, nothing recorded or sent
        labels = json.loads((Path(__file__).parent / "fixtures/feeds/regular_prices.json").read_text())
        args = ["scan", "--dry-run", "--price", "--json"]
        for name in ("dealnews_sample.xml", "dealnews_roundups.xml", "techbargains.xml"):
            args += ["--feed", str(Path(feeds) / name)]
        dry = runner.invoke(app, args)
        assert dry.exit_code == 0, dry.output
        lines = [json.loads(line) for line in dry.stdout.splitlines() if line.startswith("{")]
        judged = {d["title"]: d for d in lines if "qualifies" in d}
        assert judged and all({"url", "price", "estimate", "low", "high", "evidence", "why"} <= set(d)
                              for d in judged.values())
        for label in labels["deals"]:
            deal = judged[label["title"]]
            if label["regular"] - label["price"] <= 50:  # the stated regular price is within the threshold
                assert deal["qualifies"] is False, deal
        assert not (tmp_path / "var" / "dealscout.db").exists()  # a dry run records nothing

    # Another embedding (here: fewer tokens) makes the store's and the forest's vectors stale: the
    # next build redoes them, and the ensemble over them, instead of answering with mixed vectors.
    monkeypatch.setenv("DEALSCOUT_EMBEDDING_TOKENS", "64")
    stale = runner.invoke(app, ["price", "<p>Cordless drill, 20V, two batteries</p>", "--json"])
    assert stale.exit_code == 0, stale.output  # what did load answers, and says what did not
    assert {"frontier", "forest"}.isdisjoint(json.loads(stale.stdout))
    assert ("the frontier agent is not used: the vector store was built with MiniLM on ONNX Runtime int8 reading "
            "128 tokens but questions are now embedded with MiniLM on ONNX Runtime int8 reading 64 tokens: run "
            "`launch.py train all`") in stale.stderr, stale.stderr
    assert "the forest agent is not used: the forest" in stale.stderr and "TOKENS=128 to use it as built" in stale.stderr
    switched = runner.invoke(app, ["train", "all"])
    assert switched.exit_code == 0, switched.output
    assert "rebuilding" in switched.output and "forest: kept" in switched.output, switched.output
    assert "ensemble: fitting" in switched.output
    repriced = runner.invoke(app, ["price", "<p>Cordless drill, 20V, two batteries</p>", "--json"])
    assert repriced.exit_code == 0 and set(json.loads(repriced.stdout)) == set(report), repriced.output


def test_nothing_built_means_no_agents_and_a_clear_hint(tmp_path: Path) -> None:
    from agents.pricing import load_pricer, pricers
    from models.config import Settings

    settings = Settings(data_dir=tmp_path, llm="local")
    assert pricers(settings) == {}
    with pytest.raises(ValueError, match="train forest"):
        load_pricer("forest", settings)


def test_an_estimate_above_the_old_ceiling_can_qualify() -> None:
    """Nothing caps an answer at the catalogue's $999.49: members that price a laptop at ~$2,400
    make the ensemble say so, and the laptop offered at half that is an alert."""
    from agents.workflow import qualify
    from models.types import Deal

    prices, values = synthetic(400, seed=6)  # validation prices all below $700
    agent = EnsembleAgent([TablePricer("good", {"laptop": 2400.0}), TablePricer("biased", {"laptop": 2600.0})],
                          fit_ensemble(values, prices, level=0.8))
    estimate = agent.estimate("laptop")
    assert estimate.value > 1500 and not estimate.thin
    offer = Deal(title="laptop", description="laptop", price=round(estimate.low * 0.9, 2), url="u", guid="g")
    assert offer.price > 999.49 and qualify(offer, estimate, threshold=50.0) is not None
