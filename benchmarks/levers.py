"""Each accuracy lever on the reference protocol, added one at a time, in one run.

    .venv/bin/python benchmarks/levers.py

Reads the saved split (reference test held out, validation = the reference validation part) and
the embedding cache that `launch.py train all` fills. Members are refitted here for every row,
in memory (dense neighbours by numpy dot products over the same MiniLM vectors the store holds,
the rest with the product's own fitting code), then blended by training/ensemble.py and judged by
the product's EnsembleAgent and the real alert rule. Nothing is tuned on the test items.

Rows:
  before       last session's recipe: MiniLM neighbours (k=5) and the SVR forest on the
               catalogue, the SVR weighted per category, blend fitted on validation
  +prior       training items weighted by the price prior (training/weights.py)
  +hybrid      the frontier also retrieves by words (TF-IDF over the catalogue), k=10 a side
  +extra       the lexical side also knows more_products (the training split's extra items)
  +tfidf       the TF-IDF ridge as a third member (the product's default)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.svm import SVR  # noqa: E402

from agents.pricing import make_embedder  # noqa: E402
from agents.pricing.ensemble import EnsembleAgent  # noqa: E402
from agents.pricing.frontier import hybrid_estimate, merge_evidence  # noqa: E402
from agents.pricing.lexical import TfidfAgent  # noqa: E402
from agents.pricing.text import clean_description  # noqa: E402
from models.config import Settings  # noqa: E402
from models.types import Estimate, Item, Neighbour  # noqa: E402
from training.data import REFERENCE_TEST, load_split  # noqa: E402
from training.ensemble import fit_ensemble  # noqa: E402
from training.evaluate import bootstrap_interval, deal_detection, report  # noqa: E402
from training.forest import category_weights  # noqa: E402
from training.lexical import fit_lexical  # noqa: E402
from training.weights import price_prior_weights  # noqa: E402


class Answers:
    """A member that answers from estimates made beforehand (keyed by cleaned text)."""

    def __init__(self, name: str, table: dict[str, Estimate]):
        self.name, self.table = name, table

    def estimate(self, description: str) -> Estimate:
        return self.table[description]

    def estimate_batch(self, descriptions: list[str]) -> list[Estimate]:
        return [self.table[d] for d in descriptions]


def dense_neighbours(train: list[Item], x_train: np.ndarray, weights: np.ndarray, x: np.ndarray, k: int
                     ) -> list[list[Neighbour]]:
    sims = x @ x_train.T
    rows = np.argsort(-sims, axis=1)[:, :k]
    return [[Neighbour(title=train[r].title, category=train[r].category, price=train[r].price,
                       similarity=float(s[r]), weight=float(weights[r]), source="meaning") for r in row]
            for row, s in zip(rows, sims, strict=True)]


def main() -> None:
    settings = Settings()
    train = load_split(settings.split_dir, "train")
    val, test = load_split(settings.split_dir, "val"), load_split(settings.split_dir, REFERENCE_TEST)
    catalogue = [i for i in train if i.source != "extra"]
    embedder = make_embedder(settings)
    x_cat = embedder.embed([i.text for i in catalogue], progress=True)
    x_val, x_test = embedder.embed([i.text for i in val]), embedder.embed([i.text for i in test])
    y_cat = np.log([i.price for i in catalogue])
    flat = np.ones(len(catalogue))
    prior = price_prior_weights([i.price for i in catalogue], [i.price for i in val])
    work = Path(tempfile.mkdtemp())
    lex_cat = fit_lexical(catalogue, val, work / "cat", log=lambda _: None)
    lex_all = fit_lexical(train, val, work / "all", log=lambda _: None)

    def svr(weights: np.ndarray) -> tuple[list[float], list[float]]:
        model = SVR(C=3.0, epsilon=0.1).fit(x_cat, y_cat, sample_weight=weights)
        return [float(np.exp(v)) for v in model.predict(x_val)], [float(np.exp(v)) for v in model.predict(x_test)]

    forests = {"category": svr(category_weights([i.category for i in catalogue])), "prior": svr(prior)}

    def frontier(weights: np.ndarray, k: int, lexical) -> tuple[list[Estimate], list[Estimate]]:
        out = []
        for x, items in ((x_val, val), (x_test, test)):
            meaning = dense_neighbours(catalogue, x_cat, weights, x, k)
            words = lexical.neighbours([i.text for i in items], k) if lexical else [[] for _ in items]
            out.append([Estimate(agent="frontier", value=hybrid_estimate(m, w), evidence=merge_evidence(m, w))
                        for m, w in zip(meaning, words, strict=True)])
        return out[0], out[1]

    rows = {
        "before": (frontier(flat, 5, None), forests["category"], None),
        "+prior": (frontier(prior, 5, None), forests["prior"], None),
        "+hybrid": (frontier(prior, 10, lex_cat), forests["prior"], None),
        "+extra": (frontier(prior, 10, lex_all), forests["prior"], None),
        "+tfidf": (frontier(prior, 10, lex_all), forests["prior"], TfidfAgent(lex_all)),
    }
    truths = [i.price for i in test]
    print(f"\nReference protocol: {len(test)} held-out items; blends fitted on {len(val)} validation items\n")
    print("| lever    | ensemble MAE $ | 95% CI        | vs before, paired 95% CI | hits  | at 50% | at 100% "
          "| precision 1 in 10 | thin |")
    print("|----------|----------------|---------------|--------------------------|-------|--------|---------"
          "|-------------------|------|")
    before: np.ndarray | None = None
    for name, ((front_val, front_test), (forest_val, forest_test), tfidf) in rows.items():
        members = {"frontier": (front_val, front_test),
                   "forest": ([Estimate(agent="forest", value=v) for v in forest_val],
                              [Estimate(agent="forest", value=v) for v in forest_test])}
        if tfidf is not None:
            members["tfidf"] = (tfidf.estimate_batch([i.text for i in val]), tfidf.estimate_batch([i.text for i in test]))
        values = {m: np.array([e.value for e in v]) for m, (v, _) in members.items()}
        model = fit_ensemble(values, [i.price for i in val], level=None,
                             estimates={m: v for m, (v, _) in members.items()})
        agent = EnsembleAgent([Answers(m, {clean_description(i.text): e for i, e in zip(test, t, strict=True)})
                               for m, (_, t) in members.items()], model)
        estimates = agent.estimate_batch([i.text for i in test])
        r = report(estimates, test, name=name)
        d = deal_detection(estimates, truths, settings.threshold)
        errors = np.abs(np.array([e.value for e in estimates]) - truths)
        before = errors if before is None else before
        low, high = bootstrap_interval(list(errors - before))
        paired = f"{float(np.mean(errors - before)):+7.2f} [{low:+.1f}, {high:+.1f}]"
        print(f"| {name:8} | {r.mae:14.2f} | {r.mae_low:6.1f}-{r.mae_high:<6.1f} | {paired:24} | {r.hits:5.1%} "
              f"| {d.flagged_50:6.1%} | {d.flagged_100:7.1%} | {d.precision_1in10:17.1%} | {d.thin:4.0%} |",
              flush=True)


if __name__ == "__main__":
    main()
