"""A small threaded HTTP server on loopback for tests: per-path handlers, every request recorded.

    with LoopbackServer() as server:
        server.route("/feed.xml", respond(xml_bytes, "application/rss+xml"))
        server.route("/hook", respond(b"ok"))          # e.g. apprise json://127.0.0.1:PORT/hook
        fetch(server.url("/feed.xml"))
        server.requests_to("/hook")                     # what was received, in order
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class LoopbackServer:
    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[Recorded] = []
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                server.requests.append(Recorded(self.command, path, dict(self.headers), body))
                handler = server.routes.get(path, respond(b"not found", status=404))
                # the client may hang up mid-answer, as a size-limited client should
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    handler(self)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def respond(body: bytes, content_type: str = "text/plain", status: int = 200,
            headers: dict[str, str] | None = None) -> Handler:
    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(body)
    return handler


def conditional(body: bytes, etag: str, last_modified: str,
                content_type: str = "application/rss+xml") -> Handler:
    """Answers 304 when the client presents the current ETag or Last-Modified."""
    def handler(req: BaseHTTPRequestHandler) -> None:
        if req.headers.get("If-None-Match") == etag or req.headers.get("If-Modified-Since") == last_modified:
            req.send_response(304)
            req.send_header("ETag", etag)
            req.end_headers()
            return
        respond(body, content_type, headers={"ETag": etag, "Last-Modified": last_modified})(req)
    return handler


class Gate:
    """Holds requests until opened: a server slower than any client timeout however busy the
    machine, where a fixed delay races the client's clock. `open` lets the held ones through and
    waits until they have been answered."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self._held = 0
        self._changed = threading.Condition()

    def hold(self, then: Handler) -> Handler:
        def handler(req: BaseHTTPRequestHandler) -> None:
            with self._changed:
                self._held += 1
            try:
                self.opened.wait()
                then(req)
            finally:
                with self._changed:
                    self._held -= 1
                    self._changed.notify_all()
        return handler

    def open(self, timeout_s: float = 120) -> None:
        self.opened.set()
        with self._changed:
            assert self._changed.wait_for(lambda: self._held == 0, timeout_s), "held requests never finished"


def slow(delay_s: float, then: Handler) -> Handler:
    """Waits before answering (for overlap; for a client timeout, hold the request with a Gate)."""
    def handler(req: BaseHTTPRequestHandler) -> None:
        time.sleep(delay_s)
        then(req)
    return handler


def endless(total: int = 1 << 30, declare_length: bool = True, chunk: int = 64 * 1024) -> Handler:
    """Streams `total` bytes of feed-like filler without holding them; stops when the client leaves.
    Without a declared length the body simply runs until the connection closes."""
    piece = (b"<item><title>filler</title></item>" * (chunk // 34 + 1))[:chunk]

    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "application/rss+xml")
        if declare_length:
            req.send_header("Content-Length", str(total))
        else:
            req.send_header("Connection", "close")
            req.close_connection = True
        req.end_headers()
        req.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
        sent = 0
        while sent < total:
            req.wfile.write(piece)
            sent += len(piece)
    return handler
