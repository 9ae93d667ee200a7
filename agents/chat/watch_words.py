"""How the router reads watch requests: the rules that mark one, and the product and price
ceiling in it ("alert me when a Sony WH-1000XM5 drops under $250" -> "Sony WH-1000XM5", 250).
A watch alerts later on its own, so like notify_user it needs a short, direct request."""

from __future__ import annotations

import re
from typing import Any

WATCH_TOOLS = ("watch_product", "list_watches", "unwatch")

# Stopping the alerts about a product is stopping its watch: "forget (about) the Steam Deck", "don't
# alert me about the roomba (anymore)", "stop notifying me about X". "forget it", "don't tell me about
# that" name nothing, so they are small talk.
_NO_MORE_ALERTS = (r"forget(?:\s+about)?|(?:i\s+)?(?:don['’]?t|do\s+not|never)\s+(?:alert|notify|tell|ping|text|e-?mail"
                   r"|message|warn|bother)\s+(?:me|us)\s+(?:about|of|on|regarding|for)"
                   r"|stop\s+(?:alerting|notifying|telling|pinging|texting|e-?mailing|messaging|bugging|bothering)"
                   r"\s+(?:me|us)\s+(?:about|of|on|regarding|for)"
                   r"|stop\s+sending\s+(?:me|us)\s+(?:any\s+)?(?:price\s+)?(?:alerts?|notifications?|pings?|e-?mails?"
                   r"|texts?|messages?)\s+(?:about|for|on|regarding)")
_NAMES_SOMETHING = r"(?!(?:about\s+)?(?:it|them|everything|all|what|i)\b)(?!(?:that|this)\s*(?:[.!,;]|$))"

# "alert me when/if ..." is a watch only when it speaks of a price or a drop; "alert me when the
# Instant Pot deal is still on" asks about a found deal (notify_user).
_PRICE_TALK = r"(?=.*(?:\b(?:drops?|falls?|dips?|under|below|cheaper|cheap|less\s+than|on\s+sale|price|deal\s+on|sale\s+on|goes\s+down)\b|\$\s?\d|\d\s*(?:dollars|bucks)))"
WATCH_COMMANDS: list[tuple[str, re.Pattern[str]]] = [
    ("list_watches", re.compile(
        r"^what\s+(?:am\s+i|are\s+(?:we|you))\s+(?:watching|tracking)\b"
        r"|^(?:show|list|display|see|view)\s+(?:me\s+)?(?:all\s+)?(?:of\s+)?(?:my\s+|the\s+|our\s+)?(?:watch\s*(?:es|list)|watched|tracked|price\s+alerts)\b"
        r"|^(?:my\s+)?watch\s*list\b|^which\s+(?:products|things|items)\s+am\s+i\s+(?:watching|tracking)\b"
        r"|^(?:remind\s+me\s+|tell\s+me\s+)?what(?:'s|s|\s+is)\s+(?:on|in)\s+(?:my|the)\s+watch\s*list\b"
        r"|^(?:which|what)\s+(?:products|things|items)\s+(?:do\s+i\s+have|have\s+i\s+(?:got|set))\s+(?:price\s+)?(?:alerts?|watch(?:es)?)\b", re.I)),
    ("unwatch", re.compile(
        r"^(?:stop|quit|cease)\s+(?:watching|tracking|monitoring)\b|^un-?watch\b|^un-?track\b"
        r"|^(?:remove|delete|cancel|drop|clear)\s+(?:the\s+|my\s+|that\s+)?(?:watch|price\s+alert|tracking)\b"
        r"|^(?:remove|delete|drop)\b.{0,80}\bfrom\s+(?:my\s+|the\s+)?watch\s*list\b"
        r"|^(?:i\s+)?(?:don'?t|do\s+not|no\s+longer)\s+(?:need\s+to\s+)?(?:watch|track)\b"
        r"|^(?:" + _NO_MORE_ALERTS + r")\s+" + _NAMES_SOMETHING + r"\S"
        r"|^no\s+more\s+(?:price\s+)?(?:alerts?|notifications?|pings?)\s+(?:for|about|on)\b"
        r"|^(?:i\s+)?(?:don'?t|do\s+not|no\s+longer)\s+(?:need|want)\s+(?:any\s+)?(?:price\s+)?(?:alerts?|notifications?)\s+(?:for|about|on)\b"
        r"|^.{0,80}[,;]\s*(?:and\s+|so\s+)?(?:stop|quit)\s+(?:watching|tracking|monitoring)\b"
        r"|^.{0,80}\b(?:drop|cancel|remove|delete|kill)\s+(?:that|this|the|my)\s+(?:price\s+)?(?:alert|watch)\s*[.!]?$", re.I)),
    ("watch_product", re.compile(
        r"^(?:(?:alert|notify|tell|ping|text|e-?mail|message|warn)\s+(?:me|us)|let\s+(?:me|us)\s+know)\s+"
        r"(?:when(?:ever)?|if|once|as\s+soon\s+as)\b" + _PRICE_TALK +
        r"|^(?:(?:alert|notify|tell|ping|text|e-?mail|message|warn)\s+(?:me|us)\s+(?:about|of)\s+(?:any\s+|new\s+|future\s+)?"
        r"(?:deals?|sales?|price\s+drops?|discounts?)\s+(?:on|for)\b)" + _PRICE_TALK +
        r"|^(?:i'?d\s+love\s+)?(?:an?\s+)?(?:price\s+)?(?:alert|notification|heads[-\s]up|ping|message|e-?mail|text)\s+"
        r"(?:when(?:ever)?|if|once|as\s+soon\s+as)\b" + _PRICE_TALK +
        r"|^(?:be\s+)?(?:told|notified|alerted|pinged)\s+(?:when(?:ever)?|if|once|as\s+soon\s+as)\b" + _PRICE_TALK +
        r"|^(?:set|create|make|add)\s+(?:up\s+)?(?:a|an)\s+(?:price\s+)?(?:alert|watch)\s+(?:on|for)\b" +
        r"|^watch\s+(?:for|out\s+for)\b|^(?:track|monitor)\b|^keep\s+(?:an?\s+)?(?:eye|watch|tabs)(?:\s+out)?\s+(?:on|for)\b"
        r"|^start\s+(?:watching|tracking|monitoring)\b"
        r"|^(?!.*\b(?:stop|quit|don'?t|no\s+longer)\b).{0,120}\bkeep\s+(?:watching|tracking|monitoring)\s+(?:for|it|them)\b"
        r"|^(?:add|put)\b.{0,80}\b(?:to|on|in)\s+(?:my\s+|the\s+)?watch\s*list\b|^watch\s+(?!out\b)(?!me\b)", re.I)),
]
_LEAD = re.compile(
    r"^(?:(?:(?:alert|notify|tell|ping|text|e-?mail|message|warn)\s+(?:me|us)|let\s+(?:me|us)\s+know)\s+"
    r"(?:when(?:ever)?|if|once|as\s+soon\s+as)(?:\s+(?:there(?:'s|\s+is)\s+(?:a\s+)?(?:deal|sale)\s+(?:on|for)"
    r"|(?:the\s+)?price\s+(?:of|for)))?"
    r"|(?:(?:alert|notify|tell|ping|text|e-?mail|message|warn)\s+(?:me|us)\s+(?:about|of)\s+(?:any\s+|new\s+|future\s+)?"
    r"(?:deals?|sales?|price\s+drops?|discounts?)\s+(?:on|for))"
    r"|(?:i'?d\s+love\s+)?(?:an?\s+)?(?:price\s+)?(?:alert|notification|heads[-\s]up|ping|message|e-?mail|text)\s+"
    r"(?:when(?:ever)?|if|once|as\s+soon\s+as)"
    r"|(?:be\s+)?(?:told|notified|alerted|pinged)\s+(?:when(?:ever)?|if|once|as\s+soon\s+as)"
    r"|(?:set|create|make|add)\s+(?:up\s+)?(?:a|an)\s+(?:price\s+)?(?:alert|watch)\s+(?:on|for)"
    r"|(?:i\s+)?(?:don'?t|do\s+not|no\s+longer)\s+(?:need|want)\s+(?:any\s+)?(?:price\s+)?(?:alerts?|notifications?)\s+(?:for|about|on)"
    r"|start\s+(?:watching|tracking|monitoring)|no\s+more\s+(?:price\s+)?(?:alerts?|notifications?|pings?)\s+(?:for|about|on)"
    r"|watch(?:\s+out)?(?:\s+for)?|track(?:\s+the\s+price\s+of)?|monitor(?:\s+the\s+price\s+of)?"
    r"|keep\s+(?:an?\s+)?(?:eye|watch|tabs)(?:\s+out)?\s+(?:on|for)(?:\s+the\s+prices?\s+(?:of|for))?|add|put"
    r"|(?:i'?m|i\s+am)\s+(?:looking|searching|hunting|shopping)\s+for|i\s+(?:don'?t|do\s+not)\s+care\s+about"
    r"|" + _NO_MORE_ALERTS +
    r"|stop\s+(?:watching|tracking|monitoring)|quit\s+(?:watching|tracking)|un-?watch|un-?track"
    r"|(?:remove|delete|cancel|drop|clear)(?:\s+(?:the|my|that))?(?:\s+(?:watch|price\s+alert|tracking))?(?:\s+(?:for|on|of))?"
    r"|(?:i\s+)?(?:don'?t|do\s+not|no\s+longer)\s+(?:need\s+to\s+)?(?:watch|track))\b\s*", re.I)
# Where the product's name ends: the price talk after it.
_TAIL = re.compile(
    r"\s*(?:\b(?:drops?|falls?|dips?|goes|gets|comes|is|are|hits|reaches|sells)\b.*"
    r"|\bgo\s+(?:under|below|down|lower|cheaper|on\s+sale)\b.*|\bat\s+[$€£]\s?\d.*"
    r"|\b(?:under|below|for\s+less\s+than|less\s+than|cheaper\s+than|at\s+most|on\s+sale|at\s+or\s+under)\b.*"
    r"|\bto\s+(?:my\s+|the\s+)?watch\s*list\b.*|\bfrom\s+(?:my\s+|the\s+)?watch\s*list\b.*"
    r"|[$€£]\s?\d.*|\d[\d,.]*\s*(?:dollars|bucks).*|\bprice\s+drops?\b.*|\bfor\s+me\b.*|\bplease\b.*"
    r"|\b(?:on|in)\s+(?:my\s+|the\s+)?watch\s*list\b.*|\b(?:any\s*more|keep\s+watching)\b.*|\bprices?\s*$"
    r"|[?.!,;:]+)\s*$", re.I)
_ARTICLES = re.compile(r"^(?:(?:a|an|the|any|some|my|that|those|these|new|for|of|on)\s+)+", re.I)
_WATCH_ID = re.compile(r"(?:\bwatch\s*#?\s*|#\s*|\bnumber\s+|^)(?P<id>\d{1,9})\b", re.I)


def _product(message: str) -> str:
    rest = _LEAD.sub("", message.strip(), count=1)
    rest = _TAIL.sub("", rest, count=1)
    return _ARTICLES.sub("", rest.strip()).strip(" \"'“”")


def watch_arguments(tool: str, message: str, cap: float | None) -> dict[str, Any]:
    """The watch tool's arguments; `cap` is the price ceiling the router read."""
    if tool == "list_watches":
        return {}
    if tool == "unwatch":
        rest = _LEAD.sub("", message.strip(), count=1)
        number = _WATCH_ID.search(rest)
        if number:
            return {"watch_id": int(number["id"])}
        query = _product(message)
        return {"query": query} if query else {}
    found: dict[str, Any] = {"query": _product(message)}
    if cap is not None:
        found["max_price"] = cap
    return found
