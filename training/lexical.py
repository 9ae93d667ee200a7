"""Fit the lexical index and the TF-IDF ridge (agents/pricing/lexical.py) on the training split.

Words and word pairs (brands, model names and numbers survive as tokens), sublinear counts,
English stop words dropped. Items are weighted by the price prior of training/weights.py, both in
the ridge and when they are found as neighbours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge

from agents.pricing.lexical import LexicalIndex
from models.config import LEXICAL_FILE
from models.types import Item
from training.weights import price_prior_weights

ALPHA = 3.0  # chosen on the reference validation part: 1.0 -> $112.0, 3.0 -> $109.5 MAE
MAX_FEATURES = 200_000


def fit_lexical(train: Sequence[Item], val: Sequence[Item], models_dir: Path, *,
                log: Callable[[str], None] = print) -> LexicalIndex:
    if len(train) < 20:
        raise ValueError(f"too few training items ({len(train)}) for the lexical index")
    prices = np.array([item.price for item in train])
    weights = price_prior_weights(prices, [item.price for item in val])
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=MAX_FEATURES,
                                 sublinear_tf=True, stop_words="english", dtype=np.float32)
    matrix = vectorizer.fit_transform([item.text for item in train])
    ridge = Ridge(alpha=ALPHA).fit(matrix, np.log(prices), sample_weight=weights)
    index = LexicalIndex(vectorizer=vectorizer, matrix=matrix, titles=[i.title for i in train],
                         categories=[i.category for i in train], prices=prices, weights=weights,
                         ridge=ridge)
    index.save(models_dir / LEXICAL_FILE)
    log(f"lexical index: {len(train)} items, {matrix.shape[1]} terms, saved {models_dir / LEXICAL_FILE}")
    return index
