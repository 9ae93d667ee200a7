import gzip
import json
from pathlib import Path

import pytest

from training import data

FIXTURES = Path(__file__).parent / "fixtures"
LONG_TEXT = "A sturdy cordless drill with two batteries, a charger and a carry case. " * 3


def write_catalogue(path: Path, rows: list) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def good(title: str, price=59.99, category="Tools_and_Home_Improvement", **extra) -> dict:
    return {"title": title, "category": category, "price": price, "text": f"{title}\n{LONG_TEXT}",
            "details": json.dumps({"Brand": "Bosch", "Best Sellers Rank": "#1"}), **extra}


def test_bad_lines_are_skipped_with_counts(tmp_path):
    path = write_catalogue(tmp_path / "cat.jsonl", [
        good("Drill A"),
        good("Drill B", price=None),
        good("Drill C", price=-5),
        good("Drill D", price="cheap"),
        "{broken json",
        good("Drill E", category="Spaceships"),
        good("Drill F", price="$12,999.00"),
        good("Drill G", price="12.50"),
        good("Drill A"),
        [1, 2, 3],
    ])
    report = data.load_catalogue(path)
    assert [i.title for i in report.items] == ["Drill A", "Drill G"]
    assert report.skipped == {"missing price": 1, "price out of range": 2, "non-numeric price": 1,
                              "broken JSON": 1, "unknown category": 1, "duplicate": 1,
                              "not an object": 1}
    assert "2 items kept, 8 skipped" in report.summary()


def test_curation_scrubs_noise_and_caps_length(tmp_path):
    row = good("Saw", text=None)
    row["text"] = "Saw model XJ2000-B3 with   blade\n\n\n" + "word " * 400
    report = data.load_catalogue(write_catalogue(tmp_path / "c.jsonl", [row]))
    item = report.items[0]
    assert "XJ2000-B3" not in item.text and "  " not in item.text
    assert len(item.text) <= data.MAX_TEXT_CHARS
    assert "Best Sellers Rank" not in item.details and item.details["Brand"] == "Bosch"


def test_gzip_and_unreadable_paths(tmp_path):
    path = tmp_path / "c.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(good("Router")) + "\n")
    assert len(data.load_catalogue(path).items) == 1
    with pytest.raises(ValueError, match="no such file"):
        data.load_catalogue(tmp_path / "missing.jsonl")
    bad_gz = tmp_path / "bad.jsonl.gz"
    bad_gz.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read"):
        data.load_catalogue(bad_gz)


def test_raw_amazon_format():
    report = data.load_catalogue(FIXTURES / "raw_meta_Electronics.jsonl", raw=True)
    titles = [i.title for i in report.items]
    assert titles == ["Acme 4K Ultra HD Streaming Media Player with Voice Remote",
                      "Acme Over-Ear Wireless Noise Cancelling Headphones, 40 Hour Battery"]
    assert [i.price for i in report.items] == [49.99, 129.0]
    assert all(i.category == "Electronics" for i in report.items)
    assert "Voice remote with TV controls" in report.items[0].text
    assert "Brand: Acme" in report.items[0].text and "Date First" not in report.items[0].text
    assert report.skipped == {"missing price": 1, "text too short": 1, "price out of range": 1,
                              "broken JSON": 1}


def test_hub_path_uses_the_same_curation(monkeypatch):
    rows = [json.loads(line) for line in (FIXTURES / "raw_meta_Electronics.jsonl").read_text().splitlines()
            if line.startswith("{")]
    calls = []

    def fake_load_dataset(name, config, split, trust_remote_code):
        calls.append((name, config, split))
        return rows

    monkeypatch.setattr("datasets.load_dataset", fake_load_dataset)
    report = data.load_from_hub(["Electronics"])
    assert calls == [("McAuley-Lab/Amazon-Reviews-2023", "raw_meta_Electronics", "full")]
    assert len(report.items) == 2


def test_split_is_seeded_balanced_and_disjoint(tmp_path):
    rows = [good(f"Thing {c} {i}", category=c, price=10 + i)
            for c in ("Software", "Electronics") for i in range(200 if c == "Software" else 40)]
    items = data.load_catalogue(write_catalogue(tmp_path / "c.jsonl", rows)).items
    a = data.split_items(items, seed=1, test_per_category=20, val_per_category=20)
    b = data.split_items(list(reversed(items)), seed=1, test_per_category=20, val_per_category=20)
    assert [i.title for i in a.test] == [i.title for i in b.test]
    cats = [i.category for i in a.test]
    assert cats.count("Software") == 20 and cats.count("Electronics") == 10  # a quarter of 40
    names = [{i.title for i in part} for part in (a.train, a.val, a.test)]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert sum(map(len, names)) == len(items)
    capped = data.split_items(items, seed=1, test_per_category=20, val_per_category=20,
                              max_train_per_category=50)
    assert [i.category for i in capped.train].count("Software") == 50

    data.save_splits(a, tmp_path / "split", {"seed": 1})
    assert data.split_exists(tmp_path / "split")
    assert data.load_split(tmp_path / "split", "test") == a.test
    assert json.loads((tmp_path / "split" / "manifest.json").read_text())["test_items"] == len(a.test)


def test_prompt_and_completion():
    assert data.prompt("A drill") == "How much does this cost to the nearest dollar?\n\nA drill\n\nPrice is $"
    assert data.completion(59.6) == "60.00"
