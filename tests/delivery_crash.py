"""kill -9 during alert delivery, against loopback receivers that do not dedupe (issue 16, finding
6): every arrival a receiver answered counts as shown, so a repeat is a duplicate a person sees.

    python -m tests.delivery_crash worker DB URL...   # MessagingAgent.deliver_pending via apprise

A trial queues alerts, starts the worker delivering each to two json:// channels, kills it with
SIGKILL right after the receiver answered a randomly chosen request (plus a random sliver of time,
so the kill falls anywhere from before to after the worker recorded that answer), restarts
delivery to the end and counts what each channel showed twice or never.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.servers import LoopbackServer, respond

ROOT = Path(__file__).resolve().parents[1]
CHANNELS = ("/a", "/b")


def queue_alerts(db: Path, n: int) -> None:
    from agents.memory import Alert, Memory

    with Memory(db) as memory:
        memory.queue_notifications([Alert(key=f"alert-{i}", title=f"Deal {i}", body=f"Deal {i}\nhttps://example.com/{i}")
                                    for i in range(n)])


def notifier_urls(server: LoopbackServer) -> list[str]:
    return [f"json://127.0.0.1:{server.port}{path}" for path in CHANNELS]


def deliver(db: Path, urls: list[str], attempts: int = 2, backoff_s: float = 0.01):
    from agents.memory import Memory
    from agents.messaging import MessagingAgent, Notifier

    with Memory(db) as memory:
        return MessagingAgent(memory, Notifier(urls, attempts=attempts, backoff_s=backoff_s)).deliver_pending()


def worker_command(db: Path, urls: list[str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "tests.delivery_crash", "worker", str(db), *urls, *extra]


class Receiver:
    """Answers 200 (or what `answer` says) and counts, per channel and alert, what it answered."""

    def __init__(self, server: LoopbackServer, after_answer=None, answer=None):
        self.shown: Counter[tuple[str, str]] = Counter()
        self.after_answer, self.answer = after_answer, answer
        self.lock = threading.Lock()
        for path in CHANNELS:
            server.route(path, self._handler(path))

    def _handler(self, path: str):
        def handler(req: BaseHTTPRequestHandler) -> None:
            key = req.headers.get("Idempotency-Key", "")  # sent along; this receiver ignores it
            status = self.answer(path) if self.answer else 200
            respond(b"ok", status=status)(req)
            req.wfile.flush()
            if status == 200:
                with self.lock:
                    self.shown[(path, key)] += 1
                    count = sum(self.shown.values())
                if self.after_answer:
                    self.after_answer(path, count)
        return handler

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.shown.values() if n > 1)


@dataclass
class DeliveryTrial:
    killed: bool = False
    duplicates: int = 0  # arrivals a channel answered and showed a second time
    lost: int = 0  # alert x channel never shown
    errors: str = ""


def delivery_crash_trial(folder: Path, rng: random.Random, alerts: int = 4) -> DeliveryTrial:
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "dealscout.db"
    queue_alerts(db, alerts)
    target, trial = rng.randrange(1, alerts * len(CHANNELS) + 1), DeliveryTrial()
    holder: dict[str, subprocess.Popen] = {}

    def kill_at_target(path: str, count: int) -> None:
        if count == target and "worker" in holder:
            time.sleep(rng.uniform(0, 0.01))
            holder["worker"].send_signal(signal.SIGKILL)

    with LoopbackServer() as server:
        receiver = Receiver(server, after_answer=kill_at_target)
        urls = notifier_urls(server)
        holder["worker"] = subprocess.Popen(worker_command(db, urls), cwd=ROOT, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)
        _, stderr = holder["worker"].communicate(timeout=120)
        trial.killed = holder["worker"].returncode == -signal.SIGKILL
        restart = subprocess.run(worker_command(db, urls), cwd=ROOT, capture_output=True, text=True, timeout=120)
        if restart.returncode != 0:
            trial.errors = (restart.stderr.strip().splitlines() or ["no output"])[-1][:300]
        if holder["worker"].returncode not in (0, -signal.SIGKILL):
            trial.errors = (stderr.strip().splitlines() or ["no output"])[-1][:300]
    trial.duplicates = receiver.duplicates()
    shown = {key for key, n in receiver.shown.items() if n}
    trial.lost = alerts * len(CHANNELS) - len(shown)
    return trial


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "worker":
        retry_after_s = float(args.pop()) if args[-1].replace(".", "").isdigit() else 0.01
        report = deliver(Path(args[0]), args[1:], backoff_s=retry_after_s)
        print(report.model_dump_json(), flush=True)
