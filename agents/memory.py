"""Memory: every deal seen, estimate, opportunity and notification, in SQLite (WAL).

Each step of the pipeline is one transaction that moves a deal forward, so a crash at any point
leaves work that the next run picks up, and nothing is done twice:

    record_scan(result)         deals stored once (keyed by guid, else URL), state 'new'
    deals_to_assess()           'new' deals, including those a crash left unpriced
    save_assessment(...)        estimates + opportunity (if any) + deal 'assessed', atomically
    undecided_opportunities()   opportunities not yet chosen or passed for notification
    queue_notifications(...)    notification intents (unique per deal) + decisions, atomically
    pending_notifications()     intents not yet delivered (new, failed, or cut off by a crash)
    claim_notification(...)     'sending': this process delivers it now (no other thread or process)
    begin_attempt / confirm_attempt   one record per channel tried: started, then confirmed
    mark_delivered / mark_failed

The chat keeps its turns here too (start_turn, record_step, finish_turn; turns() reads them back),
so a misrouted or failed answer can be inspected afterwards (`launch.py history`).

Delivery is at-least-once on the wire and exactly-once where it is shown: every notification
carries an idempotency key (`delivery_key`) that travels with the message, and is claimed
('sending') before it is sent. A process killed between sending and marking leaves it 'sending';
the next delivery round takes it over once its lease expired or its owner is gone, and sends it
again, with the same key, only to the channels that did not confirm it (each channel's attempt is
recorded before sending and confirmed the moment the channel accepts). A receiver that dedupes by
key (the outbox, a webhook honouring Idempotency-Key) shows it once; one that does not can show a
repeat only when the kill fell between that channel accepting and its confirmation being written.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from models.types import Deal, Estimate, Opportunity

if TYPE_CHECKING:
    from agents.scanner import ScanResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS deals (
    key TEXT PRIMARY KEY, title TEXT NOT NULL, price REAL NOT NULL, feed TEXT NOT NULL,
    deal TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'new', seen_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS estimates (
    id INTEGER PRIMARY KEY, deal_key TEXT NOT NULL REFERENCES deals(key), agent TEXT NOT NULL,
    value REAL NOT NULL, estimate TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS estimates_by_deal ON estimates(deal_key);
CREATE TABLE IF NOT EXISTS opportunities (
    id INTEGER PRIMARY KEY, deal_key TEXT NOT NULL UNIQUE REFERENCES deals(key),
    price REAL NOT NULL, discount REAL NOT NULL, category TEXT NOT NULL, opportunity TEXT NOT NULL,
    decision TEXT NOT NULL DEFAULT 'undecided', created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
    opportunity_id INTEGER REFERENCES opportunities(id), title TEXT NOT NULL, body TEXT NOT NULL,
    url TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', channel TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL, delivered_at TEXT, claimed_by TEXT NOT NULL DEFAULT '', claimed_at TEXT);
CREATE TABLE IF NOT EXISTS feed_state (
    url TEXT PRIMARY KEY, etag TEXT NOT NULL, last_modified TEXT NOT NULL, updated_at TEXT NOT NULL);
"""

# Schema changes after the first release, in order. Each runs once, in a transaction, and is
# recorded by name in `migrations`; add new ones at the end, never edit one that has shipped.
MIGRATIONS: list[tuple[str, tuple[str, ...]]] = [
    ("notification claims", (
        "ALTER TABLE notifications ADD COLUMN claimed_by TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE notifications ADD COLUMN claimed_at TEXT")),
    ("chat turns and their tool steps", (
        "CREATE TABLE turns (id INTEGER PRIMARY KEY, session TEXT NOT NULL, message TEXT NOT NULL, "
        "answer TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL DEFAULT 'running', "
        "started_at TEXT NOT NULL, finished_at TEXT)",
        "CREATE TABLE steps (id INTEGER PRIMARY KEY, turn_id INTEGER NOT NULL REFERENCES turns(id), "
        "position INTEGER NOT NULL, tool TEXT NOT NULL, arguments TEXT NOT NULL, result TEXT NOT NULL, "
        "status TEXT NOT NULL, seconds REAL NOT NULL)",
        "CREATE INDEX steps_by_turn ON steps(turn_id)")),
    ("delivery attempts", (
        "CREATE TABLE delivery_attempts (id INTEGER PRIMARY KEY, "
        "notification_id INTEGER NOT NULL REFERENCES notifications(id), channel TEXT NOT NULL, "
        "owner TEXT NOT NULL, started_at TEXT NOT NULL, confirmed_at TEXT)",
        "CREATE INDEX attempts_by_notification ON delivery_attempts(notification_id)")),
]
STEP_RESULT_CHARS = 4000  # a step's result as stored: enough to see what went wrong
STEP_ARGUMENT_CHARS = 20_000  # a step's arguments (JSON) as stored; longer ones are cut, marked
KEEP_TURNS = 5000  # chat turns kept, newest first; older ones go with their steps on insert
# A claim older than this is taken over even when its owner may be alive (a hung process): far
# longer than one delivery with its retries takes.
CLAIM_LEASE = timedelta(minutes=10)
_PROCESS_TOKEN = uuid.uuid4().hex[:12]  # tells this process from an earlier one with the same pid


class StoreError(RuntimeError):
    """The database cannot be opened or used; the message says which file and why."""


class StoredOpportunity(Opportunity):
    id: int
    decision: Literal["undecided", "notify", "pass"]
    created_at: datetime


class Alert(BaseModel):
    """A message to send; `key` makes it unique (an opportunity's deal key)."""

    key: str
    title: str
    body: str
    url: str = ""
    opportunity_id: int | None = None


class Notification(Alert):
    id: int
    status: Literal["pending", "sending", "delivered"]  # sending: claimed, maybe cut off by a crash
    channel: str = ""
    attempts: int = 0
    last_error: str = ""
    created_at: datetime
    delivered_at: datetime | None = None
    claimed_by: str = ""
    claimed_at: datetime | None = None

    @property
    def delivery_key(self) -> str:
        """The idempotency key sent with every delivery of this notification (stable, opaque)."""
        return delivery_key(self.key)


class Step(BaseModel):
    """One tool call of a chat turn, as stored."""

    position: int
    tool: str
    arguments: dict[str, Any]
    result: str
    status: str  # done | error
    seconds: float


class Turn(BaseModel):
    """One chat message and what the planner did with it."""

    id: int
    session: str
    message: str
    answer: str
    outcome: Literal["running", "ok", "failed"]  # running: still going, or cut off by a crash
    started_at: datetime
    finished_at: datetime | None = None
    steps: list[Step] = []


class Evidence(BaseModel):
    opportunity: StoredOpportunity
    estimates: list[Estimate]  # the ensemble's and each member's, oldest first


def deal_key(deal: Deal) -> str:
    return deal.guid or deal.url


def delivery_key(key: str) -> str:
    return "dealscout-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _owner_gone(owner: str, me: str) -> bool:
    """Whether the process that claimed a notification has died (as far as this host can tell).

    `owner` is "host:pid:token"; the token tells this process from an earlier one with its pid
    (a container's app is pid 1 after every restart)."""
    host, _, rest = owner.partition(":")
    pid, _, _token = rest.partition(":")
    my_host, _, my_rest = me.partition(":")
    if host != my_host or not pid.isdigit() or os.name != "posix":
        return False  # another machine, or no way to ask: the lease decides
    if owner == me:
        return False  # this process: another of its threads is delivering it now
    if int(pid) == int(my_rest.partition(":")[0]):
        return True  # our pid, another token: an earlier incarnation
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _storable(text: str, limit: int | None = None) -> str:
    """Text as SQLite can keep it: characters UTF-8 cannot encode (a lone surrogate from a web
    form) become '?', and at most `limit` characters are kept."""
    text = text[:limit] if limit is not None else text
    return text.encode("utf-8", "replace").decode("utf-8")


def _create_owner_only(path: Path) -> None:
    """Create a new database file readable by its owner only (0600): it holds what users typed
    in the chat. SQLite gives its -wal and -shm files the same mode. An existing file is left as
    it is."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _arguments_json(arguments: dict[str, object]) -> str:
    """A step's arguments as stored: JSON, and when longer than STEP_ARGUMENT_CHARS, a JSON
    object {"truncated": the start of it, marked with its full length}."""
    text = json.dumps(arguments, default=str, ensure_ascii=False)
    if len(text) > STEP_ARGUMENT_CHARS:
        text = json.dumps({"truncated": f"{text[:STEP_ARGUMENT_CHARS]}… ({len(text)} characters in all)"},
                          ensure_ascii=False)
    return _storable(text)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Memory:
    def __init__(self, path: Path, *, keep_turns: int = KEEP_TURNS):
        self.path = Path(path)
        self.keep_turns = keep_turns
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_owner_only(self.path)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                       check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
            self._migrate()
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"cannot open the memory database {self.path}: {err}") from err

    @property
    def owner(self) -> str:
        """Who claims notifications from this process: "host:pid:token"."""
        return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}"

    def _migrate(self) -> None:
        self._db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        self.apply_migrations(MIGRATIONS)

    def apply_migrations(self, migrations: Sequence[tuple[str, Sequence[str]]]) -> None:
        """Run each named migration not yet recorded, in order. The watchlist, price history and
        settings modules keep their tables in this database and add them this way."""
        with self._lock:
            done = {row["name"] for row in self._db.execute("SELECT name FROM migrations")}
        for name, statements in migrations:
            if name in done:
                continue
            with self._transaction() as db:
                for statement in statements:
                    try:
                        db.execute(statement)
                    except sqlite3.OperationalError as err:
                        # A database from before this table existed may already have the column
                        # or table (SCHEMA creates the claim columns): that step is done.
                        if "duplicate column" not in str(err) and "already exists" not in str(err):
                            raise
                db.execute("INSERT INTO migrations VALUES (?, ?)", (name, _now()))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE) for the modules that keep tables here."""
        return self._transaction()

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        return self._rows(sql, params)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- scanning -----------------------------------------------------------------------------

    def feed_validators(self, url: str) -> dict[str, str]:
        rows = self._rows("SELECT etag, last_modified FROM feed_state WHERE url = ?", (url,))
        if not rows:
            return {}
        found = {"etag": rows[0]["etag"], "last-modified": rows[0]["last_modified"]}
        return {k: v for k, v in found.items() if v}

    def record_scan(self, result: ScanResult) -> list[Deal]:
        """Store the scan's deals and feed validators together; returns the deals not seen before.

        Validators are saved in the same transaction, so a feed is never reported unchanged
        (HTTP 304) while its entries were lost.
        """
        new: list[Deal] = []
        with self._transaction() as db:
            for deal in result.deals:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO deals (key, title, price, feed, deal, seen_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (deal_key(deal), deal.title, deal.price, deal.feed, deal.model_dump_json(),
                     deal.seen_at.isoformat()))
                if cursor.rowcount:
                    new.append(deal)
            for outcome in result.feeds:
                if outcome.status == "ok" and outcome.validators:
                    db.execute(
                        "INSERT OR REPLACE INTO feed_state VALUES (?, ?, ?, ?)",
                        (outcome.feed, outcome.validators.get("etag", ""),
                         outcome.validators.get("last-modified", ""), _now()))
        return new

    def find_deal(self, url: str) -> Deal | None:
        """A deal already seen, by its link or guid."""
        rows = self._rows("SELECT deal FROM deals WHERE key = ? OR json_extract(deal, '$.url') = ? "
                          "LIMIT 1", (url, url))
        return Deal.model_validate_json(rows[0]["deal"]) if rows else None

    def deals_to_assess(self) -> list[Deal]:
        rows = self._rows("SELECT deal FROM deals WHERE state = 'new' ORDER BY rowid")
        return [Deal.model_validate_json(r["deal"]) for r in rows]

    # --- pricing ------------------------------------------------------------------------------

    def save_assessment(self, deal: Deal, estimate: Estimate, opportunity: Opportunity | None = None,
                        members: Sequence[Estimate] = ()) -> int | None:
        """Record a deal's estimate (and its members'), and the opportunity if it qualified.

        Returns the opportunity's id. A deal already assessed is left as it is.
        """
        key = deal_key(deal)
        with self._transaction() as db:
            moved = db.execute("UPDATE deals SET state = 'assessed' WHERE key = ? AND state = 'new'",
                               (key,)).rowcount
            if not moved:
                known = db.execute("SELECT 1 FROM deals WHERE key = ?", (key,)).fetchone()
                if known is None:
                    raise StoreError(f"deal {key} was never recorded; call record_scan first")
                row = db.execute("SELECT id FROM opportunities WHERE deal_key = ?", (key,)).fetchone()
                return row["id"] if row else None
            for each in [*members, estimate]:
                db.execute("INSERT INTO estimates (deal_key, agent, value, estimate, created_at) "
                           "VALUES (?, ?, ?, ?, ?)",
                           (key, each.agent, each.value, each.model_dump_json(), _now()))
            if opportunity is None:
                return None
            cursor = db.execute(
                "INSERT INTO opportunities (deal_key, price, discount, category, opportunity, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (key, opportunity.deal.price, opportunity.discount, opportunity.deal.category,
                 opportunity.model_dump_json(), _now()))
            return cursor.lastrowid

    # --- notifications ------------------------------------------------------------------------

    def undecided_opportunities(self) -> list[StoredOpportunity]:
        rows = self._rows("SELECT * FROM opportunities WHERE decision = 'undecided' ORDER BY id")
        return [self._opportunity(r) for r in rows]

    def queue_notifications(self, alerts: Sequence[Alert], passed: Sequence[int] = ()) -> list[int]:
        """Record the intent to send each alert, and decide the opportunities they and `passed`
        name, in one transaction. An alert whose key is already queued is not queued again.
        Returns the ids of the notifications newly queued."""
        queued: list[int] = []
        with self._transaction() as db:
            for alert in alerts:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO notifications (key, opportunity_id, title, body, url, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (alert.key, alert.opportunity_id, alert.title, alert.body, alert.url, _now()))
                if cursor.rowcount:
                    queued.append(cursor.lastrowid)
                if alert.opportunity_id is not None:
                    db.execute("UPDATE opportunities SET decision = 'notify' WHERE id = ?",
                               (alert.opportunity_id,))
            for opportunity_id in passed:
                db.execute("UPDATE opportunities SET decision = 'pass' WHERE id = ? "
                           "AND decision = 'undecided'", (opportunity_id,))
        return queued

    def pending_notifications(self) -> list[Notification]:
        """Not yet delivered: new, failed, or 'sending' (being sent now, or cut off by a crash)."""
        rows = self._rows("SELECT * FROM notifications WHERE status IN ('pending', 'sending') "
                          "ORDER BY id")
        return [Notification.model_validate(dict(r)) for r in rows]

    def claim_notification(self, note: Notification) -> bool:
        """Take a notification to deliver it now; False if another thread or live process has it.

        A 'sending' one is taken over when its owner died (a crash between sending and marking)
        or its claim is older than CLAIM_LEASE. The update only matches the row's state and owner
        as `note` saw them, so of two claimers only one wins.
        """
        if note.status == "delivered":
            return False
        if note.status == "sending":
            expired = note.claimed_at is None or datetime.now(UTC) - note.claimed_at > CLAIM_LEASE
            if not (expired or _owner_gone(note.claimed_by, self.owner)):
                return False
        with self._transaction() as db:
            return bool(db.execute(
                "UPDATE notifications SET status = 'sending', claimed_by = ?, claimed_at = ? "
                "WHERE id = ? AND status = ? AND claimed_by = ?",
                (self.owner, _now(), note.id, note.status, note.claimed_by)).rowcount)

    def begin_attempt(self, notification_id: int, channel: str) -> int:
        """Record that `channel` is about to be sent this notification (before the send)."""
        with self._transaction() as db:
            return db.execute("INSERT INTO delivery_attempts (notification_id, channel, owner, started_at) "
                              "VALUES (?, ?, ?, ?)", (notification_id, channel, self.owner, _now())).lastrowid

    def confirm_attempt(self, attempt_id: int) -> None:
        """The channel accepted the message: a resumed delivery never sends it there again."""
        with self._transaction() as db:
            db.execute("UPDATE delivery_attempts SET confirmed_at = ? WHERE id = ?", (_now(), attempt_id))

    def confirmed_channels(self, notification_id: int) -> set[str]:
        rows = self._rows("SELECT channel FROM delivery_attempts WHERE notification_id = ? "
                          "AND confirmed_at IS NOT NULL", (notification_id,))
        return {row["channel"] for row in rows}

    def mark_delivered(self, notification_id: int, channel: str) -> bool:
        """Mark a notification sent; False if it was already marked (it is never marked twice)."""
        with self._transaction() as db:
            return bool(db.execute(
                "UPDATE notifications SET status = 'delivered', channel = ?, delivered_at = ?, "
                "attempts = attempts + 1 WHERE id = ? AND status IN ('pending', 'sending')",
                (channel, _now(), notification_id)).rowcount)

    def mark_failed(self, notification_id: int, error: str) -> None:
        """Record a failed delivery; the notification is pending again and retried later."""
        with self._transaction() as db:
            db.execute("UPDATE notifications SET status = 'pending', attempts = attempts + 1, "
                       "last_error = ? WHERE id = ? AND status IN ('pending', 'sending')",
                       (error[:500], notification_id))

    # --- chat turns (the planner's TurnRecorder) ----------------------------------------------

    def start_turn(self, session: str, message: str) -> int:
        """Record a new turn; the oldest turns beyond `keep_turns` go, with their steps."""
        with self._transaction() as db:
            turn = db.execute("INSERT INTO turns (session, message, started_at) VALUES (?, ?, ?)",
                              (_storable(session), _storable(message, STEP_RESULT_CHARS), _now())).lastrowid
            cut = db.execute("SELECT id FROM turns ORDER BY id DESC LIMIT 1 OFFSET ?",
                             (self.keep_turns,)).fetchone()
            if cut is not None:
                db.execute("DELETE FROM steps WHERE turn_id <= ?", (cut["id"],))
                db.execute("DELETE FROM turns WHERE id <= ?", (cut["id"],))
            return turn

    def record_step(self, turn_id: int, position: int, tool: str, arguments: dict[str, object],
                    result: str, status: str, seconds: float) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO steps (turn_id, position, tool, arguments, result, status, seconds) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (turn_id, position, _storable(tool),
                        _arguments_json(arguments),
                        _storable(result, STEP_RESULT_CHARS), status, seconds))

    def finish_turn(self, turn_id: int, answer: str, outcome: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE turns SET answer = ?, outcome = ?, finished_at = ? WHERE id = ?",
                       (_storable(answer, STEP_RESULT_CHARS), outcome, _now(), turn_id))

    def turns(self, limit: int = 20) -> list[Turn]:
        """The last `limit` chat turns, newest first, each with its tool steps in order."""
        rows = self._rows("SELECT * FROM turns ORDER BY id DESC LIMIT ?", (limit,))
        steps: dict[int, list[Step]] = {row["id"]: [] for row in rows}
        if steps:
            marks = ", ".join("?" * len(steps))
            for step in self._rows(f"SELECT * FROM steps WHERE turn_id IN ({marks}) "
                                   "ORDER BY turn_id, position", list(steps)):
                steps[step["turn_id"]].append(Step.model_validate(
                    {**dict(step), "arguments": json.loads(step["arguments"])}))
        return [Turn.model_validate({**dict(row), "steps": steps[row["id"]]}) for row in rows]

    # --- what the UI asks ---------------------------------------------------------------------

    def list_opportunities(self, order: Literal["newest", "best"] = "newest",
                           max_price: float | None = None, min_discount: float | None = None,
                           category: str | None = None, limit: int = 50) -> list[StoredOpportunity]:
        where, params = ["1 = 1"], []
        if max_price is not None:
            where.append("price <= ?")
            params.append(max_price)
        if min_discount is not None:
            where.append("discount >= ?")
            params.append(min_discount)
        if category:
            where.append("category = ? COLLATE NOCASE")
            params.append(category)
        by = "discount DESC, id DESC" if order == "best" else "id DESC"
        rows = self._rows(f"SELECT * FROM opportunities WHERE {' AND '.join(where)} "
                          f"ORDER BY {by} LIMIT ?", [*params, limit])
        return [self._opportunity(r) for r in rows]

    def evidence(self, opportunity_id: int) -> Evidence | None:
        rows = self._rows("SELECT * FROM opportunities WHERE id = ?", (opportunity_id,))
        if not rows:
            return None
        estimates = self._rows("SELECT estimate FROM estimates WHERE deal_key = ? ORDER BY id",
                               (rows[0]["deal_key"],))
        return Evidence(opportunity=self._opportunity(rows[0]),
                        estimates=[Estimate.model_validate_json(r["estimate"]) for r in estimates])

    def notification(self, key: str) -> Notification | None:
        rows = self._rows("SELECT * FROM notifications WHERE key = ?", (key,))
        return Notification.model_validate(dict(rows[0])) if rows else None

    def inbox(self, limit: int = 50) -> list[Notification]:
        rows = self._rows("SELECT * FROM notifications ORDER BY id DESC LIMIT ?", (limit,))
        return [Notification.model_validate(dict(r)) for r in rows]

    def counts(self) -> dict[str, int]:
        tables = ("deals", "estimates", "opportunities", "notifications")
        return {t: self._rows(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"] for t in tables}

    @staticmethod
    def _opportunity(row: sqlite3.Row) -> StoredOpportunity:
        stored = Opportunity.model_validate_json(row["opportunity"])
        return StoredOpportunity(**dict(stored), id=row["id"], decision=row["decision"],
                                 created_at=row["created_at"])
