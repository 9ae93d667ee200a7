import math

import pytest

from models.types import Estimate, Item
from training.baselines import ConstantPricer, FeaturesPricer, TfidfRidgePricer, weight_pounds
from training.evaluate import error_band, evaluate, is_hit, score


def item(title: str, price: float, category: str = "Electronics") -> Item:
    return Item(title=title, category=category, price=price, text=f"{title} " * 20)


def test_hits_and_bands_follow_the_dollar_and_percent_rules():
    assert is_hit(100, 139) and not is_hit(100, 141)
    assert is_hit(500, 590) and not is_hit(500, 610)  # 20% of 500 is 100
    assert error_band(100, 130) == "green"
    assert error_band(100, 170) == "orange"
    assert error_band(100, 300) == "red"


def test_score_figures():
    s = score([100, 200], [110, 100], intervals=[(90, 120), (150, 190)])
    assert s.mae == 55
    assert s.rmsle == pytest.approx(math.sqrt(((math.log(111 / 101)) ** 2 + (math.log(101 / 201)) ** 2) / 2))
    assert s.hits == 0.5 and s.coverage == 0.5 and s.mean_width == 35
    with pytest.raises(ValueError, match="no items"):
        score([], [])


def test_evaluate_a_callable_per_category_with_chart(tmp_path):
    items = [item("tv", 300), item("cable", 10), item("drill", 80, "Tools_and_Home_Improvement")]
    report = evaluate(lambda text: 100.0, items, name="hundred", chart=tmp_path / "c.png", progress=False)
    assert report.model == "hundred" and report.n == 3
    assert report.mae == pytest.approx((200 + 90 + 20) / 3)
    assert report.per_category["Tools_and_Home_Improvement"].hits == 1.0
    assert report.per_category["Electronics"].n == 2
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_a_pricer_reports_interval_coverage():
    class Interval:
        name = "interval"

        def estimate(self, description):
            return self.estimate_batch([description])[0]

        def estimate_batch(self, descriptions):
            return [Estimate(agent=self.name, value=50, low=20, high=100) for _ in descriptions]

    report = evaluate(Interval(), [item("a", 30), item("b", 150)], progress=False)
    assert report.coverage == 0.5 and report.mean_width == 80


def test_baselines_learn_something():
    cheap = [item(f"usb cable pack of {i} 3 ounces", 8 + i % 5) for i in range(40)]
    dear = [item(f"professional stainless heavy-duty table saw {i} 60 pounds", 400 + i) for i in range(40)]
    train = cheap + dear
    constant = ConstantPricer().fit(train)
    assert constant.estimate("anything").value == pytest.approx(sum(i.price for i in train) / 80)
    for model in (FeaturesPricer().fit(train), TfidfRidgePricer().fit(train)):
        low, high = model.predict([cheap[2].text, "professional stainless table saw 60 pounds " * 20])
        assert low < 60 < 250 < high, model.name
        assert model.estimate("usb cable").agent == model.name


def test_weight_parsing():
    assert weight_pounds("Item Weight: 8 ounces") == 0.5
    assert weight_pounds("weighs 2 kg") == pytest.approx(4.409, abs=0.01)
    assert weight_pounds("no weight here") is None
