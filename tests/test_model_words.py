"""Watch matching on the words that tell products apart (agents/model_words.py): an outside tryout
found real matches missed ("Bose QC45" vs "Bose QuietComfort 45") and markup making "1" a
required word; look-alike models must still not match."""

from __future__ import annotations

import numpy as np
import pytest

from agents.model_words import names_model_words, required_words
from agents.watchlist import MODEL_NUMBER_FLOOR, SIMILARITY_FLOOR, WatchError, Watchlist
from models.embeddings import Embedder

# (watch query, deal title, should match)
FIXTURE = [
    ("Bose QC45", "Bose QuietComfort 45 Wireless Noise Cancelling Headphones", True),
    ("AirPods Pro 2", "Apple AirPods Pro (2nd Generation) Wireless Earbuds with MagSafe Case", True),
    ("LG C3 65 inch", "LG 65-Inch Class OLED evo C3 Series 4K Smart TV", True),
    ('Samsung 65" QN90C', "Samsung 65 inch QN90C Neo QLED 4K TV", True),
    ("Sony A7 IV", "Sony Alpha a7 IV Full-Frame Mirrorless Camera", True),
    ("Sony WH-1000XM5", "Sony WH1000XM5 Wireless Noise Canceling Headphones", True),
    ("Sony A7 IV", "Sony Alpha a7 III Full-Frame Mirrorless Camera", False),
    ("Sony WH-1000XM4", "Sony WH-1000XM5 Wireless Noise Canceling Headphones", False),
    ("Sony XM4", "Sony WH-1000XM5 Wireless Noise Canceling Headphones", False),
    ("Bose QC45", "Bose QuietComfort 35 II Wireless Headphones", False),
    ("LG C3 65 inch", "LG 55-Inch Class OLED evo C3 Series 4K Smart TV", False),
    ("AirPods Pro 2", "Apple AirPods Pro (1st Generation)", False),
]


@pytest.mark.parametrize(("query", "title", "match"), FIXTURE)
def test_model_words_of_the_fixture(query, title, match):
    assert names_model_words(query, title) is match


def test_the_fixtures_matches_are_close_in_meaning_too():
    embedder = Embedder()
    pairs = [(q, t) for q, t, match in FIXTURE if match]
    vectors = np.asarray(embedder.embed([text for pair in pairs for text in pair]))
    similarities = dict(zip(pairs, (float(vectors[i] @ vectors[i + 1]) for i in range(0, len(vectors), 2)),
                            strict=True))
    whole_number = ("Sony WH-1000XM5", "Sony WH1000XM5 Wireless Noise Canceling Headphones")
    assert similarities.pop(whole_number) >= MODEL_NUMBER_FLOOR
    assert min(similarities.values()) >= SIMILARITY_FLOOR, similarities


def test_markup_in_a_query_makes_no_required_word(tmp_path):
    from agents.memory import Memory

    assert required_words("<img src=x onerror=alert(1)>") == []
    assert required_words("<b>Sony WH-1000XM5</b>") == ["WH-1000XM5"]
    watchlist = Watchlist(Memory(tmp_path / "m.db"))
    with pytest.raises(WatchError, match="say what to watch for"):
        watchlist.add("", "<img src=x onerror=alert(1)>")
    assert watchlist.add("", "<b>Sony WH-1000XM5</b> under").query == "Sony WH-1000XM5 under"
