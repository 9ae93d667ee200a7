"""Every registered model on the same saved test split, in one run: one table.

    .venv/bin/python benchmarks/accuracy.py [--limit N] [--models a,b] [--json FILE] [--charts DIR]

Models whose artifacts are missing are listed as such (build them with `launch.py train all`).
`--models specialist_untuned` adds the specialist's base model before fine-tuning (not in the
default run: it generates digits, minutes on CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.config import Settings  # noqa: E402
from training.data import load_split  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.registry import load_model, model_names  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="only the first N test items")
    parser.add_argument("--models", help="comma-separated names (default: all registered)")
    parser.add_argument("--json", type=Path, help="also write the reports here")
    parser.add_argument("--charts", type=Path, help="save a scatter PNG per model here")
    parser.add_argument("--per-category", action="store_true", help="print the per-category MAE table")
    args = parser.parse_args()

    settings = Settings()
    test = load_split(settings.split_dir, "test")[: args.limit]
    names = args.models.split(",") if args.models else model_names()
    reports, missing = [], {}
    for name in names:
        try:
            model = load_model(name, settings)
        except (ValueError, FileNotFoundError) as err:
            missing[name] = str(err)
            continue
        chart = args.charts / f"{name}.png" if args.charts else None
        reports.append(evaluate(model, test, name=name, chart=chart))

    cats = sorted({item.category for item in test})
    print(f"\n{len(test)} test items, {len(cats)} categories (split: {settings.split_dir})\n")
    print(f"| {'model':18} | {'MAE $':>8} | {'RMSLE':>6} | {'hits':>6} | {'coverage':>8} | {'width $':>8} | {'ms/item':>8} |")
    print(f"|{'-' * 20}|{'-' * 10}|{'-' * 8}|{'-' * 8}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    for r in reports:
        cov = f"{r.coverage:.1%}" if r.coverage is not None else "-"
        width = f"{r.mean_width:.0f}" if r.mean_width is not None else "-"
        print(f"| {r.model:18} | {r.mae:8.2f} | {r.rmsle:6.3f} | {r.hits:6.1%} | {cov:>8} | {width:>8} "
              f"| {r.seconds_per_item * 1000:8.1f} |")
    for name, why in missing.items():
        print(f"| {name:18} | not built: {why}")
    if args.per_category:
        print("\nMAE by category\n")
        print("| model | " + " | ".join(c[:14] for c in cats) + " |")
        print("|---" * (len(cats) + 1) + "|")
        for r in reports:
            print(f"| {r.model} | " + " | ".join(f"{r.per_category[c].mae:.0f}" for c in cats) + " |")
    if args.json:
        args.json.write_text(json.dumps([r.model_dump() for r in reports], indent=2))


if __name__ == "__main__":
    main()
