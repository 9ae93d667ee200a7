"""One home per fact: facts that once lived in several places are written in one only."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_money_is_formatted_by_models_types_money_only():
    inline = re.compile(r"\$\{[^{}]*:,\.2f\}")
    sources = [*ROOT.joinpath("agents").rglob("*.py"), *ROOT.joinpath("ui").rglob("*.py"), ROOT / "launch.py"]
    found = [f"{path.relative_to(ROOT)}:{n}" for path in sources
             for n, line in enumerate(path.read_text().splitlines(), 1) if inline.search(line)]
    assert found == [], "format money with models.types.money: " + ", ".join(found)
