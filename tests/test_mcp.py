"""The app as an MCP server (`launch.py app --mcp --auth user:pass`): a real `mcp` client over
streamable HTTP on loopback lists the four tools, calls estimate_price, and is refused without
the user and password."""

from __future__ import annotations

import asyncio
import json as jsonlib

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from models.llm import FakeChatModel
from tests.running_app import running_app
from ui.mcp_server import MCP_TOOLS, _lone_surrogates_replaced, serve

USER, PASSWORD = "dealer", "s3cret-pass"


@pytest.fixture(scope="module")
def mcp_url(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("mcp"), ["traps.xml"], FakeChatModel([]),
                     auth=(USER, PASSWORD), mcp=True) as app:
        yield app.url + "gradio_api/mcp/"


async def tools_and_a_call(url: str, auth: httpx.Auth | None) -> tuple[list[str], str]:
    async with httpx.AsyncClient(auth=auth, timeout=60) as http, \
            streamable_http_client(url, http_client=http) as (read, write, _), \
            ClientSession(read, write) as session:
        await session.initialize()
        tools = [tool.name for tool in (await session.list_tools()).tools]
        result = await session.call_tool("estimate_price", {"description": "Anker 737 charger"})
        return tools, "\n".join(part.text for part in result.content if part.type == "text")


class JavaScriptJson(httpx.AsyncClient):
    """An MCP client's HTTP as mcp-remote (JSON.stringify) writes it: a lone surrogate travels as
    the escape \\ud800 (httpx writes raw UTF-8, which cannot carry one)."""

    def build_request(self, method, url, *, json=None, **options):
        if json is not None:
            options["content"] = jsonlib.dumps(json).encode()
            options["headers"] = {**(options.get("headers") or {}), "content-type": "application/json"}
        return super().build_request(method, url, **options)


async def estimate(url: str, description: str) -> tuple[bool, str]:
    async with JavaScriptJson(auth=httpx.BasicAuth(USER, PASSWORD), timeout=60) as http, \
            streamable_http_client(url, http_client=http) as (read, write, _), \
            ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("estimate_price", {"description": description})
        return result.isError, "\n".join(part.text for part in result.content if part.type == "text")


def test_a_lone_surrogate_sent_to_the_mcp_server_is_priced_as_u_fffd(mcp_url):
    failed, answer = asyncio.run(estimate(mcp_url, "Sony \ud800 WH-1000XM5"))
    assert not failed, answer
    assert jsonlib.loads(answer)["value"] == 300.0  # the keyword pricer read "Sony ... WH-1000XM5"


def test_an_mcp_client_lists_the_tools_and_prices_a_product(mcp_url):
    tools, answer = asyncio.run(tools_and_a_call(mcp_url, httpx.BasicAuth(USER, PASSWORD)))
    assert sorted(tools) == sorted(MCP_TOOLS)  # the chat and the tables are no tools
    estimate = jsonlib.loads(answer)  # JSON, not the Python text Gradio's MCP server made of a dict
    assert (estimate["value"], estimate["low"], estimate["high"]) == (120.0, 55.0, 160.0)
    assert estimate["thin"] == "" and isinstance(estimate["evidence"], list)


@pytest.mark.parametrize("auth", [None, httpx.BasicAuth(USER, "wrong")])
def test_an_mcp_client_without_the_password_is_refused(mcp_url, auth):
    answer = httpx.post(mcp_url, auth=auth, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                        headers={"accept": "application/json, text/event-stream"})
    assert answer.status_code == 401 and "Basic auth" in answer.text
    with pytest.raises(Exception) as refused:  # the client gives up: nothing was listed or priced
        asyncio.run(tools_and_a_call(mcp_url, auth))
    assert "401" in repr(refused.value) or "Unauthorized" in repr(refused.value)


def test_an_mcp_server_without_a_password_is_refused():
    with pytest.raises(ValueError, match="needs a user and password"):
        serve(None, auth=None, mcp=True)


@pytest.mark.parametrize(("text", "cleaned"), [
    ("Sony \ud800 X", "Sony \ufffd X"), ("\udc00 low", "\ufffd low"), ("x\ud800\ud800", "x\ufffd\ufffd"),
    ("😀 a pair (escaped as one)", "😀 a pair (escaped as one)"), ("a\\ud800b: a backslash, then text", "a\\ud800b: a backslash, then text"),
    ("\\\ud800", "\\\ufffd"),
])
def test_only_lone_surrogate_escapes_are_replaced(text, cleaned):
    body = jsonlib.dumps({"description": text}).encode()
    assert len(_lone_surrogates_replaced(body)) == len(body)  # Content-Length stays true
    assert jsonlib.loads(_lone_surrogates_replaced(body)) == {"description": cleaned}
