"""The memory database itself: one SQLite file (WAL, owner-only) with its schema and named
migrations, and the locked connection and transactions that the rest of agents/memory and the
modules keeping their own tables here (watchlist, price history, settings) use."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

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


class StoreError(RuntimeError):
    """The database cannot be opened or used; the message says which file and why."""


def now_text() -> str:
    """Now, as every table stores a time: ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat()


def storable(text: str, limit: int | None = None) -> str:
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


class Store:
    """The connection: opened (created 0600) and migrated on construction, shared by threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
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
                db.execute("INSERT INTO migrations VALUES (?, ?)", (name, now_text()))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
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
