"""Product data: load, curate and split the priced catalogue every model trains and is judged on.

Two input formats:
- our catalogue (one JSON object a line: title, category, price, text, details as a JSON string);
- Amazon Reviews 2023 `raw_meta_<Category>` lines (title, description list, features list,
  details object, price, main_category), from a file or, online, from the hub.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.types import MAX_PRICE, MIN_PRICE, Item

MIN_TEXT_CHARS = 120
MAX_TEXT_CHARS = 1000  # ~160 Llama-3 tokens, as in the shared catalogue
PROMPT_QUESTION = "How much does this cost to the nearest dollar?"
SPLITS = ("train", "val", "test")
REFERENCE_TEST = "reference_test"  # held-out items of the distribution deals come from (optional)
EXPENSIVE_TEST = "expensive_test"  # held-out extra items above the old $999.49 ceiling (optional)
OLD_CEILING = 999.49  # every model was capped here before; items above it are judged apart
UNKNOWN_CATEGORY = "unknown"  # allowed in extra training data only

# Amazon Reviews 2023 categories; anything else is skipped as unknown.
CATEGORIES = frozenset(
    ["All_Beauty", "Amazon_Fashion", "Appliances", "Arts_Crafts_and_Sewing", "Automotive", "Baby_Products", "Beauty_and_Personal_Care", "Books", "CDs_and_Vinyl", "Cell_Phones_and_Accessories", "Clothing_Shoes_and_Jewelry", "Digital_Music", "Electronics", "Gift_Cards", "Grocery_and_Gourmet_Food", "Handmade_Products", "Health_and_Household", "Health_and_Personal_Care", "Home_and_Kitchen", "Industrial_and_Scientific", "Kindle_Store", "Magazine_Subscriptions", "Movies_and_TV", "Musical_Instruments", "Office_Products", "Patio_Lawn_and_Garden", "Pet_Supplies", "Software", "Sports_and_Outdoors", "Subscription_Boxes", "Tools_and_Home_Improvement", "Toys_and_Games", "Video_Games"]
)
# Detail keys that say nothing about what a thing is worth.
NOISY_DETAILS = frozenset({
    "Batteries Included?", "Batteries Required?", "Batteries", "Date First Available",
    "Best Sellers Rank", "Customer Reviews", "Item model number", "Part Number",
    "Manufacturer Part Number", "Date first listed on Amazon", "Is Discontinued By Manufacturer",
    "Approximate Download Time", "Application Permissions", "UPC", "ASIN",
})
_PART_NUMBER = re.compile(r"\b(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9-]{7,}\b")
_SPACE = re.compile(r"[ \t\r\f\v]+")
_PRICE_TEXT = re.compile(r"^\$?\s*([0-9][0-9,]*(?:\.[0-9]+)?)$")


def prompt(text: str) -> str:
    return f"{PROMPT_QUESTION}\n\n{text}\n\nPrice is $"


def completion(price: float) -> str:
    return f"{round(price)}.00"


def scrub(text: str) -> str:
    """Drop part numbers and stray whitespace, cap the length at a word boundary."""
    text = _PART_NUMBER.sub("", text)
    text = "\n".join(_SPACE.sub(" ", line).strip() for line in text.splitlines())
    text = re.sub(r"\n{2,}", "\n", text).strip()
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS].rsplit(" ", 1)[0]
    return text


def clean_details(details: Any) -> dict[str, str]:
    if isinstance(details, str):
        details = json.loads(details) if details.strip() else {}
    if not isinstance(details, dict):
        raise ValueError("details is not an object")
    return {str(k): str(v) for k, v in details.items() if k not in NOISY_DETAILS and v not in (None, "")}


def parse_price(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError("missing price")
    if isinstance(value, int | float):
        price = float(value)
    else:
        match = _PRICE_TEXT.match(str(value).strip())
        if not match:
            raise ValueError(f"non-numeric price {str(value)[:20]!r}")
        price = float(match.group(1).replace(",", ""))
    if not MIN_PRICE <= price <= MAX_PRICE:
        raise ValueError(f"price {price} outside ${MIN_PRICE}-${MAX_PRICE}")
    return price


@dataclass
class LoadReport:
    items: list[Item] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        kept = f"{len(self.items)} items kept"
        if not self.skipped:
            return kept
        why = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
        return f"{kept}, {sum(self.skipped.values())} skipped ({why})"


def _reason(err: Exception) -> str:
    """Group skip reasons by kind so the summary stays short ("price outside..." not per value)."""
    text = str(err)
    for kind in ("missing price", "non-numeric price", "outside", "unknown category", "text too short",
                 "details", "missing title", "duplicate"):
        if kind in text:
            return {"outside": "price out of range"}.get(kind, kind)
    return text[:40]


def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            yield from f
    except (OSError, EOFError, zlib.error) as err:  # a gzip cut short or corrupted, too
        raise ValueError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from err


def _records(path: Path, report: LoadReport) -> Iterator[dict[str, Any]]:
    for line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            report.skipped["broken JSON"] += 1
            continue
        if isinstance(record, dict):
            yield record
        else:
            report.skipped["not an object"] += 1


def _keep(report: LoadReport, make: Any, record: dict[str, Any], seen: set[str]) -> None:
    try:
        item = make(record)
        if item.title.lower() in seen:
            raise ValueError("duplicate")
    except (ValueError, TypeError, KeyError) as err:
        report.skipped[_reason(err)] += 1
        return
    seen.add(item.title.lower())
    report.items.append(item)


def _catalogue_item(record: dict[str, Any], source: str = "catalogue") -> Item:
    title = str(record.get("title") or "").strip()
    if not title:
        raise ValueError("missing title")
    category = str(record.get("category") or "")
    if category not in CATEGORIES and not (source == "extra" and category == UNKNOWN_CATEGORY):
        raise ValueError(f"unknown category {category[:30]!r}")
    text = scrub(str(record.get("text") or ""))
    if len(text) < MIN_TEXT_CHARS:
        raise ValueError("text too short")
    try:
        details = clean_details(record.get("details") or {})
    except (ValueError, json.JSONDecodeError) as err:
        raise ValueError("bad details") from err
    return Item(title=title, category=category, price=parse_price(record.get("price")), text=text,
                details=details, source=source)


def raw_item(record: dict[str, Any], category: str) -> Item:
    """An Amazon Reviews 2023 raw_meta record -> Item, by the same curation rules."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category[:30]!r}")
    title = str(record.get("title") or "").strip()
    if not title:
        raise ValueError("missing title")
    price = parse_price(record.get("price"))
    try:
        details = clean_details(record.get("details") or {})
    except (ValueError, json.JSONDecodeError) as err:
        raise ValueError("bad details") from err
    parts = [title, *map(str, record.get("description") or []), *map(str, record.get("features") or [])]
    parts += [f"{k}: {v}" for k, v in details.items()]
    text = scrub("\n".join(parts))
    if len(text) < MIN_TEXT_CHARS:
        raise ValueError("text too short")
    return Item(title=title, category=category, price=price, text=text, details=details)


def raw_category(path: Path) -> str:
    """raw_meta_Electronics.jsonl(.gz) -> Electronics."""
    match = re.match(r"raw_meta_([A-Za-z_]+?)(?:\.jsonl)?(?:\.gz)?$", path.name)
    if not match:
        raise ValueError(f"cannot tell the category of {path.name}: name it raw_meta_<Category>.jsonl")
    return match.group(1)


def load_catalogue(path: Path | str, *, raw: bool = False, category: str | None = None,
                   extra: bool = False) -> LoadReport:
    """Load and curate a catalogue file. Bad lines are counted in `skipped`, never fatal.

    `extra`: more training data (e.g. ../shared/data/more_products), kept apart as
    `source="extra"` so training can re-weight it; its category may be "unknown"."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"cannot read {path}: no such file")
    report, seen = LoadReport(), set()
    if raw:
        cat = category or raw_category(path)
        make = lambda r: raw_item(r, cat)  # noqa: E731
    else:
        make = lambda r: _catalogue_item(r, "extra" if extra else "catalogue")  # noqa: E731
    for record in _records(path, report):
        _keep(report, make, record, seen)
    return report


def load_raw_records(records: Iterable[dict[str, Any]], category: str) -> LoadReport:
    report, seen = LoadReport(), set()
    for record in records:
        _keep(report, lambda r: raw_item(r, category), record, seen)
    return report


def load_from_hub(categories: list[str]) -> LoadReport:  # pragma: no cover - needs the internet
    """Online only: stream McAuley-Lab/Amazon-Reviews-2023 raw_meta_<Category> through `datasets`."""
    from datasets import load_dataset

    report = LoadReport()
    for cat in categories:
        rows = load_dataset("McAuley-Lab/Amazon-Reviews-2023", f"raw_meta_{cat}", split="full",
                            trust_remote_code=True)
        part = load_raw_records(rows, cat)
        report.items += part.items
        report.skipped += part.skipped
    return report


@dataclass
class Splits:
    train: list[Item]
    val: list[Item]
    test: list[Item]
    reference_test: list[Item] = field(default_factory=list)
    expensive_test: list[Item] = field(default_factory=list)


def split_items(items: list[Item], *, seed: int = 42, test_per_category: int = 60,
                val_per_category: int = 100, max_train_per_category: int | None = None,
                reference: set[str] | None = None, extra: list[Item] | None = None,
                reference_test_share: float = 0.4, reference_val_share: float = 0.2,
                expensive_test_share: float = 0.3) -> Splits:
    """Category-balanced validation and test sets (what users meet is not Software-heavy);
    the rest trains, optionally capped per category to rebalance.

    With `reference` (titles of items from the distribution deals come from): a seeded
    `reference_test_share` of those items is held out as `reference_test` (the headline figure),
    `reference_val_share` is the validation split (the ensemble and the alert rule are fitted on
    the distribution they serve), the rest trains; the other items give the balanced test and
    train. `extra` items train, except a seeded `expensive_test_share` of those above the old
    $999.49 ceiling, held out to judge prices no model could reach before."""
    rng = random.Random(seed)
    titles = {t.lower() for t in reference or ()}
    by_cat: dict[str, list[Item]] = defaultdict(list)
    ref_items = []
    for item in sorted(items, key=lambda i: (i.category, i.title)):
        (ref_items if item.title.lower() in titles else by_cat[item.category]).append(item)
    train, val, test = [], [], []
    for cat in sorted(by_cat):
        group = by_cat[cat]
        rng.shuffle(group)
        # Small categories give at most a quarter each to test and validation.
        n_test = min(test_per_category, len(group) // 4)
        n_val = 0 if titles else min(val_per_category, len(group) // 4)
        test += group[:n_test]
        val += group[n_test:n_test + n_val]
        train += group[n_test + n_val:][:max_train_per_category]
    rng.shuffle(ref_items)
    n_test, n_val = round(len(ref_items) * reference_test_share), round(len(ref_items) * reference_val_share)
    reference_test = ref_items[:n_test]
    val += ref_items[n_test:n_test + n_val]
    extra = sorted(extra or [], key=lambda i: i.title)
    rng.shuffle(extra)
    expensive = [i for i in extra if i.price > OLD_CEILING]
    expensive_test = expensive[:round(len(expensive) * expensive_test_share)]
    held = {id(i) for i in expensive_test}
    train += ref_items[n_test + n_val:] + [i for i in extra if id(i) not in held]
    for part in (train, val, test):
        rng.shuffle(part)
    return Splits(train, val, test, reference_test, expensive_test)


def save_splits(splits: Splits, directory: Path, manifest: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in (*SPLITS, REFERENCE_TEST, EXPENSIVE_TEST):
        items = getattr(splits, name)
        if name not in SPLITS and not items:
            (directory / f"{name}.jsonl").unlink(missing_ok=True)
            continue
        tmp = directory / f"{name}.jsonl.tmp"
        tmp.write_text("".join(item.model_dump_json() + "\n" for item in items), encoding="utf-8")
        tmp.replace(directory / f"{name}.jsonl")
        manifest[f"{name}_items"] = len(items)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def split_exists(directory: Path) -> bool:
    return all((directory / f"{name}.jsonl").is_file() for name in SPLITS)


def test_items(directory: Path) -> list[Item]:
    """The headline test: the held-out reference items when the split has them, else the test split."""
    if (directory / f"{REFERENCE_TEST}.jsonl").is_file():
        return load_split(directory, REFERENCE_TEST)
    return load_split(directory, "test")


def load_split(directory: Path, name: str) -> list[Item]:
    path = directory / f"{name}.jsonl"
    if not path.is_file():
        raise ValueError(f"no {name} split at {path}: run `launch.py data --catalogue FILE` first")
    return [Item.model_validate_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

