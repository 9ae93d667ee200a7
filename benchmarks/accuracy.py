"""Every registered model on the same held-out items, in one run: the reference protocol first.

    .venv/bin/python benchmarks/accuracy.py [--limit N] [--models a,b] [--json FILE] [--charts DIR]

Table 1 is the reference protocol: the seeded held-out part of the reference set (the product
distribution deals come from, ../shared/data/reference_test.jsonl.gz), which no model trained on
and no choice was tuned on (the split's manifest says which file and seed). MAE comes with a 95%
bootstrap interval: a difference inside it is not a win. Then, on the same items, the alerts:
each item offered at 50/70/90/100% of its true price through the real qualify rule, and the
precision in a stream where one offer in ten is at half price. Then the held-out items above the
old $999.49 ceiling (from the extra data), which no model could estimate before.
Table 2 is the category-balanced test split of the catalogue (the figure of earlier sessions).

Models whose artifacts are missing are listed as such (build them with `launch.py train all`).
`--models specialist_untuned` adds the specialist's base model before fine-tuning.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.config import Settings  # noqa: E402
from models.types import Item  # noqa: E402
from training.data import EXPENSIVE_TEST, REFERENCE_TEST, load_split  # noqa: E402
from training.evaluate import DealScores, Report, deal_detection, predict_all, report  # noqa: E402
from training.registry import load_model, model_names  # noqa: E402


def row(r: Report) -> str:
    cov = f"{r.coverage:.1%}" if r.coverage is not None else "-"
    width = f"{r.mean_width:.0f}" if r.mean_width is not None else "-"
    return (f"| {r.model:18} | {r.mae:8.2f} | {r.mae_low:6.1f}-{r.mae_high:<6.1f} | {r.rmsle:6.3f} | {r.hits:6.1%} "
            f"| {cov:>8} | {width:>8} | {r.seconds_per_item * 1000:8.1f} |")


def table(title: str, items: list[Item], reports: list[Report], missing: dict[str, str]) -> None:
    print(f"\n{title}: {len(items)} items, {len({i.category for i in items})} categories\n")
    print(f"| {'model':18} | {'MAE $':>8} | {'95% CI':>13} | {'RMSLE':>6} | {'hits':>6} | {'coverage':>8} "
          f"| {'width $':>8} | {'ms/item':>8} |")
    print(f"|{'-' * 20}|{'-' * 10}|{'-' * 15}|{'-' * 8}|{'-' * 8}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    for r in reports:
        print(row(r))
    for name, why in missing.items():
        print(f"| {name:18} | not built: {why}")


def deals_table(found: dict[str, DealScores]) -> None:
    print(f"\nAlerts (threshold ${next(iter(found.values())).threshold:,.0f}): share of offers flagged at a "
          "fraction of the true price\n")
    print("| model              | at 50% | at 70% | at 90% | at 100% | precision 1 in 10 | thin |")
    print("|--------------------|--------|--------|--------|---------|-------------------|------|")
    for name, d in found.items():
        print(f"| {name:18} | {d.flagged_50:6.1%} | {d.flagged_70:6.1%} | {d.flagged_90:6.1%} | "
              f"{d.flagged_100:7.1%} | {d.precision_1in10:17.1%} | {d.thin:4.0%} |")


def run(settings: Settings, names: list[str], items: list[Item], charts: Path | None
        ) -> tuple[list[Report], dict[str, str], dict[str, list]]:
    reports, missing, estimates = [], {}, {}
    for name in names:
        try:
            model = load_model(name, settings)
        except (ValueError, FileNotFoundError) as err:
            missing[name] = str(err)
            continue
        started = time.perf_counter()
        estimates[name] = predict_all(model, [item.text for item in items])
        reports.append(report(estimates[name], items, name=name, seconds=time.perf_counter() - started,
                              chart=charts / f"{name}.png" if charts else None))
    return reports, missing, estimates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="only the first N items of each table")
    parser.add_argument("--models", help="comma-separated names (default: all registered)")
    parser.add_argument("--json", type=Path, help="also write the reports here")
    parser.add_argument("--charts", type=Path, help="save a scatter PNG per model here")
    parser.add_argument("--per-category", action="store_true", help="print the per-category MAE table")
    args = parser.parse_args()

    settings = Settings()
    names = args.models.split(",") if args.models else model_names()
    manifest = json.loads((settings.split_dir / "manifest.json").read_text()) \
        if (settings.split_dir / "manifest.json").is_file() else {}
    out: dict[str, object] = {}
    if (settings.split_dir / f"{REFERENCE_TEST}.jsonl").is_file():
        items = load_split(settings.split_dir, REFERENCE_TEST)[: args.limit]
        reports, missing, estimates = run(settings, names, items, args.charts)
        table(f"Reference protocol (held out, seed {manifest.get('seed', '?')}, from "
              f"{Path(str(manifest.get('reference', '?'))).name})", items, reports, missing)
        found = {n: deal_detection(e, [i.price for i in items], settings.threshold) for n, e in estimates.items()}
        if found:
            deals_table(found)
        if args.per_category:
            per_category(items, reports)
        out["reference"] = {"reports": [r.model_dump() for r in reports],
                            "deals": {n: d.model_dump() for n, d in found.items()}}
    else:
        print("no reference test in the split: set DEALSCOUT_REFERENCE and remake the split "
              "(`launch.py data`), so table 1 is measured where deals are")
    if (settings.split_dir / f"{EXPENSIVE_TEST}.jsonl").is_file():
        items = load_split(settings.split_dir, EXPENSIVE_TEST)[: args.limit]
        reports, missing, estimates = run(settings, names, items, None)
        table("Above the old $999.49 ceiling (held-out extra items; laptops, TVs, parts)", items, reports, missing)
        found = {n: deal_detection(e, [i.price for i in items], settings.threshold) for n, e in estimates.items()}
        if found:
            deals_table(found)
        out["expensive"] = {"reports": [r.model_dump() for r in reports],
                            "deals": {n: d.model_dump() for n, d in found.items()}}
    test = load_split(settings.split_dir, "test")[: args.limit]
    reports, missing, _ = run(settings, names, test, None)
    table("Category-balanced test split of the catalogue", test, reports, missing)
    if args.per_category:
        per_category(test, reports)
    out["balanced"] = [r.model_dump() for r in reports]
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


def per_category(items: list[Item], reports: list[Report]) -> None:
    cats = sorted({item.category for item in items})
    print("\nMAE by category\n")
    print("| model | " + " | ".join(c[:14] for c in cats) + " |")
    print("|---" * (len(cats) + 1) + "|")
    for r in reports:
        print(f"| {r.model} | " + " | ".join(f"{r.per_category[c].mae:.0f}" for c in cats) + " |")


if __name__ == "__main__":
    main()
