"""Read a product from a URL pasted in the chat, without becoming a proxy into private networks.

A deal already seen is answered from memory. Otherwise the page is fetched under the app's URL
policy (agents/urls.py: http(s), public addresses only, pinned, checked on every redirect).
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import httpx

from agents.feeds import USER_AGENT, FeedFetcher
from agents.memory import Memory
from agents.urls import fetching_client
from models.text import clean_html

MAX_PAGE_BYTES = 2 * 1024 * 1024
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_META = re.compile(r"<meta\s[^>]*(?:name|property)=[\"'](?:og:)?(description|title)[\"'][^>]*>", re.I)
_CONTENT = re.compile(r"content=[\"']([^\"']*)[\"']", re.I)



def page_text(content: bytes) -> str:
    """Title and description of an HTML page (its meta tags first, then its visible text)."""
    page = content.decode("utf-8", errors="replace")
    meta = {}
    for match in _META.finditer(page):
        found = _CONTENT.search(match.group(0))
        if found:
            meta.setdefault(match.group(1).lower(), html.unescape(found.group(1)).strip())
    title = meta.get("title") or (clean_html(m.group(1)) if (m := _TITLE.search(page)) else "")
    body = meta.get("description") or clean_html(page)[:1500]
    return "\n".join(part for part in (title, body) if part).strip()


class PageReader:
    def __init__(self, memory: Memory, *, allow_private: bool = False, timeout_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None):
        client = fetching_client(timeout_s=timeout_s, headers={"User-Agent": USER_AGENT}, max_redirects=3,
                                 allow_private=allow_private, transport=transport)
        self.memory = memory
        self.fetcher = FeedFetcher(timeout_s=timeout_s, attempts=2, max_bytes=MAX_PAGE_BYTES, client=client)

    def __call__(self, url: str) -> str:
        url = url.strip()
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("only http(s) links can be looked up; paste the description instead")
        deal = self.memory.find_deal(url)
        if deal is not None:
            return f"{deal.title}\n{deal.description}"
        fetched = self.fetcher.fetch(url)
        if not fetched.ok:
            raise ValueError(f"could not read that page: {fetched.message}")
        text = page_text(fetched.content)
        if not text:
            raise ValueError("that page has no product text; paste the description instead")
        return text
