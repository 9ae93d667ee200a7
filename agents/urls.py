"""The one URL policy for everything the app fetches over the network: pasted links, feeds from
the environment, the command line and the Deals tab.

Only http(s) URLs whose host resolves to public addresses are fetched, checked again on every
redirect (an httpx request hook), and the connection goes to the very address that was checked
(the transport pins it), so a DNS answer that changes between the check and the connection
(rebinding) cannot reach a private network. Loopback and private addresses are fetched only when
a caller says so explicitly (`allow_private`: DEALSCOUT_ALLOW_PRIVATE_FEEDS for feeds served on
this machine or a LAN, and tests).
"""

from __future__ import annotations

import ipaddress
import socket

import httpx

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


def require_http(request: httpx.Request) -> None:
    if request.url.scheme not in ("http", "https"):  # a redirect to file://, gopher://, ...
        raise ValueError(f"refusing to fetch a {request.url.scheme}:// address")


def require_public(request: httpx.Request) -> None:
    require_http(request)
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


def fetching_client(*, timeout_s: float, headers: dict[str, str], allow_private: bool = False,
                    max_redirects: int = 5, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An httpx client that follows the policy: every request and redirect checked, connections pinned."""
    hooks = {"request": [require_http if allow_private else require_public]}
    if transport is None and not allow_private:
        transport = PinnedTransport()
    return httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=True, max_redirects=max_redirects,
                        transport=transport, headers=headers, event_hooks=hooks)
