"""Model words: the words of a product query that tell one product from another ("WH-1000XM5",
"4K", "OLED", "C3", "65 inch", "IV"), and whether a deal's text names each of them.

Both sides are normalised first: markup dropped, sizes written one way ("65 inch", "65-Inch" and
65" are "65in"), ordinals as numbers ("2nd" is "2"). A model word with letters before its number
("QC45") is also named by a series whose initials are those letters ("QuietComfort 45"), with
exactly that number after it: "XM4" is never "XM5", "A7 IV" never "A7 III".
"""

from __future__ import annotations

import re

from models.text import clean_html

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-./+]*")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:-\s*)?(?:inch(?:es)?\b|\"|”|″|'')", re.I)
_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.I)
_ROMAN = frozenset({"II", "III", "IV", "VI", "VII", "VIII", "IX"})  # "Mark II", "A7 IV" ("V" alone is a word)
_SERIES_NUMBER = re.compile(r"([a-z]{2,4})(\d+[a-z]?)")
_WORDS = re.compile(r"[A-Za-z]+|\d+[A-Za-z]?")
_CAPITALS = re.compile(r"[A-Z][a-z]*|[a-z]+")


def normalise(text: str) -> str:
    """The text as model words are compared: no markup, sizes as "65in", ordinals as numbers."""
    text = clean_html(text) if "<" in text or "&" in text else text
    return _ORDINAL.sub(r"\1", _SIZE.sub(r"\1in ", text))


def _squash(word: str) -> str:
    return re.sub(r"[^a-z0-9]", "", word.lower())


def required_words(query: str) -> list[str]:
    """The words a match must contain: those with a digit (model names, sizes: "WH-1000XM5",
    "4K", "65in"), acronyms of three letters or more ("OLED") and roman model numbers ("IV")."""
    words = [w.strip(".-/+") for w in _TOKEN.findall(normalise(query))]
    return [w for w in words if any(c.isdigit() for c in w) or (len(w) >= 3 and w.isupper()) or w in _ROMAN]


def _series_initials(text: str, letters: str, number: str) -> bool:
    """ "QuietComfort 45" (or "Quiet Comfort 45") for "qc" and "45"."""
    words = _WORDS.findall(text)
    for at, word in enumerate(words):
        if word.lower() != number or at == 0:
            continue
        before = words[max(0, at - len(letters)):at]
        one_word = "".join(part[0] for part in _CAPITALS.findall(before[-1])).lower()
        several = "".join(w[0] for w in before).lower()
        if letters in (one_word, several):
            return True
    return False


def contains(text: str, word: str) -> bool:
    """Whether the (normalised) text names the model word."""
    squashed = _squash(word)
    if len(squashed) >= 5 and squashed in _squash(text):  # "WH1000XM5" in "WH-1000XM5", "WH 1000XM5"
        return True
    if squashed in {_squash(t) for t in _TOKEN.findall(text)}:
        return True
    series = _SERIES_NUMBER.fullmatch(squashed)
    return bool(series) and _series_initials(text, *series.groups())


def names_model_words(query: str, text: str) -> bool:
    """Whether the text names every model word of the query."""
    text = normalise(text)
    return all(contains(text, word) for word in required_words(query))
