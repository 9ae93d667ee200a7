"""How the app is launched as an MCP server: its tools, and HTTP Basic auth in front of them.

Gradio's login is a browser form and a cookie, which MCP clients do not speak, and Gradio mounts
its MCP server (/gradio_api/mcp/, streamable HTTP; /gradio_api/mcp/sse for SSE) outside that login:
this middleware asks every request there for the --auth user and password instead.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from collections.abc import Callable
from typing import Any

import gradio as gr
from gradio_client import Client
from gradio_client import utils as client_utils
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MCP_PATH = "/gradio_api/mcp"
MCP_TOOLS = ("estimate_price", "scan_deals", "list_opportunities", "explain_estimate")


class McpBasicAuth:
    def __init__(self, app: ASGIApp, credentials: list[tuple[str, str]],
                 check: Callable[[str, str], bool] | None = None):
        self.app = app
        self.expected = [b"Basic " + base64.b64encode(f"{user}:{password}".encode()) for user, password in credentials]
        self.check = check  # the app's throttled login: wrong passwords here count there too

    def allowed(self, given: bytes) -> bool:
        if self.check is None:
            return any([hmac.compare_digest(given, expected) for expected in self.expected])  # each compared
        if not given.startswith(b"Basic "):  # no credentials (none, Bearer): no login try, no lockout
            return False
        try:
            user, colon, password = base64.b64decode(given.removeprefix(b"Basic "), validate=True).decode().partition(":")
        except ValueError:  # not base64, or not UTF-8: no user and password, so no login try either
            return False
        return bool(colon) and self.check(user, password)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and MCP_PATH in scope["path"]:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not self.allowed(given):
                refused = PlainTextResponse(
                    "DealScout's MCP server needs HTTP Basic auth with the app's --auth user and password.",
                    status_code=401, headers={"WWW-Authenticate": 'Basic realm="DealScout MCP"'})
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


# In JSON text: an escaped backslash (kept: a backslash and "ud800" after it are text), a surrogate
# pair (kept), a lone surrogate.
_ESCAPES = re.compile(rb"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _lone_surrogates_replaced(body: bytes) -> bytes:
    """JSON with each lone surrogate escape ("\\ud800", valid JSON, not valid Unicode) as U+FFFD's
    escape, the same length, so Content-Length stays true."""
    return _ESCAPES.sub(lambda m: m[0] if len(m[0]) != 6 else b"\\ufffd", body)


class McpLoneSurrogates:
    """A lone surrogate in an MCP call (JavaScript's JSON.stringify writes one as "\\ud800") made
    Gradio's MCP layer fail with a codec error before our function ran: the request body is
    cleaned on the way in, as ui/inputs.text_input cleans the app's own inputs."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or MCP_PATH not in scope["path"] or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        read = False

        async def cleaned() -> Message:
            nonlocal read
            if read:
                return await receive()
            chunks = []
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            read = True
            return {"type": "http.request", "body": _lone_surrogates_replaced(b"".join(chunks)), "more_body": False}

        await self.app(scope, cleaned, send)


def serve(demo: gr.Blocks, *, auth: list[tuple[str, str]] | tuple[str, str] | None, mcp: bool,
          login: dict[str, Any] | None = None, **options: Any) -> gr.Blocks:
    """Launch the app without blocking, behind the login (`login`: ui/login.py's throttled one, else
    plain `auth`: one user:password pair or a list of them) and, with `mcp`, as an MCP server behind
    Basic auth. `launch.py app` then blocks on it; the tests do not."""
    if mcp and not auth:
        raise ValueError("the MCP server is reachable by other programs: it needs a user and password")
    auth = [auth] if isinstance(auth, tuple) else auth
    launch = {"auth": auth, **(login or {})}
    middleware = list(launch.pop("app_kwargs", {}).get("middleware", []))
    if mcp:
        check = launch["auth"] if callable(launch["auth"]) else None
        middleware += [Middleware(McpBasicAuth, credentials=auth, check=check), Middleware(McpLoneSurrogates)]
    demo.launch(prevent_thread_lock=True, mcp_server=mcp, app_kwargs={"middleware": middleware}, **launch,
                **options)
    if mcp:
        # Gradio's MCP server runs each tool through a gradio Client of this very app, which the
        # login turns away ("credentials were not provided", gradio 6.31): it gets one that logs in.
        demo.mcp_server_obj._client_instance = Client(
            demo.local_url, auth=auth[0], headers={"x-gradio-user": "mcp"}, download_files=False,
            verbose=False, analytics_enabled=False, _skip_components=False)
        demo.mcp_server_obj.postprocess_output_data = _as_json_text(demo.mcp_server_obj.postprocess_output_data)
    return demo


def _as_json_text(postprocess: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """Gradio's MCP server answers a dict as Python's text of it (str(): single quotes, True, None),
    which an MCP client cannot parse: a tool's dict or list answer goes out as JSON text instead."""
    def answer(data: Any, root_url: str) -> Any:
        return postprocess([json.dumps(out, ensure_ascii=False)
                            if isinstance(out, dict | list) and not client_utils.is_file_obj_with_meta(out)
                            else out for out in data], root_url)
    return answer
