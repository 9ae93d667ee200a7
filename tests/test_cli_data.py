"""The data → train baseline → evaluate path through the real CLI, on a small catalogue."""

import json
import random

import pytest
from typer.testing import CliRunner

import launch

CATEGORIES = ["Electronics", "Automotive", "Software", "Appliances"]


@pytest.fixture
def small_catalogue(tmp_path, monkeypatch):
    rng = random.Random(0)
    rows = []
    for i in range(240):
        cat = CATEGORIES[i % 4]
        price = round(rng.uniform(5, 900), 2)
        kind = "premium pro" if price > 300 else "basic budget"
        rows.append({"title": f"{cat} gadget number {i}", "category": cat, "price": price,
                     "text": f"{cat} gadget {i}, a {kind} model. " * 8, "details": "{}"})
    rows.append({"title": "broken", "category": "Electronics", "price": "n/a", "text": "x" * 200})
    path = tmp_path / "catalogue.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path / "var"))
    return path


def run(*args: str):
    return CliRunner().invoke(launch.app, list(args))


def test_data_train_evaluate(small_catalogue, tmp_path):
    result = run("data", "--catalogue", str(small_catalogue), "--test-per-category", "10",
                 "--val-per-category", "10")
    assert result.exit_code == 0, result.output
    assert "240 items kept, 2 skipped" in result.output
    assert "saved train 160, val 40, test 40" in result.output
    assert "already" in run("data", "--catalogue", str(small_catalogue)).output

    assert run("train", "baseline").exit_code == 0
    result = run("evaluate", "--model", "tfidf_ridge", "--json", "--chart", str(tmp_path / "c.png"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["n"] == 40 and set(report["per_category"]) == set(CATEGORIES)
    constant = json.loads(run("evaluate", "--model", "constant", "--json").stdout.strip().splitlines()[-1])
    assert report["mae"] < constant["mae"]  # words like "premium" carry the price
    assert (tmp_path / "c.png").exists()

    limited = run("evaluate", "--model", "features", "--data", str(small_catalogue), "--limit", "7", "--json")
    assert json.loads(limited.stdout.strip().splitlines()[-1])["n"] == 7


def test_clear_one_line_errors(small_catalogue, tmp_path):
    result = run("data", "--catalogue", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 1 and "no such file" in result.output and "Traceback" not in result.output
    result = run("evaluate", "--model", "constant")
    assert result.exit_code == 1 and "launch.py data" in result.output
    result = run("evaluate", "--model", "nonsense", "--data", str(small_catalogue))
    assert result.exit_code == 1 and "unknown model" in result.output
