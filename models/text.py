"""Plain text out of free text: HTML to text, and the numbers written in it.

The one home for "the text of this HTML" (feeds, pasted pages, pasted descriptions) and "the number
in this text" (a model's answer, "about $1,299.99"); a feed's *deal* price, which needs the dollar
sign and its context ("was $99", "save $20"), is read by agents/deal_text.extract_price instead.
A leaf: it imports nothing of ours.
"""

from __future__ import annotations

import html
import math
import re
from html.parser import HTMLParser

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")  # "$" and words around it are no part of the number


def numbers_in(text: str) -> list[float]:
    """Every number written in the text, in order ("1,299.99" -> 1299.99)."""
    return [float(n.replace(",", "")) for n in _NUMBER.findall(text or "")]


def first_amount(text: str) -> float | None:
    """The first number in a free-text answer, when it can be a price ("about $45" -> 45.0);
    None when there is none, or it is zero or too large to be finite."""
    match = _NUMBER.search(text or "")
    if not match:
        return None
    value = float(match.group().replace(",", ""))
    return value if math.isfinite(value) and value > 0 else None


_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^<>]*>")
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]{2,8});")
_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article",
               "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "dd", "dt"}
_SKIP_TAGS = {"script", "style", "noscript", "template"}


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


# A "<" that closes no tag within 500 characters is text. Python's HTMLParser rescans an unclosed
# tag start for every chunk it is given, which took minutes on 200k characters of "<a <a <a".
_UNCLOSED = re.compile(r"<(?![^<>]{0,500}>)")


def _strip_once(text: str) -> str:
    collector = _TextCollector()
    collector.feed(_UNCLOSED.sub("&lt;", text))
    collector.close()
    return "".join(collector.parts)


def clean_html(raw: str) -> str:
    """Plain text from HTML, also when the HTML arrives escaped once or twice (`&lt;p&gt;`).

    Lines are kept (one per block element), spaces inside a line collapsed.
    """
    text = raw or ""
    for _ in range(3):
        text = _strip_once(text)
        if not (_TAG.search(text) or _ENTITY.search(text)):
            break
    text = html.unescape(text) if _ENTITY.search(text) else text
    lines = (" ".join(line.split()) for line in text.replace("\xa0", " ").splitlines())
    return "\n".join(line for line in lines if line)
