"""Read a product from a URL pasted in the chat, without becoming a proxy into private networks.

A deal already seen is answered from memory. Otherwise only http(s) URLs whose host resolves to
public addresses are fetched, checked again on every redirect (an httpx request hook), and the
connection goes to the very address that was checked (the transport pins it), so a DNS answer
that changes between the check and the connection (rebinding) cannot reach a private network.
"""

from __future__ import annotations

import html
import ipaddress
import re
import socket
from urllib.parse import urlsplit

import httpx

from agents.feeds import USER_AGENT, FeedFetcher
from agents.memory import Memory
from models.text import clean_html

MAX_PAGE_BYTES = 2 * 1024 * 1024
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_META = re.compile(r"<meta\s[^>]*(?:name|property)=[\"'](?:og:)?(description|title)[\"'][^>]*>", re.I)
_CONTENT = re.compile(r"content=[\"']([^\"']*)[\"']", re.I)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public(address: str) -> bool:
    """A global unicast address, also when an IPv6 address carries an IPv4 one (mapped,
    compatible, 6to4, Teredo, NAT64) that is not."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and (int(ip) >> 32 == 0 or ip in _NAT64):  # ::a.b.c.d, 64:ff9b::a.b.c.d
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None and not (inner.is_global and not inner.is_multicast):
            return False
    return ip.is_global and not ip.is_multicast


def public_addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, or ValueError when it does not resolve or any is private."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as err:
        raise ValueError(f"cannot resolve {host}") from err
    addresses = [sockaddr[0] for *_, sockaddr in infos]
    if not addresses or not all(is_public(a) for a in addresses):
        raise ValueError(f"refusing to fetch {host}: it is not a public internet address")
    return addresses


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def require_public(request: httpx.Request) -> None:
    if request.url.scheme not in ("http", "https"):  # a redirect to file://, gopher://, ...
        raise ValueError(f"refusing to fetch a {request.url.scheme}:// address")
    public_addresses(request.url.host, _port(request.url))


class PinnedTransport(httpx.HTTPTransport):
    """Connects to the public address it checked, not to whatever DNS says a moment later;
    the Host header and TLS (SNI, certificate) still use the name."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        address = public_addresses(request.url.host, _port(request.url))[0]
        pinned = httpx.Request(request.method, request.url.copy_with(host=address), headers=request.headers,
                               stream=request.stream,
                               extensions={**request.extensions, "sni_hostname": request.url.host})
        return super().handle_request(pinned)


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
        hooks = {} if allow_private else {"request": [require_public]}
        if transport is None and not allow_private:
            transport = PinnedTransport()
        client = httpx.Client(timeout=timeout_s, follow_redirects=True, max_redirects=3, transport=transport,
                              headers={"User-Agent": USER_AGENT}, event_hooks=hooks)
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
