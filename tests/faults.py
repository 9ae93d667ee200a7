"""Faults on demand, for the reliability tests and benchmarks/reliability.py.

1. Handlers for tests/servers.LoopbackServer that misbehave: a delay, a dropped connection, 429 or
   500, a body cut short, each for every request or only the first few:

       server.route("/feed.xml", fault("reset", respond(feed_bytes), times=1))  # one reset, then ok

2. An OpenAI-compatible /chat/completions endpoint (`chat_completion`) to put those faults in
   front of models/openai_provider.py.

3. Crash workers that the tests kill with SIGKILL at random points, and the trials that count
   what a restart lost or repeated:

       python -m tests.faults scan-worker DATA_DIR FEED OUTBOX   # DealPipeline.scan, fake pricer
       python -m tests.faults store-worker CHROMA_DIR N          # VectorStore.build, fake embedder

   (kill -9 during alert delivery against receivers that do not dedupe: tests/delivery_crash.py)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np

from tests.servers import Gate, Handler, LoopbackServer, respond

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ("delay", "reset", "429", "500", "truncated", "garbled")


# --- misbehaving handlers ---------------------------------------------------------------------

def quiet(server: LoopbackServer) -> LoopbackServer:
    """No tracebacks on stderr when a client drops a kept-alive connection (which faults do)."""
    server._httpd.handle_error = lambda request, address: None
    return server


def reset() -> Handler:
    """Reads the request, then drops the connection without a word (RST, not a clean close)."""
    def handler(req: BaseHTTPRequestHandler) -> None:
        req.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        req.close_connection = True
    return handler


def status(code: int, retry_after: float | None = None) -> Handler:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    body = json.dumps({"error": {"message": f"fault injected: HTTP {code}"}}).encode()
    return respond(body, "application/json", status=code, headers=headers)


def truncated(body: bytes, content_type: str = "application/octet-stream", keep: float = 0.5) -> Handler:
    """Declares the whole body's length, sends a part of it, and hangs up."""
    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        req.send_header("Connection", "close")
        req.end_headers()
        req.wfile.write(body[:int(len(body) * keep)])
        req.close_connection = True
    return handler


def fault(kind: str, good: Handler, *, times: int | None = None, gate: Gate | None = None,
          good_body: bytes = b"{}", content_type: str = "application/json",
          processed: Handler | None = None) -> Handler:
    """`kind` from FAULTS for the first `times` requests (every request when None), then `good`.
    "truncated" and "garbled" cut `good_body` (what `good` would send): the first declares the
    whole length and hangs up, the second declares the length of what it sends (a 200 whose
    body is simply broken). `processed` runs where the server did act on the request before
    the answer went wrong (truncated, garbled; a delayed request runs `good` itself). "delay"
    holds each request at `gate` until the caller opens it, after the client has given up."""
    def after_processing(answer: Handler) -> Handler:
        def handler(req: BaseHTTPRequestHandler) -> None:
            if processed:
                processed(req)
            answer(req)
        return handler

    half = good_body[:len(good_body) // 2]
    broken = {"delay": lambda: (gate or Gate()).hold(good), "reset": reset, "429": lambda: status(429, 0),
              "500": lambda: status(500),
              "truncated": lambda: after_processing(truncated(good_body, content_type)),
              "garbled": lambda: after_processing(respond(half, content_type))}[kind]()
    if times is None:
        return broken
    seen = Counter()
    lock = threading.Lock()

    def handler(req: BaseHTTPRequestHandler) -> None:
        with lock:
            seen["n"] += 1
            n = seen["n"]
        (broken if n <= times else good)(req)
    return handler


# --- an OpenAI-compatible endpoint --------------------------------------------------------------

def completion_body(content: str = "", tool_arguments: dict | None = None) -> bytes:
    message: dict = {"role": "assistant", "content": content}
    if tool_arguments is not None:
        message["tool_calls"] = [{"id": "call_1", "type": "function",
                                  "function": {"name": "answer", "arguments": json.dumps(tool_arguments)}}]
    return json.dumps({"id": "chatcmpl-fault", "object": "chat.completion", "created": 0, "model": "fake",
                       "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}).encode()


def chat_completion(content: str = "", tool_arguments: dict | None = None) -> Handler:
    return respond(completion_body(content, tool_arguments), "application/json")


REFINED = "Refined by the model:"
WORDING = "A solid pick that is well worth a look."


def scan_answer(request_body: bytes) -> bytes:
    """What a model answers the scan's two structured calls: the scanner's RefinedDescription
    (the listing's title, without prices, after REFINED) and the messenger's AlertWording."""
    messages = json.loads(request_body)["messages"]
    listing = re.search(r"<listing>(.*)</listing>", messages[-1]["content"], re.S)
    if not listing:
        return completion_body(tool_arguments={"sentence": WORDING})
    title = re.sub(r"(?:US)?\$\s?[\d,.]+", "", json.loads(listing.group(1))["title"])
    return completion_body(tool_arguments={"description": f"{REFINED} {' '.join(title.split())}"})


def scan_llm(server: LoopbackServer, path: str = "/v1/chat/completions") -> Handler:
    """The endpoint for a scan's calls, which come one at a time: the request being answered is
    the last one the server recorded."""
    def handler(req: BaseHTTPRequestHandler) -> None:
        respond(scan_answer(server.requests_to(path)[-1].body), "application/json")(req)
    return handler


# --- a whole scan under one fault ---------------------------------------------------------------

TARGETS = ("feed", "notifier", "llm")
FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
# What a user reads for each fault, in the feed outcome (the notifier's and the LLM's reasons
# go to DeliveryReport.errors and the log).
FEED_MESSAGES = {"delay": "timed out", "reset": "broke off the connection (Server disconnected",
                 "429": "HTTP 429 Too Many Requests", "500": "HTTP 500 Internal Server Error",
                 "truncated": "broke off the connection (peer closed connection without sending complete"}


@dataclass
class FaultRun:
    target: str
    kind: str
    transient: bool
    seconds: float = 0.0
    outcome: str = ""  # the scan's summary, as the user sees it
    reasons: list[str] = field(default_factory=list)  # what the user is told about the fault
    wire_repeats: int = 0  # alerts the receiver got more than once (same key, so shown once)
    problems: list[str] = field(default_factory=list)  # empty: survived with a clear outcome

    @property
    def survived(self) -> bool:
        return not self.problems


class _Warnings:
    """Collects what the agents log at WARNING or above while a scan runs."""

    def __init__(self) -> None:
        import logging

        self.lines: list[str] = []
        self.handler = logging.Handler(logging.WARNING)
        self.handler.emit = lambda record: self.lines.append(record.getMessage())
        self.logger = logging.getLogger("dealscout")

    def __enter__(self) -> _Warnings:
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)


def scan_under_fault(folder: Path, target: str, kind: str, *, transient: bool = False) -> FaultRun:
    """One DealPipeline.scan with `kind` injected in front of the feed, the notifier (apprise
    json://) or the LLM (models/openai_provider.py via base_url): every request when persistent,
    the first one when transient. Then the fault clears and a second scan runs. The run
    survived when no exception escaped, the user was told what failed and why (or a transient
    fault was retried away), and after the recovery scan nothing was lost and no alert reached
    the receiver under two keys."""
    from agents.feeds import FeedFetcher
    from agents.memory import Memory
    from agents.messaging import MessagingAgent, Notifier
    from agents.scanner import Scanner
    from agents.workflow import DealPipeline
    from models.openai_provider import OpenAIChatModel
    from tests.test_workflow import KeywordPricer

    run = FaultRun(target, kind, transient)
    names = ["atom.xml"] if target == "llm" else ["traps.xml", "atom.xml"]  # fewer LLM calls
    expected_deals, expected_alerts = (1, 1) if target == "llm" else (4, 3)
    faulty = {"feed": "/traps.xml", "notifier": "/hook", "llm": "/v1/chat/completions"}[target]
    feed = (FIXTURES / "traps.xml").read_bytes()
    body = {"/traps.xml": feed, "/hook": b"ok" * 64,
            "/v1/chat/completions": completion_body(tool_arguments={"sentence": WORDING})}[faulty]
    arrived: list[str] = []  # the Idempotency-Key of every alert the receiver acted on

    def receiver(req: BaseHTTPRequestHandler) -> None:
        arrived.append(req.headers.get("Idempotency-Key") or "")

    def hook(req: BaseHTTPRequestHandler) -> None:
        receiver(req)
        respond(b"ok")(req)

    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    with quiet(LoopbackServer()) as server, Memory(folder / "dealscout.db") as memory, \
            _Warnings() as warned:
        good = {"/traps.xml": respond(feed, "application/rss+xml"),
                "/atom.xml": respond((FIXTURES / "atom.xml").read_bytes(), "application/atom+xml"),
                "/hook": hook, "/v1/chat/completions": scan_llm(server)}
        for path, handler in good.items():
            server.route(path, handler)
        gate = Gate()
        server.route(faulty, fault(kind, good[faulty], times=1 if transient else None, gate=gate,
                                   good_body=body, processed=receiver if target == "notifier" else None))
        llm = OpenAIChatModel("fake", api_key="sk-fault-test-0123456789abcdef", base_url=server.url("/v1"),
                              timeout_s=0.5, max_retries=1)
        notifier = Notifier([f"json://127.0.0.1:{server.port}/hook?cto=0.5&rto=0.5"], attempts=2,
                            backoff_s=0.01)
        with FeedFetcher(timeout_s=0.5, attempts=2, backoff_s=0.01, validators=memory,
                         allow_private=True) as fetcher:
            pipeline = DealPipeline(Scanner(fetcher, refiner=llm), memory, KeywordPricer(),
                                    MessagingAgent(memory, notifier, llm=llm),
                                    feeds=[server.url(f"/{n}") for n in names], threshold=50,
                                    notify_best=10, lock_path=folder / "scan.lock")
            try:
                first = pipeline.scan()
                run.outcome = first.summary()
                server.route(faulty, good[faulty])  # the fault clears
                pipeline.scan()
            except Exception as err:  # the very thing this checks for
                run.problems.append(f"a scan raised {type(err).__name__}: {err}")
                return run
            finally:
                gate.open()  # held requests go through now: a late receiver still acts on them
        notes = memory.inbox(limit=100)
        deals = memory.counts()["deals"]
        mouse = memory.find_deal("https://example.com/atom/mx-master-3s")
        refined = bool(mouse and mouse.description.startswith(REFINED))
    run.seconds = time.perf_counter() - started
    failed_feeds = [f for f in first.scan.feeds if f.status == "failed"]
    delivery = first.delivery
    if transient and kind != "garbled":  # retried: the user should not notice
        if failed_feeds or (delivery and delivery.failed) or (target == "llm" and not refined):
            run.problems.append(f"a fault on the first try was not retried away: {run.outcome}")
    elif target == "feed" and kind == "garbled":  # a 200 with half a feed: read what is whole
        run.reasons = [f"{s.title}: {s.reason}" for s in first.scan.skipped if s.code == "cut_off"]
        if failed_feeds or not run.reasons:
            run.problems.append(f"a feed cut short was not reported: {run.outcome}")
    elif target == "feed":
        run.reasons = [f.message for f in failed_feeds]
        if not (failed_feeds and FEED_MESSAGES[kind] in failed_feeds[0].message):
            run.problems.append(f"feed failure not explained: {[f.line() for f in first.scan.feeds]}")
    elif target == "notifier" and kind == "garbled":  # apprise reads the status only
        if not delivery or delivery.delivered != expected_alerts:
            run.problems.append(f"a 200 with a broken body was not taken as delivered: {delivery}")
    elif target == "notifier":
        run.reasons = delivery.errors if delivery else []
        if not (delivery and delivery.failed == expected_alerts and all(run.reasons)):
            run.problems.append(f"delivery failure not reported: {delivery}")
    else:  # the LLM: the scan goes on with the feed's own description and the plain alert text
        run.reasons = [line for line in warned.lines if "openai:fake" in line]
        if not run.reasons or refined:
            run.problems.append(f"the LLM failure was not logged, or its output used: {warned.lines}")
    # nothing lost, nothing shown twice, nothing leaked
    if deals != expected_deals:
        run.problems.append(f"{deals} deals recorded, expected {expected_deals}")
    if len(notes) != expected_alerts or any(n.status != "delivered" for n in notes):
        run.problems.append(f"alerts after recovery: {[(n.title, n.status) for n in notes]}")
    if set(arrived) != {n.delivery_key for n in notes}:
        run.problems.append("the receiver got alerts without their keys, or under other keys")
    run.wire_repeats = len(arrived) - len(set(arrived))
    if any("sk-fault-test" in text for text in [run.outcome, *run.reasons, *warned.lines]):
        run.problems.append("the API key leaked into a message")
    if any("Traceback" in text for text in [run.outcome, *run.reasons]):
        run.problems.append("a traceback reached the user")
    return run


def chat_under_fault(kind: str) -> FaultRun:
    """One chat turn of the planning agent on a hosted model (the OpenAI adapter) whose endpoint
    fails with `kind`: the router answers instead, and the reply names the failure, without the key."""
    from types import SimpleNamespace

    from agents.chat.planner import PlanningAgent, Reply
    from models.openai_provider import OpenAIChatModel

    class NoTools:
        def tools(self) -> list:
            return []

        def call(self, name: str, arguments: dict):
            raise AssertionError("no tool may run")

    run = FaultRun("chat", kind, transient=False)
    started = time.perf_counter()
    with quiet(LoopbackServer()) as server:
        gate = Gate()
        server.route("/v1/chat/completions", fault(kind, chat_completion("Hi"), gate=gate,
                                                   good_body=completion_body("Hi")))
        llm = OpenAIChatModel("fake", api_key="sk-chat-fault-0123456789abcdef", base_url=server.url("/v1"),
                              timeout_s=0.5, max_retries=1)
        try:
            small_talk = SimpleNamespace(route=lambda message: SimpleNamespace(tool=None, arguments={}, refusal=None))
            events = list(PlanningAgent(llm, NoTools(), router=small_talk, native_tools=True).run("hello"))
        except Exception as err:
            run.problems.append(f"the chat raised {type(err).__name__}: {err}")
            return run
        finally:
            gate.open()
    run.seconds = time.perf_counter() - started
    reply = events[-1]
    run.outcome = reply.text if isinstance(reply, Reply) else repr(reply)
    run.reasons = [run.outcome]
    if not (len(events) == 1 and run.outcome.startswith("(The language model failed: openai:fake")):
        run.problems.append(f"the reply does not say the model failed: {run.outcome!r}")
    if "sk-chat-fault" in run.outcome or "Traceback" in run.outcome:
        run.problems.append("the reply leaks the key or a traceback")
    return run


# --- fakes for the crash workers ----------------------------------------------------------------

class HashEmbedder:
    """Deterministic unit vectors from a text's hash: a vector store without loading a model."""

    dim = 16
    key = "sha256-hash-16"  # what a vector store records as the embedding that built it

    def embed(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32)


class SteadyPricer:
    """Even-numbered widgets are worth $80 over their price (an opportunity), odd ones $5."""

    name = "ensemble"

    def __init__(self, pause_s: float = 0.0, on_estimate=None):
        self.pause_s, self.on_estimate = pause_s, on_estimate

    def estimate(self, description: str):
        from models.types import Estimate

        n = int(re.search(r"Widget model (\d+)", description).group(1))
        price = 10.0 + n
        if self.on_estimate:
            self.on_estimate()
        time.sleep(self.pause_s)
        return Estimate(agent=self.name, value=price + (80 if n % 2 == 0 else 5))

    def estimate_batch(self, descriptions):
        return [self.estimate(d) for d in descriptions]


class KeyedOutbox:
    """A receiver that got the message: appends it to a file (fsynced) and shows each
    idempotency key once, as a receiver honouring keys does. Every arrival, repeats included,
    also goes to `<outbox>.wire`, so repeats on the wire are counted too."""

    def __init__(self, path: Path, on_send=None, pause_s: float = 0.0):
        self.path, self.wire = path, path.with_suffix(".wire")
        self.on_send, self.pause_s = on_send, pause_s

    @staticmethod
    def _append(path: Path, line: str) -> None:
        with path.open("a") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())

    def send(self, title: str, body: str, key: str = "") -> str:
        line = f"{key or '-'} {body.splitlines()[-1]}"
        self._append(self.wire, line)
        shown = self.path.read_text().splitlines() if self.path.exists() else []
        if not key or all(known.split(" ", 1)[0] != key for known in shown):
            self._append(self.path, line)
        if self.on_send:
            self.on_send()
        time.sleep(self.pause_s)
        return "outbox"


def write_feed(path: Path, n: int) -> None:
    items = "".join(
        f"<item><title>Widget model {i} for ${10 + i}</title><link>https://example.com/w/{i}</link>"
        f"<guid>w-{i}</guid><description>Widget number {i}.</description></item>" for i in range(n))
    path.write_text(f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>')


def store_items(n: int):
    from models.types import Item

    return [Item(title=f"Catalogue item {i}", category="Tools", price=1.0 + i,
                 text=f"Catalogue item {i}: a tool with {i} parts, sturdy and useful.") for i in range(n)]


STEPWISE = "DEALSCOUT_TEST_STEPWISE"  # a worker started with it waits at each phase for a line on stdin


def _phase(name: str) -> None:
    """Say where the worker is; a stepwise worker then waits for the parent to say go on (or to kill
    it right there), so where a kill lands does not depend on how busy the machine is."""
    print(name, flush=True)
    if os.environ.get(STEPWISE):
        sys.stdin.readline()


def scan_worker(data_dir: Path, feed: Path, outbox: Path) -> None:
    """One DealPipeline.scan as the app and the schedule run it, with a fake pricer and outbox."""
    from agents.feeds import FeedFetcher
    from agents.memory import Memory
    from agents.messaging import MessagingAgent
    from agents.scanner import Scanner
    from agents.watchlist import Watchlist
    from agents.workflow import DealPipeline

    memory = Memory(data_dir / "dealscout.db")
    pricer = SteadyPricer(pause_s=0.004, on_estimate=lambda: _phase("pricing"))
    messenger = MessagingAgent(memory, KeyedOutbox(outbox, on_send=lambda: _phase("sent"), pause_s=0.004))
    with FeedFetcher() as fetcher:
        pipeline = DealPipeline(Scanner(fetcher), memory, pricer, messenger, feeds=[str(feed)],
                                threshold=50, notify_best=10_000, lock_path=data_dir / "scan.lock",
                                watchlist=Watchlist(memory))
        _phase("ready")
        report = pipeline.scan()
    _phase(f"done {report.delivery.resumed if report.delivery else 0}")


def store_worker(chroma_dir: Path, n: int) -> None:
    from vectorstore.store import VectorStore

    store = VectorStore.open(HashEmbedder(), chroma_dir=chroma_dir)
    _phase("ready")
    store.build(store_items(n), batch_size=8, progress=False, on_batch=lambda done: _phase("batch"))
    _phase("done")


# --- crash trials -------------------------------------------------------------------------------

@dataclass
class Trial:
    kills: int = 0
    killed_in: list[str] = field(default_factory=list)  # the phase each kill interrupted
    lost: int = 0  # deals not recorded and priced, alerts never shown; catalogue items missing
    duplicated: int = 0  # alerts shown twice; items stored twice
    wire_repeats: int = 0  # deliveries sent again after a kill (same key: dropped by the receiver)
    errors: list[str] = field(default_factory=list)  # a restart that failed, with why


def _run_until_killed(command: list[str], rng: random.Random, phases_total: int) -> str | None:
    """Start a stepwise worker and kill it with SIGKILL as it reaches a random one of its phase
    lines; returns that phase, or None when the worker finished first."""
    worker = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env={**os.environ, STEPWISE: "1"})
    target, last = rng.randrange(phases_total), "start"
    for seen, line in enumerate(worker.stdout):
        last = line.split()[0] if line.strip() else last
        if last == "done":
            break
        if seen >= target:
            worker.send_signal(signal.SIGKILL)  # it waits at this phase: the kill lands there
            worker.wait(timeout=60)
            return last
        worker.stdin.write("\n")
        worker.stdin.flush()
    worker.stdin.close()
    worker.wait(timeout=60)
    return None


def _finish(command: list[str], trial: Trial) -> bool:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        trial.errors.append((done.stderr.strip().splitlines() or ["no output"])[-1][:300])
    return done.returncode == 0


# Watched widgets: two match a deal (one an opportunity, one not), one is over its ceiling.
WATCHES = (("Widget model 3", None), ("Widget model 6", None), ("Widget model 9", 5.0))


def scan_crash_trial(folder: Path, rng: random.Random, *, deals: int = 24, kills: int = 2) -> Trial:
    """Kill scans (with watches) `kills` times at random points, restart to the end, rescan;
    count the alerts and watch alerts lost or shown twice."""
    from agents.memory import Memory, delivery_key
    from agents.watchlist import Watchlist

    folder.mkdir(parents=True, exist_ok=True)
    feed, outbox = folder / "feed.xml", folder / "outbox.txt"
    write_feed(feed, deals)
    with Memory(folder / "dealscout.db") as memory:
        watches = [Watchlist(memory).add("", query, cap) for query, cap in WATCHES]
    watched = [f"watch-{w.id}:w-{w.query.split()[-1]}" for w in watches if w.max_price is None]
    command = [sys.executable, "-m", "tests.faults", "scan-worker", str(folder), str(feed), str(outbox)]
    phases_total = 1 + deals + deals // 2 + len(watched)  # ready, per deal priced, per alert sent
    trial = Trial()
    for _ in range(kills):
        phase = _run_until_killed(command, rng, phases_total)
        if phase is not None:
            trial.kills += 1
            trial.killed_in.append(phase)
    if not (_finish(command, trial) and _finish(command, trial)):  # the restart, then a rescan
        return trial
    with Memory(folder / "dealscout.db") as memory:
        stored = memory._rows("SELECT key, state FROM deals")
        priced = memory._rows("SELECT deal_key, COUNT(*) AS n FROM estimates GROUP BY deal_key")
        pending = memory.pending_notifications()
    expected = {f"{delivery_key(f'w-{i}')} https://example.com/w/{i}" for i in range(0, deals, 2)}
    expected |= {f"{delivery_key(key)} https://example.com/w/{key.rsplit('-', 1)[1]}" for key in watched}
    shown = outbox.read_text().splitlines() if outbox.exists() else []
    wire = outbox.with_suffix(".wire").read_text().splitlines() if outbox.with_suffix(".wire").exists() else []
    unpriced = deals - sum(1 for row in stored if row["state"] == "assessed")
    trial.lost = unpriced + len(expected - set(shown)) + len(pending)
    trial.duplicated = (len(shown) - len(set(shown)) + len(set(shown) - expected)
                        + sum(row["n"] - 1 for row in priced))
    trial.wire_repeats = len(wire) - len(set(wire))
    return trial


def store_crash_trial(folder: Path, rng: random.Random, *, items: int = 96, kills: int = 2) -> Trial:
    """Kill a vector-store build `kills` times at random points, restart it to the end; count
    items missing or stored twice, and check the store still answers a query."""
    command = [sys.executable, "-m", "tests.faults", "store-worker", str(folder), str(items)]
    trial = Trial()
    for _ in range(kills):
        phase = _run_until_killed(command, rng, 1 + -(-items // 8))
        if phase is not None:
            trial.kills += 1
            trial.killed_in.append(phase)
    if not _finish(command, trial):
        return trial
    check = subprocess.run([sys.executable, "-m", "tests.faults", "store-check", str(folder), str(items)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    if check.returncode != 0:
        trial.errors.append((check.stderr.strip().splitlines() or ["no output"])[-1][:300])
        return trial
    found = json.loads(check.stdout.strip().splitlines()[-1])
    trial.lost, trial.duplicated = found["missing"], found["extra"]
    return trial


def store_check(chroma_dir: Path, n: int) -> None:
    from vectorstore.store import VectorStore, item_id

    store = VectorStore.open(HashEmbedder(), chroma_dir=chroma_dir)
    items = store_items(n)
    present = store.present([item_id(i) for i in items])
    nearest = store.query(items[n // 2].text, k=1)[0]
    assert nearest.title == items[n // 2].title, "the store answers a query wrongly"
    print(json.dumps({"missing": n - len(present), "extra": store.count() - len(present)}))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "scan-worker":
        scan_worker(Path(args[0]), Path(args[1]), Path(args[2]))
    elif command == "store-worker":
        store_worker(Path(args[0]), int(args[1]))
    elif command == "store-check":
        store_check(Path(args[0]), int(args[1]))
    else:
        sys.exit(f"unknown command {command!r}")


# --- load: many sessions at once against the running app -----------------------------------------

class SlowPricer:
    """The workflow tests' keyword pricer, taking `seconds` per estimate like a real model."""

    name = "ensemble"

    def __init__(self, seconds: float = 0.05):
        from tests.test_workflow import KeywordPricer

        self.seconds, self.inner = seconds, KeywordPricer()
        self.gate: threading.Event | None = None  # when set here, every estimate waits for it

    def estimate(self, description: str):
        if not description.strip():
            raise ValueError("the description is empty: paste the product's title and details")
        if self.gate is not None:
            self.gate.wait(timeout=120)
        time.sleep(self.seconds)
        return self.inner.estimate(description)

    def estimate_batch(self, descriptions):
        return [self.estimate(d) for d in descriptions]


PRODUCTS = ["Sony WH-1000XM5 wireless headphones", "Anker 737 USB-C charger 120W",
            "Logitech MX Master 3S mouse", "Samsung 65 inch QLED TV", "Bosch cordless drill 18V"]


@dataclass
class LoadResult:
    sessions: int
    requests: int = 0
    answered: int = 0
    errors: list[str] = field(default_factory=list)  # what the user was told, for each refusal
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        return self.requests - self.answered - len(self.errors)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")


class RunningApp:
    """ui.app.DealScoutApp on loopback with fakes (Services overrides): a slow keyword pricer,
    a hash-embedding router, a scripted model for small talk, the inbox for alerts."""

    def __init__(self, data_dir: Path, pricer_seconds: float = 0.05):
        from agents.chat.router import Router
        from agents.wiring import Services
        from models.config import Settings
        from models.llm import FakeChatModel
        from ui.app import DealScoutApp

        settings = Settings(_env_file=None, data_dir=data_dir, feeds=[str(FIXTURES / "traps.xml")],
                            notify_urls=[])
        pricer = SlowPricer(pricer_seconds)
        self.services = Services(settings, overrides={
            "pricer": pricer, "pricers": {"ensemble": pricer}, "embedder": HashEmbedder(),
            "router": Router(HashEmbedder()), "llm": FakeChatModel(["Hello!"] * 10_000)})
        self.demo = DealScoutApp(self.services).build()

    def __enter__(self) -> RunningApp:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        self.url = f"http://127.0.0.1:{port}/"
        return self

    def __exit__(self, *exc: object) -> None:
        self.demo.close()
        self.services.memory.close()

    @contextlib.contextmanager
    def arrivals(self, jobs: int) -> Iterator[threading.Event]:
        """An event set once `jobs` requests have reached the app's queue, queued or refused:
        counted where Gradio's routes hand each one to the queue."""
        queue = self.demo._queue
        push, count, lock, arrived = queue.push, [0], threading.Lock(), threading.Event()

        async def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                return await push(*args, **kwargs)
            finally:
                with lock:
                    count[0] += 1
                    if count[0] >= jobs:
                        arrived.set()

        queue.push = counted
        try:
            yield arrived
        finally:
            queue.push = push


def load_run(url: str, sessions: int, requests_per_session: int = 6, deadline_s: float = 120.0) -> LoadResult:
    """`sessions` gradio_client sessions at once, each alternating a chat turn that prices a
    product and a /price call. Bounded: each session stops after its requests or at the deadline,
    whichever is first; a request with neither an answer nor an error by then is lost."""
    from gradio_client import Client

    result = LoadResult(sessions=sessions)
    lock = threading.Lock()
    stop_at = time.monotonic() + deadline_s

    def session(n: int) -> None:
        client = Client(url, verbose=False)
        for i in range(requests_per_session):
            if time.monotonic() > stop_at:
                return
            product = PRODUCTS[(n + i) % len(PRODUCTS)]
            with lock:
                result.requests += 1
            started = time.perf_counter()
            try:
                if i % 2 == 0:
                    job = client.submit(f"what is this worth: {product}", [], api_name="/chat")
                    box, messages = job.result(timeout=max(1.0, stop_at - time.monotonic()))
                    ok = "Worth about" in json.dumps(messages)
                else:
                    job = client.submit(product, api_name="/price")
                    table, _why = job.result(timeout=max(1.0, stop_at - time.monotonic()))
                    ok = table["data"][-1][0] == "ensemble (final)"
            except TimeoutError:
                continue  # neither answered nor refused: lost
            except Exception as err:  # a refusal the user sees (queue full, app error)
                with lock:
                    result.errors.append(str(err)[:200])
                continue
            with lock:
                if ok:
                    result.answered += 1
                    result.latencies.append(time.perf_counter() - started)
                else:
                    result.errors.append("an answer without the estimate")

    return run_sessions(session, sessions, stop_at, result)


def burst_run(url: str, jobs: int, clients: int = 10, timeout_s: float = 120.0,
              release: threading.Event | None = None, arrived: threading.Event | None = None) -> LoadResult:
    """`jobs` /price requests submitted at once from `clients` sessions: more than the app's
    queue holds, so some are refused; each refusal must say why.

    `release`: the event a gated pricer waits for; it is set once `arrived` is (every job has
    reached the server: queued, running or refused, RunningApp.arrivals), so how many are
    refused does not depend on how fast this machine submits them. `timeout_s` only bounds a
    hang: jobs that never arrived are an error, never released early."""
    from gradio_client import Client

    result = LoadResult(sessions=clients, requests=jobs)
    sessions = [Client(url, verbose=False) for _ in range(clients)]
    started = time.perf_counter()
    submitted = [(time.perf_counter(), sessions[i % clients].submit(PRODUCTS[i % len(PRODUCTS)],
                                                                     api_name="/price"))
                 for i in range(jobs)]
    if release is not None:
        if arrived is None or not arrived.wait(timeout_s):
            result.errors.append(f"not every job reached the server in {timeout_s:.0f} s")
        release.set()
    for sent_at, job in submitted:
        try:
            job.result(timeout=max(1.0, timeout_s - (time.perf_counter() - started)))
        except TimeoutError:
            continue
        except Exception as err:
            result.errors.append(f"{type(err).__name__}: {err}"[:200])
            continue
        result.answered += 1
        result.latencies.append(time.perf_counter() - sent_at)
    result.seconds = time.perf_counter() - started
    return result


# --- load by message kind, against the app with the default models ---------------------------------

class DefaultApp:
    """ui.app.DealScoutApp on loopback with the configured (default) models and built artifacts;
    only the chat memory is a scratch database, so a benchmark leaves the real one alone."""

    def __init__(self, scratch: Path):
        from agents.memory import Memory
        from agents.wiring import Services
        from models.config import Settings
        from ui.app import DealScoutApp

        settings = Settings()
        self.services = Services(settings, overrides={"memory": Memory(scratch / "load.db")})
        self.services.pricer.estimate("warm-up: load every pricing model before the clock starts")
        self.demo = DealScoutApp(self.services).build()

    __enter__ = RunningApp.__enter__
    __exit__ = RunningApp.__exit__


def run_sessions(session: Callable[[int], None], sessions: int, stop_at: float, result: Any) -> Any:
    """Run `session(n)` for each session in its own thread until all end (or `stop_at` passed);
    the wall time goes into result.seconds."""
    started = time.perf_counter()
    threads = [threading.Thread(target=session, args=(n,), daemon=True) for n in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, stop_at - time.monotonic() + 5))
    result.seconds = time.perf_counter() - started
    return result
