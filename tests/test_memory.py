"""Memory: idempotent recording, the notification lifecycle, UI queries, and crash consistency
(a worker running the pipeline is killed with SIGKILL mid-way; a rescan loses and repeats nothing).

This file doubles as that worker: `python -m tests.test_memory worker DB FEED OUTBOX`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agents.feeds import FeedFetcher
from agents.memory import Alert, Memory, StoreError, deal_key
from agents.messaging import MessagingAgent
from agents.scanner import FeedOutcome, Scanner, ScanResult
from models.types import Deal, Estimate, Neighbour, Opportunity
from tests.faults import STEPWISE

ROOT = Path(__file__).resolve().parents[1]


def make_deal(n: int, price: float = 100.0, category: str = "Tools") -> Deal:
    return Deal(title=f"Product {n}", description=f"Product {n} description", price=price,
                url=f"https://example.com/p/{n}", guid=f"guid-{n}", category=category, feed="test")


def assess(deal: Deal, value: float) -> tuple[Estimate, Opportunity | None]:
    estimate = Estimate(agent="ensemble", value=value, low=value * 0.8, high=value * 1.2,
                        evidence=[Neighbour(title="Similar", category="Tools", price=value,
                                            similarity=0.9)])
    discount = value - deal.price
    opportunity = (Opportunity(deal=deal, estimate=estimate, discount=discount,
                               reason=f"${discount:.0f} below estimate") if discount >= 50 else None)
    return estimate, opportunity


def test_record_scan_is_idempotent_across_restarts(tmp_path):
    deals = [make_deal(1), make_deal(2)]
    with Memory(tmp_path / "m.db") as memory:
        assert memory.record_scan(ScanResult(deals=deals)) == deals
        assert memory.record_scan(ScanResult(deals=deals)) == []
    with Memory(tmp_path / "m.db") as memory:  # a restart
        new = memory.record_scan(ScanResult(deals=[*deals, make_deal(3)]))
        assert [d.guid for d in new] == ["guid-3"]
        assert [d.guid for d in memory.deals_to_assess()] == ["guid-1", "guid-2", "guid-3"]
        assert memory.counts()["deals"] == 3


def test_validators_are_saved_with_the_deals_of_ok_feeds_only(tmp_path):
    feeds = [FeedOutcome(feed="http://a/rss", status="ok", validators={"etag": '"x"'}),
             FeedOutcome(feed="http://b/rss", status="failed", message="boom")]
    with Memory(tmp_path / "m.db") as memory:
        memory.record_scan(ScanResult(deals=[make_deal(1)], feeds=feeds))
        assert memory.feed_validators("http://a/rss") == {"etag": '"x"'}
        assert memory.feed_validators("http://b/rss") == {}


def test_assessment_is_saved_once(tmp_path):
    with Memory(tmp_path / "m.db") as memory:
        deal = make_deal(1, price=40)
        memory.record_scan(ScanResult(deals=[deal]))
        estimate, opportunity = assess(deal, 150)
        member = Estimate(agent="forest", value=140)
        first = memory.save_assessment(deal, estimate, opportunity, members=[member])
        again = memory.save_assessment(deal, estimate, opportunity, members=[member])
        assert first == again and memory.counts() == {"deals": 1, "estimates": 2,
                                                      "opportunities": 1, "notifications": 0}
        assert memory.deals_to_assess() == []
        with pytest.raises(StoreError, match="never recorded"):
            memory.save_assessment(make_deal(9), estimate)


def test_notification_lifecycle(tmp_path):
    with Memory(tmp_path / "m.db") as memory:
        deal = make_deal(1, price=40)
        memory.record_scan(ScanResult(deals=[deal]))
        opp_id = memory.save_assessment(deal, *assess(deal, 150))
        [stored] = memory.undecided_opportunities()
        alert = Alert(key=deal_key(deal), title="t", body="b", opportunity_id=opp_id)
        [note_id] = memory.queue_notifications([alert])
        assert memory.queue_notifications([alert]) == []  # one intent per deal, ever
        assert memory.undecided_opportunities() == [] and stored.id == opp_id
        memory.mark_failed(note_id, "connection refused")
        [pending] = memory.pending_notifications()
        assert (pending.attempts, pending.last_error, pending.status) == (1, "connection refused",
                                                                          "pending")
        assert memory.mark_delivered(note_id, "json") is True
        assert memory.mark_delivered(note_id, "json") is False  # never marked twice
        assert memory.pending_notifications() == []
        [sent] = memory.inbox()
        assert (sent.status, sent.channel, sent.attempts) == ("delivered", "json", 2)


def test_a_claim_is_taken_once_and_taken_over_only_from_a_dead_owner(tmp_path):
    db = tmp_path / "m.db"
    with Memory(db) as memory, Memory(db) as other:
        [note_id] = memory.queue_notifications([Alert(key="k", title="t", body="b")])
        [note] = memory.pending_notifications()
        assert memory.claim_notification(note) is True
        assert other.claim_notification(note) is False  # the same view of the row: one winner
        [sending] = other.pending_notifications()
        assert sending.status == "sending" and sending.claimed_by == memory.owner
        assert other.claim_notification(sending) is False  # its owner (this process) is alive
        assert memory.claim_notification(sending) is False  # another thread of ours has it
        assert sending.delivery_key == note.delivery_key and sending.delivery_key.startswith("dealscout-")
        memory.mark_failed(note_id, "refused")
        [failed] = other.pending_notifications()
        assert (failed.status, failed.attempts) == ("pending", 1)
        assert other.claim_notification(failed) is True
    # a claim left by a process that died (here: a child that exited) is taken over at once
    child = subprocess.run([sys.executable, "-c", (
        "import os, sys; sys.path.insert(0, '.');"
        "from agents.memory import Memory; from pathlib import Path\n"
        f"m = Memory(Path({str(db)!r})); n = m.pending_notifications()[0]\n"
        "m.mark_failed(n.id, 'x'); n = m.pending_notifications()[0]\n"
        "print(m.claim_notification(n), os.getpid())")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    claimed, child_pid = child.stdout.split()
    assert claimed == "True", child.stderr
    with Memory(db) as memory:
        [orphan] = memory.pending_notifications()
        assert orphan.status == "sending" and orphan.claimed_by.split(":")[1] == child_pid
        assert memory.claim_notification(orphan) is True
        assert memory.mark_delivered(orphan.id, "json") is True
        assert memory.pending_notifications() == []


def test_queries_for_the_ui(tmp_path):
    with Memory(tmp_path / "m.db") as memory:
        deals = [make_deal(1, 40, "Tools"), make_deal(2, 300, "Audio"), make_deal(3, 20, "Tools"),
                 make_deal(4, 90, "Tools")]
        memory.record_scan(ScanResult(deals=deals))
        values = [150, 600, 75, 100]  # discounts 110, 300, 55, (10: no opportunity)
        ids = [memory.save_assessment(d, *assess(d, v)) for d, v in zip(deals, values, strict=True)]
        assert ids[3] is None
        titles = lambda opps: [o.deal.title for o in opps]  # noqa: E731
        assert titles(memory.list_opportunities()) == ["Product 3", "Product 2", "Product 1"]
        assert titles(memory.list_opportunities(order="best")) == ["Product 2", "Product 1",
                                                                   "Product 3"]
        assert titles(memory.list_opportunities(order="best", max_price=100)) == ["Product 1",
                                                                                  "Product 3"]
        assert titles(memory.list_opportunities(min_discount=100, category="tools")) == ["Product 1"]
        assert titles(memory.list_opportunities(order="best", limit=1)) == ["Product 2"]
        evidence = memory.evidence(ids[1])
        assert evidence.opportunity.discount == 300
        assert evidence.estimates[0].evidence[0].title == "Similar"
        assert memory.evidence(999) is None


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "m.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the memory database"):
        Memory(bad)


# --- crash consistency ------------------------------------------------------------------------

def write_feed(path: Path, n: int) -> None:
    items = "".join(
        f"<item><title>Widget model {i} for ${10 + i}</title><link>https://example.com/w/{i}</link>"
        f"<guid>w-{i}</guid><description>Widget number {i}.</description></item>" for i in range(n))
    path.write_text(f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>')


def _append(path: Path, line: str) -> None:
    with path.open("a") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())


class OutboxSender:
    """Delivers by appending to a file (fsynced), like a service that really got it and, as a
    receiver honouring idempotency keys does, shows a message once per key. Every arrival,
    repeats included, is also written to `<outbox>.wire`."""

    def __init__(self, path: Path):
        self.path = path
        self.wire = path.with_suffix(".wire")

    def send(self, title: str, body: str, key: str = "") -> str:
        assert key, "every delivery carries its idempotency key"
        line = f"{key} {body.splitlines()[-1]}"  # the key and the deal URL
        _append(self.wire, line)
        shown = self.path.read_text().splitlines() if self.path.exists() else []
        if not any(known.split(" ", 1)[0] == key for known in shown):
            _append(self.path, line)
        return "outbox"


def step(name: str) -> None:
    print(name, flush=True)
    if os.environ.get(STEPWISE):
        sys.stdin.readline()  # the test says go on, or kills the worker right here


def run_pipeline(db: Path, feed: Path, outbox: Path) -> None:
    """The scan -> assess -> queue -> deliver path the lead wires, with a fake pricer."""
    memory = Memory(db)
    with FeedFetcher() as fetcher:
        memory.record_scan(Scanner(fetcher).scan([str(feed)]))
    step("recorded")
    for deal in memory.deals_to_assess():
        value = deal.price + (80 if int(deal.url.rsplit("/", 1)[1]) % 2 == 0 else 5)
        memory.save_assessment(deal, *assess(deal, value))
        step("assessed")
    agent = MessagingAgent(memory, OutboxSender(outbox))
    agent.queue(memory.undecided_opportunities(), best=1000)
    step("queued")
    original_send = agent.notifier.send
    agent.notifier.send = lambda title, body, key="": (original_send(title, body, key), step("sent"))[0]
    agent.deliver_pending()
    step("done")


def test_kill_9_mid_way_then_rescan_loses_and_repeats_nothing(tmp_path):
    db, feed, outbox = tmp_path / "m.db", tmp_path / "feed.xml", tmp_path / "outbox.txt"
    n = 30
    write_feed(feed, n)
    command = [sys.executable, "-m", "tests.test_memory", "worker", str(db), str(feed), str(outbox)]
    # kill while assessing, right after queueing, and while delivering
    kill_points = [("assessed", 7), ("assessed", 20), ("sent", 4), ("sent", 9)]
    for wanted, count in kill_points:
        # stepwise: the worker waits at each step, so the kill lands exactly there, however busy
        worker = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, STEPWISE: "1"})
        seen = 0
        for line in worker.stdout:
            seen += line.strip() == wanted
            assert line.strip() != "done", f"the worker finished before {count} x {wanted!r}"
            if seen >= count:
                break
            worker.stdin.write("\n")
            worker.stdin.flush()
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        assert worker.returncode == -signal.SIGKILL
    finish = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert finish.returncode == 0, finish.stderr
    with Memory(db) as memory:
        assert memory.counts() == {"deals": n, "estimates": n, "opportunities": n // 2,
                                   "notifications": n // 2}
        assert memory.deals_to_assess() == [] and memory.pending_notifications() == []
        assert all(note.status == "delivered" for note in memory.inbox(limit=100))
    sent = [line.split(" ", 1)[1] for line in outbox.read_text().splitlines()]
    expected = {f"https://example.com/w/{i}" for i in range(0, n, 2)}
    assert set(sent) == expected  # nothing lost
    assert len(sent) == len(set(sent))  # nothing shown twice
    # on the wire, a repeat is only possible for a message sent in the instant between delivery
    # and marking, at most one per kill that landed during delivery, and always with its own key
    wire = outbox.with_suffix(".wire").read_text().splitlines()
    assert len(wire) - len(set(wire)) <= 2 and len({line.split()[0] for line in wire}) == n // 2
    # once marked delivered, a rescan sends nothing again
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and outbox.with_suffix(".wire").read_text().splitlines() == wire


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    run_pipeline(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))


def test_a_database_from_before_claims_is_upgraded_in_place(tmp_path):
    import sqlite3

    old = sqlite3.connect(tmp_path / "m.db")
    old.executescript("""
        CREATE TABLE notifications (
            id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, opportunity_id INTEGER, title TEXT NOT NULL,
            body TEXT NOT NULL, url TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
            channel TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, delivered_at TEXT);
        INSERT INTO notifications (key, title, body, url, created_at)
            VALUES ('k', 't', 'b', '', '2026-01-01T00:00:00+00:00');""")
    old.commit()
    old.close()
    with Memory(tmp_path / "m.db") as memory:
        [note] = memory.pending_notifications()
        assert note.claimed_by == "" and memory.claim_notification(note)
        assert memory.mark_delivered(note.id, "json")
