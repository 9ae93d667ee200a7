"""The reference protocol and the judgement built on it: the held-out split, the price prior,
hybrid retrieval, thin evidence and the deal-detection figures."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from agents.pricing.ensemble import Blend, EnsembleAgent, EnsembleModel
from agents.pricing.frontier import FrontierAgent, hybrid_estimate, merge_evidence, neighbour_estimate
from agents.pricing.lexical import LexicalIndex, TfidfAgent
from agents.workflow import appraise, qualify, why_not
from models.config import Settings
from models.types import Deal, Estimate, Item, Neighbour
from training import data
from training.ensemble import LEVELS, fit_ensemble
from training.evaluate import deal_detection
from training.lexical import fit_lexical
from training.pipeline import ensure_split
from training.weights import price_prior_weights

CATEGORIES = ("Automotive", "Electronics", "Software", "Toys_and_Games")


def item(i: int, category: str, price: float, words: str = "") -> Item:
    text = f"{words} product number {i} of {category} " + "with a long enough description " * 5
    return Item(title=f"{category} thing {i}", category=category, price=price, text=text.strip())


def write(path: Path, items: list[Item]) -> Path:
    path.write_text("".join(json.dumps({**i.model_dump(exclude={"source"}), "details": "{}"}) + "\n"
                            for i in items), encoding="utf-8")
    return path


def test_reference_items_are_held_out_of_every_model_and_choice(tmp_path: Path) -> None:
    """Would fail if a held-out reference item reached training or validation (the leak it guards)."""
    rng = np.random.default_rng(0)
    catalogue = [item(i, CATEGORIES[i % 4], float(rng.uniform(1, 900))) for i in range(400)]
    reference = [i for i in catalogue if i.category in ("Automotive", "Electronics")][:150]
    extra = [item(1000 + i, "Electronics", 1500.0 + i) for i in range(30)]
    settings = Settings(data_dir=tmp_path / "var", catalogue=write(tmp_path / "cat.jsonl", catalogue),
                        reference=write(tmp_path / "ref.jsonl", reference),
                        extra_catalogue=write(tmp_path / "more.jsonl", extra))
    assert ensure_split(settings, log=lambda _: None)
    split = {name: data.load_split(settings.split_dir, name)
             for name in (*data.SPLITS, data.REFERENCE_TEST, data.EXPENSIVE_TEST)}
    held_out = {i.title for i in split[data.REFERENCE_TEST]}
    assert len(held_out) == 60  # 40% of the reference items, seeded
    assert not held_out & {i.title for i in split["train"]}
    assert not held_out & {i.title for i in split["val"]}
    assert not held_out & {i.title for i in split["test"]}
    assert {i.title for i in split["val"]} <= {i.title for i in reference}  # validation is where deals are
    expensive = {i.title for i in split[data.EXPENSIVE_TEST]}
    assert len(expensive) == 9 and not expensive & {i.title for i in split["train"]}  # 30% held out
    assert {i.title for i in extra} - expensive <= {i.title for i in split["train"] if i.source == "extra"}
    assert max(i.price for i in split["train"]) > 999.49  # the old ceiling is gone
    assert data.test_items(settings.split_dir) == split[data.REFERENCE_TEST]
    again = data.split_items(data.load_catalogue(settings.catalogue).items,
                             reference={i.title for i in reference})
    assert [i.title for i in again.reference_test] == [i.title for i in split[data.REFERENCE_TEST]]


def test_a_forced_rebuild_without_a_catalogue_says_it_keeps_the_split(tmp_path: Path) -> None:
    catalogue = [item(i, CATEGORIES[i % 4], 10.0 + i) for i in range(200)]
    made = Settings(_env_file=None, data_dir=tmp_path / "var", catalogue=write(tmp_path / "cat.jsonl", catalogue))
    assert ensure_split(made, log=lambda _: None)
    said: list[str] = []
    outside_make = Settings(_env_file=None, data_dir=tmp_path / "var", catalogue=None)
    assert not ensure_split(outside_make, log=said.append, force=True)
    assert said == ["split kept: set DEALSCOUT_CATALOGUE to remake it"]
    assert data.load_split(outside_make.split_dir, "train")  # kept, not removed


def test_an_empty_path_from_make_means_no_file() -> None:
    assert Settings(reference="", extra_catalogue=" ").reference is None


def test_price_prior_weights_favour_the_target_prices() -> None:
    train = [5.0] * 90 + [500.0] * 10
    weights = price_prior_weights(train, [500.0] * 50 + [5.0] * 50)
    assert weights.mean() == pytest.approx(1.0)
    assert weights[-1] > 5 * weights[0]  # rare-in-training but common-where-deals-are counts more
    assert np.all(price_prior_weights(train, []) == 1.0)


def near(price: float, similarity: float, title: str, source: str = "meaning") -> Neighbour:
    return Neighbour(title=title, category="Electronics", price=price, similarity=similarity, source=source)


class FakeStore:
    def __init__(self, neighbours: list[Neighbour]):
        self.neighbours = neighbours

    def query_batch(self, texts: list[str], k: int = 5) -> list[list[Neighbour]]:
        return [self.neighbours[:k] for _ in texts]


@pytest.fixture(scope="module")
def lexical(tmp_path_factory) -> LexicalIndex:
    train = [Item(title=t, category="Electronics", price=p, text=f"{t}. " + d) for t, p, d in [
        ("Garmin Forerunner 255 GPS running smartwatch", 349.0, "Garmin GPS watch for runners, heart rate"),
        ("Garmin Forerunner 55 GPS running watch", 199.0, "Garmin entry GPS watch, running dynamics"),
        ("Silicone replacement watch band 22mm", 9.0, "Soft silicone strap for smart watches"),
        ("Nylon sport loop watch strap", 12.0, "Breathable nylon band, hook and loop"),
        ("USB-C charging cable 2 m", 8.0, "Braided cable, fast charging"),
        ("Bluetooth speaker waterproof", 45.0, "Portable speaker, 12 hours of music"),
    ] * 4]
    val = train[:6]
    return fit_lexical(train, val, tmp_path_factory.mktemp("lexical"), log=lambda _: None)


def test_hybrid_retrieval_finds_by_words_what_meaning_misses(lexical: LexicalIndex, tmp_path: Path) -> None:
    bands = [near(9.0, 0.71, "Silicone replacement watch band 22mm"), near(12.0, 0.69, "Nylon sport loop")]
    agent = FrontierAgent(FakeStore(bands), lexical=lexical, k=2)
    estimate = agent.estimate("Garmin Forerunner 255 GPS running watch")
    by_words = [n for n in estimate.evidence if n.source == "words"]
    assert by_words[0].title.startswith("Garmin Forerunner 255")  # the model number matched
    assert {n.source for n in estimate.evidence} == {"meaning", "words"}  # evidence: the real neighbours
    assert estimate.value == pytest.approx(
        hybrid_estimate(bands, [n for n in lexical.neighbours(
            ["Garmin Forerunner 255 GPS running watch"], 2)[0]]), rel=1e-3)
    assert estimate.value > 3 * neighbour_estimate(bands)  # words lifted it well above the bands
    meaning_only = FrontierAgent(FakeStore(bands), k=2).estimate("Garmin Forerunner 255 GPS running watch")
    assert meaning_only.value == pytest.approx(neighbour_estimate(bands), rel=1e-3)
    lexical.save(tmp_path / "lexical.joblib")
    again = LexicalIndex.load(tmp_path / "lexical.joblib")
    assert TfidfAgent(again).estimate("Garmin GPS running watch").value > TfidfAgent(again).estimate(
        "silicone watch band strap").value
    (tmp_path / "broken.joblib").write_bytes(b"junk")
    with pytest.raises(ValueError, match="train lexical"):
        LexicalIndex.load(tmp_path / "broken.joblib")


class Untouchable:
    """A matrix that fails when read: a search after the first must not go through it."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the whole matrix was read again (.{name}) for one query")


def test_a_word_search_reads_only_its_terms_after_the_first(lexical: LexicalIndex, tmp_path: Path) -> None:
    """Each price question searched the words by transposing the whole TF-IDF matrix (~20 ms for
    the default 38k items, the largest part of a price turn under load); the transposed layout is
    made once, and saving the index does not store it."""
    index = dataclasses.replace(lexical)  # its own copy: the test replaces its matrix
    texts = ["Garmin Forerunner 255 GPS running watch", "silicone watch band"]
    first = index.neighbours(texts, 3)
    index.save(tmp_path / "lexical.joblib")
    saved = LexicalIndex.load(tmp_path / "lexical.joblib")
    index.matrix = Untouchable()
    assert index.neighbours(texts, 3) == first == saved.neighbours(texts, 3)
    assert first[0][0].title.startswith("Garmin Forerunner 255")


def test_merge_evidence_alternates_sides_and_keeps_each_product_once() -> None:
    a = [near(1, 0.9, "x"), near(2, 0.8, "y"), near(3, 0.7, "z")]
    b = [near(2, 0.5, "y", "words"), near(5, 0.4, "w", "words")]
    assert [n.title for n in merge_evidence(a, b)] == ["x", "y", "w", "z"]


def model_with_cuts() -> EnsembleModel:
    blend = Blend(members=("frontier", "forest"), coef=[0.5, 0.5, 0.0, 0.0], intercept=0.0,
                  halfwidth=0.3, max_spread=1.0)
    return EnsembleModel(level=0.8, blends=[blend], min_similarity={"meaning": 0.5, "words": 0.2})


class Fixed:
    def __init__(self, name: str, value: float, evidence: list[Neighbour] | None = None):
        self.name, self.value, self.evidence = name, value, evidence or []

    def estimate(self, description: str) -> Estimate:
        return Estimate(agent=self.name, value=self.value, evidence=self.evidence)

    def estimate_batch(self, descriptions: list[str]) -> list[Estimate]:
        return [self.estimate(d) for d in descriptions]


def test_far_neighbours_make_a_thin_estimate_that_never_alerts() -> None:
    close = [near(200, 0.8, "a"), near(210, 0.4, "b", "words")]
    far = [near(200, 0.3, "a"), near(210, 0.1, "b", "words")]
    sure = EnsembleAgent([Fixed("frontier", 200, close), Fixed("forest", 220)], model_with_cuts())
    unsure = EnsembleAgent([Fixed("frontier", 200, far), Fixed("forest", 220)], model_with_cuts())
    good, thin = sure.estimate("a vest"), unsure.estimate("a vest")
    assert good.thin == "" and "few similar products known" in thin.thin and "meaning 0.30" in thin.thin
    assert (thin.high - thin.low) > 1.9 * (good.high - good.low)  # the interval says so too
    deal = Deal(title="vest", description="a vest", price=19.0, url="https://x.test/v", guid="v")
    assert qualify(deal, good, 50) is not None
    assert qualify(deal, thin, 50) is None and "thin evidence" in why_not(deal, thin, 50)
    disagree = EnsembleAgent([Fixed("frontier", 20, close), Fixed("forest", 900)], model_with_cuts())
    assert "disagree" in disagree.estimate("a vest").thin
    lone = EnsembleAgent([Fixed("frontier", 200), Fixed("forest", 220)], model_with_cuts())
    assert "no similar products" in lone.estimate("a vest").thin


def test_appraise_says_for_each_deal_whether_it_alerts_and_why() -> None:
    pricer = EnsembleAgent([Fixed("frontier", 200, [near(200, 0.8, "a"), near(190, 0.5, "b", "words")]),
                            Fixed("forest", 205)], model_with_cuts())
    deals = [Deal(title=t, description=t, price=p, url=f"https://x.test/{p}", guid=str(p))
             for t, p in (("drill", 60.0), ("drill kit", 185.0))]
    cheap, dear = appraise(deals, pricer, threshold=50)
    assert cheap.qualifies and "below worth" in cheap.why
    assert not dear.qualifies and "not $50.00 above" in dear.why
    line = json.loads(dear.json_line())
    assert {"url", "price", "estimate", "low", "high", "evidence", "qualifies", "why"} <= set(line)
    assert line["evidence"] == "enough" and line["qualifies"] is False


def test_deal_detection_counts_offers_through_the_real_rule() -> None:
    truths = [400.0, 300.0, 80.0, 1000.0]
    exact = [Estimate(agent="e", value=t, low=t * 0.75, high=t * 1.3) for t in truths]
    exact[3].thin = "few similar products known"
    found = deal_detection(exact, truths, threshold=50)
    # at half price: the $400 and $300 items beat the threshold and the low end; $80 is $40 off (no);
    # the thin $1000 never alerts
    assert found.flagged_50 == 0.5 and found.flagged_100 == 0.0 and found.flagged_90 == 0.0
    assert found.flagged_70 == 0.5 and found.precision_1in10 == 1.0 and found.thin == 0.25
    generous = [Estimate(agent="e", value=t * 2) for t in truths]
    assert deal_detection(generous, truths, 50).flagged_100 == 1.0  # twice the worth: every offer beats $50


def test_the_alert_level_is_chosen_on_validation() -> None:
    rng = np.random.default_rng(1)
    prices = np.exp(rng.uniform(3, 6.5, 300))
    values = {"a": prices * np.exp(rng.normal(0, 0.3, 300)), "b": prices * np.exp(rng.normal(0, 0.5, 300))}
    model = fit_ensemble(values, prices, level=None)
    assert model.level in LEVELS
    assert all(b.halfwidth > 0 for b in model.blends)
    both = next(b for b in model.blends if len(b.members) == 2)
    assert both.max_spread is not None and next(b for b in model.blends if len(b.members) == 1).max_spread is None


def test_a_thin_estimate_reads_as_unsure_in_chat_and_the_price_tab() -> None:
    from agents.chat.tools import describe_estimate

    thin = Estimate(agent="ensemble", value=450.0, low=120.0, high=1700.0,
                    thin="few similar products known (closest by meaning 0.30)")
    text = describe_estimate(thin)
    assert text.startswith("**Unsure: a rough guess of $450.00**")
    assert "few similar products known" in text and "never triggers an alert" in text
    assert describe_estimate(Estimate(agent="ensemble", value=450.0)).startswith("**Worth about $450.00**")


def test_an_alert_needs_similar_products_that_cost_more_than_the_price() -> None:
    """The AC-cover case: a prior-weighted estimate far above what the closest products cost."""
    covers = [near(24.79, 0.49, "washing machine cover"), near(23.69, 0.46, "dryer top cover"),
              near(699.0, 0.16, "evaporative cooler", "words")]
    estimate = Estimate(agent="ensemble", value=132.0, low=65.0, high=268.0, evidence=covers)
    deal = Deal(title="AC cover", description="AC cover", price=8.49, url="https://x.test/c", guid="c")
    assert qualify(deal, estimate, 50) is None
    assert "most similar known products cost about $2" in why_not(deal, estimate, 50)
    backed = estimate.model_copy(update={"evidence": [near(150.0, 0.6, "air conditioner")] + covers})
    assert qualify(deal, backed, 50) is not None
