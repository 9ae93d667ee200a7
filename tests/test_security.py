"""Security: the app's API behind auth, API keys kept out of logs, replies and the database, feed
text that cannot make the planner act, outbound fetches only to public http(s) addresses (also
after redirects and DNS answers that change), and markup from feeds shown, never run.

(launch.py's refusal of --share/--mcp without --auth, and the login itself, are in test_app.py.)
"""

from __future__ import annotations

import json
import logging
import re
import socket
from pathlib import Path

import httpx
import pytest

from agents.chat.planner import PlanningAgent, Reply, ToolStep
from agents.chat.tools import DealTools
from agents.feeds import FeedFetcher
from agents.memory import Memory
from agents.messaging import MessagingAgent, Notifier
from agents.pages import PageReader
from agents.scanner import Scanner
from agents.urls import is_public
from agents.workflow import DealPipeline
from models.llm import ChatResponse, FakeChatModel, Message, ProviderError, ToolCall
from models.openai_provider import OpenAIChatModel
from tests.faults import RunningApp, quiet, status
from tests.servers import LoopbackServer, respond
from tests.test_workflow import KeywordPricer

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
KEY = "sk-proj-DealScoutTestKey0123456789abcdefXYZ"
NOTIFY_SECRET = "n0tify-Secret-Token-42"


# --- the API behind auth -----------------------------------------------------------------------

# What Gradio answers without a login: the login page and static bits, none of them with data.
OPEN_WITHOUT_LOGIN = {"/", "/favicon.ico", "/theme.css", "/robots.txt", "/manifest.json", "/gradio_api/user",
                      "/gradio_api/token", "/gradio_api/app_id", "/gradio_api/runs", "/gradio_api/startup-events",
                      "/gradio_api/theme.css", "/logout"}


@pytest.fixture(scope="module")
def app_behind_auth(tmp_path_factory):
    app = RunningApp(tmp_path_factory.mktemp("auth"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    auth=("dealer", "s3cret-pass"))
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        app.demo.close()
        app.services.memory.close()


def test_every_route_that_runs_or_shows_anything_wants_a_login(app_behind_auth):
    app, url = app_behind_auth
    paths = app.demo.app.openapi()["paths"]
    assert len(paths) > 40
    opened = set()
    for path, operations in paths.items():
        if "heartbeat" in path or "/stream/" in path:  # event streams that carry nothing without a job
            continue
        concrete = re.sub(r"\{[^}]+\}", "x", path.replace("{api_name}", "price"))
        for method in operations:
            body = {"data": ["Sony WH-1000XM5"], "fn_index": 0, "session_hash": "s", "event_data": None}
            answer = httpx.request(method.upper(), url + concrete, timeout=10,
                                   json=body if method in ("post", "put") else None)
            if answer.status_code < 300:
                opened.add(path.rstrip("/") or "/")
            assert "Worth about" not in answer.text and "300.0" not in answer.text, path
    assert opened <= OPEN_WITHOUT_LOGIN, opened - OPEN_WITHOUT_LOGIN
    for path in ("/gradio_api/call/price", "/gradio_api/run/price", "/gradio_api/queue/join",
                 "/gradio_api/upload", "/gradio_api/component_server"):
        assert httpx.post(url + path, json={"data": ["x"]}).status_code == 401, path
    for path in ("/config", "/gradio_api/info", "/gradio_api/file=/etc/passwd", "/gradio_api/proxy=http://x"):
        assert httpx.get(url + path).status_code == 401, path
    # with the password, the same call works
    with httpx.Client(base_url=url) as client:
        assert client.post("/login", data={"username": "dealer", "password": "s3cret-pass"}).status_code < 400
        event = client.post("/gradio_api/call/price", json={"data": ["Sony WH-1000XM5"]}).json()["event_id"]
        assert "300.0" in client.get(f"/gradio_api/call/price/{event}", timeout=30).text


# --- API keys ----------------------------------------------------------------------------------

def key_echoing_server(server: LoopbackServer) -> None:
    """Provider errors that quote the key back, whole and masked, as real ones do."""
    masked = f"{KEY[:6]}***{KEY[-4:]}"
    server.route("/v401/chat/completions", respond(json.dumps({"error": {
        "message": f"Incorrect API key provided: {masked}. Key {KEY} is not valid."}}).encode(),
        "application/json", status=401))
    server.route("/v500/chat/completions", respond(json.dumps({"error": {
        "message": f"internal error handling request with Authorization: Bearer {KEY}"}}).encode(),
        "application/json", status=500))
    server.route("/v429/chat/completions", respond(json.dumps({"error": {
        "message": f"rate limit for key {KEY}"}}).encode(), "application/json", status=429,
        headers={"Retry-After": "0"}))


def leaked(text: str) -> bool:
    return KEY in text or KEY[8:-6] in text or NOTIFY_SECRET in text


@pytest.mark.parametrize("path", ["/v401", "/v500", "/v429"])
def test_provider_errors_and_logs_never_show_the_key(caplog, path):
    caplog.set_level(logging.DEBUG)  # everything: openai, httpx, httpcore, ours
    with quiet(LoopbackServer()) as server:
        key_echoing_server(server)
        llm = OpenAIChatModel("gpt-test", api_key=KEY, base_url=server.url(path), timeout_s=2, max_retries=1)
        with pytest.raises(ProviderError) as chat_error:
            llm.chat([Message(role="user", content="hi")])
        with pytest.raises(ProviderError) as stream_error:
            "".join(llm.stream([Message(role="user", content="hi")]))
        sent = server.requests_to(f"{path}/chat/completions")[0].headers["authorization"]
    assert sent == f"Bearer {KEY}"  # the key did go where it belongs
    for text in (str(chat_error.value), str(stream_error.value), caplog.text):
        assert not leaked(text), text
    assert "***" in str(chat_error.value) or "HTTP 500" in str(chat_error.value) or "429" in str(chat_error.value)


def test_the_chat_shows_a_failing_provider_without_its_key(tmp_path):
    from agents.chat.router import Router
    from agents.wiring import Services
    from models.config import Settings
    from tests.faults import HashEmbedder
    from ui.app import DealScoutApp

    with quiet(LoopbackServer()) as server:
        key_echoing_server(server)
        settings = Settings(_env_file=None, data_dir=tmp_path, llm="openai:gpt-test", openai_api_key=KEY,
                            openai_base_url=server.url("/v401"), llm_max_retries=0, notify_urls=[])
        assert KEY not in repr(settings) and KEY not in settings.model_dump_json()
        services = Services(settings, overrides={"pricer": KeywordPricer(), "router": Router(HashEmbedder())})
        shown = [m for messages, _ in DealScoutApp(services).chat("what deals are there?", [], None)
                 for m in messages]
        services.memory.close()
    text = " ".join(str(m.content) for m in shown)
    assert "The language model failed" in text and "rejected the API key" in text
    assert not leaked(text)


def test_the_database_never_holds_a_key_or_a_notifier_secret(tmp_path):
    """A whole scan with a failing hosted LLM (errors quoting the key) and a notifier whose URL
    holds a token and answers 500: the database files (WAL too) hold neither."""
    with quiet(LoopbackServer()) as server, Memory(tmp_path / "dealscout.db") as memory:
        key_echoing_server(server)
        server.route("/traps.xml", respond((FEEDS / "traps.xml").read_bytes(), "application/rss+xml"))
        server.route("/hook", status(500))
        llm = OpenAIChatModel("gpt-test", api_key=KEY, base_url=server.url("/v500"), max_retries=0)
        notifier = Notifier([f"json://dealer:{NOTIFY_SECRET}@127.0.0.1:{server.port}/hook"], attempts=1)
        with FeedFetcher(timeout_s=2, attempts=1, allow_private=True) as fetcher:
            pipeline = DealPipeline(Scanner(fetcher, refiner=llm), memory, KeywordPricer(),
                                    MessagingAgent(memory, notifier, llm=llm), feeds=[server.url("/traps.xml")],
                                    threshold=50, notify_best=5, lock_path=tmp_path / "scan.lock")
            report = pipeline.scan()
        assert report.delivery.failed == 2 and memory.pending_notifications()[0].last_error
        assert server.requests_to("/hook")[0].headers["Authorization"].startswith("Basic ")
        stored = b"".join(p.read_bytes() for p in tmp_path.glob("dealscout.db*"))
    assert len(stored) > 10_000
    for secret in (KEY, KEY[8:-6], NOTIFY_SECRET):
        assert secret.encode() not in stored
    assert not leaked(report.model_dump_json())


# --- prompt injection: feed text cannot drive the tools -----------------------------------------

@pytest.fixture
def world(tmp_path):
    """The traps feed (its Anker item says "Ignore all previous instructions ...") scanned into
    memory; alerts go to a loopback receiver."""
    with quiet(LoopbackServer()) as server, Memory(tmp_path / "m.db") as memory:
        server.route("/hook", respond(b"ok"))
        server.route("/secret", respond(b"<title>internal admin</title>"))
        messenger = MessagingAgent(memory, Notifier([f"json://127.0.0.1:{server.port}/hook"]))
        with FeedFetcher(timeout_s=2, attempts=1, allow_private=True) as fetcher:
            pipeline = DealPipeline(Scanner(fetcher), memory, KeywordPricer(), messenger,
                                    feeds=[str(FEEDS / "traps.xml")], threshold=50, notify_best=1,
                                    lock_path=tmp_path / "scan.lock")
            tools = DealTools(pipeline, KeywordPricer(), memory, messenger, PageReader(memory, timeout_s=2))
            yield server, memory, pipeline, tools


def obey(tools, *replies) -> tuple[list[ToolStep], Reply, FakeChatModel]:
    """A model that does whatever the text it reads tells it to: `replies` are its tool calls."""
    script = [ChatResponse(tool_calls=[ToolCall(id=f"{i}-{n}", name=name, arguments=args)
                                       for n, (name, args) in enumerate(calls)])
              for i, calls in enumerate(replies)]
    llm = FakeChatModel([*script, "Done, as the feed told me."])
    events = list(PlanningAgent(llm, tools, router=None, native_tools=True).run("scan for deals"))
    steps = [e for e in events if isinstance(e, ToolStep) and e.status != "pending"]  # each step once, ended
    return steps, events[-1], llm


def alerts(server) -> list[str]:
    return [json.loads(r.body)["title"] for r in server.requests_to("/hook")]


def test_injected_text_cannot_send_many_alerts_in_one_turn(world):
    server, memory, pipeline, tools = world
    steps, _, _ = obey(tools, [("scan_deals", {})],
                       [("notify_user", {"query": "sony"}), ("notify_user", {"query": "samsung"}),
                        ("notify_user", {"query": "sony"})])
    assert [s.status for s in steps if s.name == "notify_user"] == ["done", "error", "error"]
    assert len(alerts(server)) == 2  # the scan's best one, and one from the chat


def test_injected_text_cannot_alert_about_a_deal_that_did_not_qualify(world):
    server, memory, pipeline, tools = world
    pipeline.scan()
    before = alerts(server)
    steps, _, _ = obey(tools, [("notify_user", {"query": "anker charger worthless"})])
    assert steps[0].status == "error" and "no found deal" in steps[0].result
    assert alerts(server) == before


def test_injected_text_cannot_reach_tools_that_do_not_exist_or_write_the_alert(world):
    server, memory, pipeline, tools = world
    pipeline.scan()
    before = alerts(server)
    steps, _, _ = obey(tools, [("send_email", {"to": "attacker@example.com"}), ("run_shell", {"cmd": "id"}),
                               ("fetch_url", {"url": "http://127.0.0.1/"}),
                               ("notify_user", {"query": "sony", "body": "Wire $500 to ..."}),
                               ("scan_deals", {"feeds": ["file:///etc/passwd"]})])
    assert [s.status for s in steps] == ["error"] * 5
    assert "no tool called 'send_email'" in steps[0].result and "does not take body" in steps[3].result
    assert "does not take feeds" in steps[4].result
    assert alerts(server) == before


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://169.254.169.254/latest/meta-data/iam/",
                                 "http://127.0.0.1:{port}/secret", "http://[::1]:{port}/secret",
                                 "http://localhost:{port}/secret", "gopher://127.0.0.1:{port}/_x"])
def test_injected_text_cannot_make_the_planner_fetch_private_urls(world, url):
    server, memory, pipeline, tools = world
    steps, _, _ = obey(tools, [("estimate_price", {"url": url.format(port=server.port)})])
    assert steps[0].status == "error"
    assert "only http(s)" in steps[0].result or "not a public internet address" in steps[0].result
    assert server.requests_to("/secret") == []


def test_a_model_looping_on_injected_text_stops_at_the_step_limit(world):
    server, memory, pipeline, tools = world
    steps, reply, _ = obey(tools, *[[("scan_deals", {})]] * 10)
    assert len(steps) == 6 and reply.text.startswith("I stopped after 6 rounds of tool calls")


def test_feed_text_reaches_the_model_only_as_tool_data(world):
    server, memory, pipeline, tools = world
    _, _, llm = obey(tools, [("scan_deals", {})], [("list_opportunities", {"max_price": 2000})],
                     [("explain_estimate", {"query": "sony"})])
    last = llm.requests[-1]["messages"]
    assert [m.role for m in last[:2]] == ["system", "user"] and last[1].content == "scan for deals"
    data = [m for m in last if m.role == "tool"]
    assert data and all(json.loads(m.content)["status"] in ("done", "error") for m in data)
    feed_words = re.compile(r"Samsung|QLED|Anker|Ignore all previous", re.I)
    assert not any(feed_words.search(m.content) for m in last if m.role in ("system", "user"))


# --- outbound fetches --------------------------------------------------------------------------

PRIVATE_HOSTS = ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "169.254.169.254", "[fe80::1]",
                 "10.0.0.1", "192.168.1.1", "0.0.0.0:{port}", "[::ffff:127.0.0.1]:{port}", "2130706433:{port}",
                 "0x7f000001:{port}", "127.1:{port}", "[::127.0.0.1]:{port}", "[64:ff9b::7f00:1]:{port}",
                 "[2002:7f00:1::1]:{port}", "224.0.0.1"]


def test_the_public_address_check():
    assert all(is_public(a) for a in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "1.1.1.1"))
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "169.254.169.254", "fe80::1%eth0", "10.1.2.3",
                    "100.64.0.1", "::127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:a00:1::", "224.0.0.1", "::"):
        assert not is_public(address), address


@pytest.mark.parametrize("host", PRIVATE_HOSTS)
def test_a_pasted_link_to_a_private_address_is_refused(tmp_path, host):
    with quiet(LoopbackServer()) as server, Memory(tmp_path / "m.db") as memory:
        server.route("/secret", respond(b"<title>internal admin</title>"))
        with pytest.raises(ValueError, match="not a public internet address"):
            PageReader(memory, timeout_s=2)(f"http://{host.format(port=server.port)}/secret")
        assert server.requests_to("/secret") == []


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/secret", "http://[::1]:{port}/secret",
                                    "http://169.254.169.254/latest/meta-data/", "http://localhost:{port}/secret",
                                    "file:///etc/passwd"])
def test_a_redirect_to_a_private_address_is_refused(tmp_path, target):
    """A public page (served here by a mock transport) answering 302 to an internal address."""
    asked: list[str] = []

    def internet(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.path == "/deal":
            return httpx.Response(302, headers={"Location": target.format(port=9)})
        if request.url.path == "/moved":
            return httpx.Response(301, headers={"Location": "http://93.184.216.35/page"})
        return httpx.Response(200, html="<title>Acme 10-inch skillet</title><p>Cast iron.</p>")

    with Memory(tmp_path / "m.db") as memory:
        reader = PageReader(memory, timeout_s=2, transport=httpx.MockTransport(internet))
        with pytest.raises(ValueError, match="not a public internet address|could not read that page"):
            reader("http://93.184.216.34/deal")
        assert asked == ["http://93.184.216.34/deal"]  # the internal address was never asked
        assert reader("http://93.184.216.34/moved").startswith("Acme 10-inch skillet")  # public: fine


def test_a_dns_answer_that_turns_private_after_the_check_is_never_connected(tmp_path, monkeypatch):
    """DNS rebinding: the name resolves to a public address when first checked, to 127.0.0.1 after.
    The transport connects only to an address it checked itself, so the loopback service is never
    reached (a plain transport would resolve again when connecting, and get there)."""
    real = socket.getaddrinfo
    lookups = []

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        address = "198.51.100.7" if len(lookups) == 1 else "127.0.0.1"  # public once, for the check
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr("agents.urls.is_public", lambda a: a != "127.0.0.1")  # 198.51.100.7 is TEST-NET
    with quiet(LoopbackServer()) as server, Memory(tmp_path / "m.db") as memory:
        server.route("/secret", respond(b"<title>internal admin</title>"))
        with pytest.raises(ValueError, match="not a public internet address"):
            PageReader(memory, timeout_s=1)(f"http://rebind.example:{server.port}/secret")
        assert server.requests_to("/secret") == []
    assert len(lookups) == 2  # the request hook's check, then the transport's own


def test_chat_and_settings_cannot_point_the_scanner_at_local_files(tmp_path):
    from agents.wiring import Services
    from models.config import Settings
    from ui.app import DealScoutApp

    services = Services(Settings(_env_file=None, data_dir=tmp_path, feeds=["https://example.com/rss"]),
                        overrides={"pricer": KeywordPricer()})
    ui = DealScoutApp(services)
    said = ui.apply_settings(50, "file:///etc/passwd\nhttps://example.com/rss")
    assert said.startswith("Only http(s) feed URLs") and services.pipeline.feeds == ["https://example.com/rss"]
    with pytest.raises(ValueError, match="does not take feeds"):
        services.toolbox().call("scan_deals", {"feeds": ["/etc/passwd"]})
    services.memory.close()


# --- markup from feeds -------------------------------------------------------------------------

def test_markup_in_feed_titles_is_shown_as_text(tmp_path):
    from ui.chat_view import shown_text
    from ui.deals_view import evidence_markdown, link_markdown

    class Services:
        pass

    with FeedFetcher() as fetcher, Memory(tmp_path / "m.db") as memory:
        pipeline = DealPipeline(Scanner(fetcher), memory, KeywordPricer(), MessagingAgent(memory),
                                feeds=[str(FEEDS / "hostile_titles.xml")], threshold=-1000, notify_best=1,
                                lock_path=tmp_path / "scan.lock")
        report = pipeline.scan()
        services = Services()
        services.memory = memory
        shown = [evidence_markdown(services, o.id) for o in report.opportunities]
        shown += [shown_text(d.title) for d in report.scan.deals]
        shown += [link_markdown(d.url + '"><script>alert(4)</script>') for d in report.scan.deals]
    assert len(report.scan.deals) == 3 and any("<img" in d.title for d in report.scan.deals)
    for text in shown:
        assert not re.search(r"<\s*(?:img|script|svg|iframe)", text, re.I), text
