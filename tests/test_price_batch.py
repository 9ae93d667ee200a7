"""`launch.py price --batch FILE`: one JSON line per description, an unpriceable line says why,
and every misuse is one clear line (the Ray path itself: tests/test_ray_build.py)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import launch
from tests.running_app import StrictKeywordPricer


def run(*args: str):
    return CliRunner().invoke(launch.app, list(args))


def test_a_batch_file_is_priced_line_by_line(tmp_path, monkeypatch):
    monkeypatch.setattr("agents.pricing.load_pricers", lambda settings: ({"ensemble": StrictKeywordPricer()}, {}))
    backlog = tmp_path / "backlog.txt"
    backlog.write_text("Sony WH-1000XM5 wireless headphones\n\n   \nAnker 737 USB-C charger 120W\n", encoding="utf-8")
    result = run("price", "--batch", str(backlog))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["description"] for line in lines] == ["Sony WH-1000XM5 wireless headphones",
                                                       "Anker 737 USB-C charger 120W"]
    assert all(line["estimate"]["value"] > 0 for line in lines)


def test_misuse_is_one_clear_line(tmp_path, monkeypatch):
    assert "--ray prices a --batch FILE" in run("price", "a drill", "--ray", "127.0.0.1:1").output
    assert "say what to price" in run("price").output
    missing = run("price", "--batch", str(tmp_path / "nope.txt"))
    assert missing.exit_code == 1 and "cannot read" in missing.output and "Traceback" not in missing.output
    monkeypatch.setattr("agents.pricing.load_pricers", lambda settings: ({}, {"forest": "no forest model: run `launch.py train forest`"}))
    (tmp_path / "one.txt").write_text("a drill\n", encoding="utf-8")
    nothing = run("price", "--batch", str(tmp_path / "one.txt"))
    assert nothing.exit_code == 1 and "no pricing agent is built yet" in nothing.output
    assert "the forest agent is not used: no forest model: run `launch.py train forest`" in nothing.stderr


def test_train_store_against_a_dead_chroma_server_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DEALSCOUT_CHROMA_URL", "http://127.0.0.1:1")
    result = run("train", "store")
    assert result.exit_code == 1 and "cannot reach the Chroma server at http://127.0.0.1:1" in result.output
    assert "Traceback" not in result.output
