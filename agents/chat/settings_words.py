"""How the router reads a settings change in the chat ("set the threshold to $80", "send me at
most 5 alerts per scan", "show my settings"): the rule that marks one and its values."""

from __future__ import annotations

import re
from typing import Any

from models.text import first_amount

SETTINGS_COMMANDS: list[tuple[str, re.Pattern[str]]] = [
    ("change_settings", re.compile(
        r"^(?:set|change|make|update|raise|lower|increase|decrease|put|use)\b.{0,40}"
        r"\b(?:threshold|alerts?\s+(?:per|a|each)\s+scan|number\s+of\s+alerts)\b"
        r"|^(?:only\s+)?(?:send|give|alert|notify|tell)\s+(?:me\s+)?(?:about\s+)?(?:at\s+most\s+|up\s+to\s+|only\s+|no\s+more\s+than\s+)?\w+\s+"
        r"(?:alerts?|deals?)\s+(?:per|a|each)\s+scan\b"
        r"|^(?:what\s+are\s+|show\s+(?:me\s+)?)?(?:my|the|your)\s+(?:alert\s+)?settings\b"
        r"|^what(?:'s|s|\s+is|\s+are)\s+(?:the\s+|my\s+|your\s+)?(?:current\s+)?(?:alert\s+|savings\s+)?"
        r"(?:threshold|settings)\b", re.I)),
]
_THRESHOLD = re.compile(r"\bthreshold\b\D{0,20}(?P<v>[$€£]?\s?\d[\d,]*(?:\.\d+)?)", re.I)
_PER_SCAN = re.compile(r"(?P<n>\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten)\s+(?:alerts?\b|deals?\s+(?:per|a|each)\s+scan\b)"
                       r"|\balerts?\s+(?:per|a|each)\s+scan\D{0,12}(?P<m>\d{1,3})\b", re.I)
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10}


def settings_arguments(message: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if (threshold := _THRESHOLD.search(message)) and (value := first_amount(threshold["v"])) is not None:
        found["threshold"] = value
    if per_scan := _PER_SCAN.search(message):
        word = (per_scan["n"] or per_scan["m"]).lower()
        found["notify_best"] = int(word) if word.isdigit() else _WORDS[word]
    return found
