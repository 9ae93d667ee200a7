"""Replays recorded LLM provider exchanges (tests/recordings/<provider>/*.json) on loopback.

A recording is {"about", "note", "exchanges": [{"request": {"method", "path"}, "response": {...}}]};
a response has "status", "headers", an optional "delay_s" (such a response is held until the
replay ends: slower than any client timeout, however busy the machine), and one body: "json" (a JSON document),
"sse" (server-sent events: [{"event"?, "data": object or string}]) or "ndjson" (one object a line).
Requests to a path get that path's recorded responses in order; every request is kept, so a test
can check what the adapter put on the wire.

    with replay("openai/forced_tool.json") as wire:
        model = OpenAIChatModel("gpt-4o-mini", api_key="sk-test", base_url=wire.url("/v1"))
        ...
        wire.sent("/v1/chat/completions")[0]["tool_choice"]
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from servers import LoopbackServer

RECORDINGS = Path(__file__).parent / "recordings"


def load(name: str) -> dict[str, Any]:
    return json.loads((RECORDINGS / name).read_text())


def wire_body(response: dict[str, Any]) -> bytes:
    """The response body as the provider puts it on the wire."""
    if "sse" in response:
        frames = []
        for event in response["sse"]:
            data = event["data"] if isinstance(event["data"], str) else json.dumps(event["data"])
            head = f"event: {event['event']}\n" if "event" in event else ""
            frames.append(f"{head}data: {data}\n\n")
        return "".join(frames).encode()
    if "ndjson" in response:
        return "".join(json.dumps(line) + "\n" for line in response["ndjson"]).encode()
    return json.dumps(response["json"]).encode()


class Replay:
    def __init__(self, server: LoopbackServer, recordings: list[dict[str, Any]]):
        self.server = server
        self.pending: dict[str, deque[dict[str, Any]]] = {}
        self.released = threading.Event()
        for recording in recordings:
            for exchange in recording["exchanges"]:
                self.pending.setdefault(exchange["request"]["path"], deque()).append(exchange)
        for path in self.pending:
            server.route(path, self._handler(path))

    def _handler(self, path: str):
        def handler(req: BaseHTTPRequestHandler) -> None:
            queue = self.pending[path]
            if not queue:
                body = b'{"error": "the recording has no response left for this request"}'
                response = {"status": 599, "headers": {"content-type": "application/json"}}
            else:
                exchange = queue.popleft()
                assert req.command == exchange["request"]["method"], (req.command, exchange["request"])
                response = exchange["response"]
                body = wire_body(response)
            if response.get("delay_s"):
                # "slower than the client's timeout": held until the replay ends, not a fixed sleep
                # that a busy machine could let the answer win
                self.released.wait()
            req.send_response(response["status"])
            for name, value in response["headers"].items():
                req.send_header(name, value)
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body)

        return handler

    def url(self, path: str = "") -> str:
        return self.server.url(path)

    def sent(self, path: str) -> list[dict[str, Any]]:
        """The JSON bodies the client sent to `path`, in order."""
        return [json.loads(r.body) if r.body else {} for r in self.server.requests_to(path)]

    def headers(self, path: str) -> list[dict[str, str]]:
        return [{k.lower(): v for k, v in r.headers.items()} for r in self.server.requests_to(path)]

    @property
    def unused(self) -> int:
        return sum(len(queue) for queue in self.pending.values())


@contextmanager
def replay(*names: str) -> Iterator[Replay]:
    with LoopbackServer() as server:
        replayed = Replay(server, [load(name) for name in names])
        try:
            yield replayed
        finally:
            replayed.released.set()
