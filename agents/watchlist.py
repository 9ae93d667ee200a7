"""Watches: "tell me when *this* gets cheap". A watch is a product query with an optional price
ceiling, owned by a user (the app's login name under --auth, "" without it).

A deal matches a watch when it names every word of the query that must appear (model names and
numbers: "WH-1000XM5", "4K", "OLED"; agents/model_words.py), is close enough in meaning (MiniLM; with no embedder every
query word must appear), and is at or under the ceiling. Every scan checks every watch against the
deals priced since that watch last looked; a match is queued as a notification keyed by watch and
deal (so it is sent once, through the same crash-safe path as every alert), then recorded with the
watch's progress in one transaction. Only a new low alerts: the cheapest matching offer of a
scan, and only when it is under every price the watch has alerted for. A crash in between repeats the check, and the key drops the
repeat.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from pydantic import BaseModel

from agents.claims import claim_line
from agents.memory import Alert, Memory, deal_key
from agents.model_words import contains, names_model_words, normalise, required_words
from agents.price_history import second_hand
from models.types import MAX_PRICE, Deal, Estimate, TextEmbedder, money

MIGRATIONS = [("watchlist", (
    "CREATE TABLE watches (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, query TEXT NOT NULL, "
    "required TEXT NOT NULL, max_price REAL, created_at TEXT NOT NULL, "
    "checked_through INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX watches_by_owner ON watches(owner)",
    "CREATE TABLE watch_matches (id INTEGER PRIMARY KEY, watch_id INTEGER NOT NULL, "
    "deal_key TEXT NOT NULL REFERENCES deals(key), query TEXT NOT NULL, title TEXT NOT NULL, "
    "price REAL NOT NULL, estimate REAL, url TEXT NOT NULL, created_at TEXT NOT NULL, "
    "UNIQUE(watch_id, deal_key))"))]
MAX_WATCHES = 50  # per user
QUERY_CHARS = 200
SIMILARITY_FLOOR = 0.45  # MiniLM cosine between the query and the deal's title
# A query naming a whole model number ("WH-1000XM5") has it said which product; MiniLM reads
# "WH1000XM5" apart from "WH-1000XM5" (0.44 for the very headphones), so less closeness will do.
MODEL_NUMBER_FLOOR = 0.35
LOOKBACK = timedelta(days=2)  # a new watch also looks at the deals of the last two days
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-./+]*")
_STOP = frozenset({"a", "an", "the", "any", "for", "of", "with", "and", "or", "in", "on", "to", "my", "me",
                   "new", "some"})


class WatchError(ValueError):
    """A watch request that cannot be done; the message says why in one sentence."""


class Watch(BaseModel):
    id: int
    owner: str
    query: str
    required: list[str]
    max_price: float | None
    created_at: datetime

    def describe(self) -> str:
        cap = f" under {money(self.max_price)}" if self.max_price is not None else ""
        return f"#{self.id} {self.query}{cap}"


class WatchMatch(BaseModel):
    watch_id: int
    query: str
    title: str
    price: float
    estimate: float | None
    url: str
    created_at: datetime


def _squash(word: str) -> str:
    return re.sub(r"[^a-z0-9]", "", word.lower())


def words_match(query: str, text: str) -> bool:
    """Without an embedder: every query word (beyond a few small ones) is in the text."""
    words = [w for w in _TOKEN.findall(normalise(query)) if w.lower() not in _STOP]
    text = normalise(text)
    return bool(words) and all(contains(text, w) for w in words)


def _now() -> datetime:
    return datetime.now(UTC)


class Watchlist:
    def __init__(self, memory: Memory, embedder: TextEmbedder | None = None):
        self.memory, self.embedder = memory, embedder
        memory.apply_migrations(MIGRATIONS)

    # --- a user's watches ---------------------------------------------------------------------

    def add(self, owner: str, query: str, max_price: float | None = None) -> Watch:
        query = " ".join(normalise(query).split())[:QUERY_CHARS]  # markup names no product
        if not _TOKEN.search(query):
            raise WatchError("say what to watch for, e.g. “watch for a Sony WH-1000XM5 under $250”")
        if max_price is not None and not (0 < max_price <= MAX_PRICE and math.isfinite(max_price)):
            raise WatchError(f"a price ceiling must be between $0 and {money(MAX_PRICE)}")
        if len(self.watches(owner)) >= MAX_WATCHES:
            raise WatchError(f"you are watching {MAX_WATCHES} things already: stop watching one first")
        since = (_now() - LOOKBACK).isoformat()
        with self.memory.transaction() as db:
            start = db.execute("SELECT COALESCE(MAX(rowid), 0) AS n FROM deals WHERE seen_at < ?",
                               (since,)).fetchone()["n"]
            cursor = db.execute(
                "INSERT INTO watches (owner, query, required, max_price, created_at, checked_through) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (owner, query, " ".join(required_words(query)), max_price, _now().isoformat(), start))
        return self._watch_by_id(cursor.lastrowid)

    def watches(self, owner: str | None = None) -> list[Watch]:
        """One user's watches (everyone's with None), oldest first."""
        where, params = ("WHERE owner = ?", (owner,)) if owner is not None else ("", ())
        return [self._watch(r) for r in self.memory.rows(f"SELECT * FROM watches {where} ORDER BY id", params)]

    def remove(self, owner: str, watch_id: int | None = None, query: str = "") -> Watch:
        """Stop a watch named by its number or by words of its query (or, with one watch, it)."""
        mine = self.watches(owner)
        if not mine:
            raise WatchError("you are not watching anything")
        if watch_id is not None:
            chosen = next((w for w in mine if w.id == watch_id), None)
        elif query.strip():
            chosen = self._closest(mine, query)
        else:
            chosen = mine[0] if len(mine) == 1 else None
        if chosen is None:
            listed = "; ".join(w.describe() for w in mine[:10])
            raise WatchError(f"no watch of yours matches that; you are watching {listed}")
        with self.memory.transaction() as db:
            db.execute("DELETE FROM watches WHERE id = ? AND owner = ?", (chosen.id, owner))
        return chosen

    def matches(self, owner: str | None = None, since: datetime | None = None) -> list[WatchMatch]:
        sql = ("SELECT m.* FROM watch_matches m LEFT JOIN watches w ON w.id = m.watch_id "
               "WHERE m.created_at >= ?")
        params: list[object] = [(since or datetime.min.replace(tzinfo=UTC)).astimezone(UTC).isoformat()]
        if owner is not None:
            sql += " AND w.owner = ?"
            params.append(owner)
        return [WatchMatch.model_validate(dict(r)) for r in self.memory.rows(sql + " ORDER BY m.id", params)]

    def _closest(self, watches: Sequence[Watch], query: str) -> Watch | None:
        by_words = [w for w in watches if any(contains(w.query, q) for q in _TOKEN.findall(query)
                                             if q.lower() not in _STOP and len(q) > 2)]
        if len(by_words) == 1:
            return by_words[0]
        if by_words:  # "stop watching the Sony" with two Sony watches: ask, remove nothing
            listed = "; ".join(w.describe() for w in by_words[:10])
            raise WatchError(f"that matches more than one watch ({listed}): say which number to stop")
        if self.embedder is None:
            return None
        # A watch is known by its query and by the deals it matched ("the headphones" for a
        # "Sony WH-1000XM5" watch that matched "Sony WH-1000XM5 Wireless ... Headphones").
        texts = [[w.query, *(m.title for m in self._recent_matches(w.id))] for w in watches]
        vectors = np.asarray(self.embedder.embed([query, *(t for ts in texts for t in ts)]))
        scores, at = [], 1
        for ts in texts:
            scores.append(float(np.max(vectors[at:at + len(ts)] @ vectors[0])))
            at += len(ts)
        best = int(np.argmax(scores))
        return watches[best] if scores[best] >= 0.3 else None

    def _recent_matches(self, watch_id: int) -> list[WatchMatch]:
        rows = self.memory.rows("SELECT * FROM watch_matches WHERE watch_id = ? ORDER BY id DESC LIMIT 3",
                                (watch_id,))
        return [WatchMatch.model_validate(dict(r)) for r in rows]

    def _watch_by_id(self, watch_id: int) -> Watch:
        return self._watch(self.memory.rows("SELECT * FROM watches WHERE id = ?", (watch_id,))[0])

    @staticmethod
    def _watch(row) -> Watch:
        # The words are read from the query each time, so a watch made before a change in how
        # they are read matches like a new one.
        return Watch(id=row["id"], owner=row["owner"], query=row["query"], required=required_words(row["query"]),
                     max_price=row["max_price"], created_at=row["created_at"])

    # --- every scan ---------------------------------------------------------------------------

    def check(self, *, queue: bool = True) -> list[Alert]:
        """Match every watch against the deals priced since it last looked; queue one alert per
        new match (unless `queue` is off: the daily digest reports matches instead). Returns the
        alerts of the matches found now."""
        watches = self.watches()
        if not watches:
            return []
        start = min(self._progress(w.id) for w in watches)
        rows = self.memory.rows("SELECT rowid AS n, deal FROM deals WHERE rowid > ? AND state = 'assessed' "
                                "ORDER BY rowid", (start,))
        if not rows:
            return []
        deals = [(r["n"], Deal.model_validate_json(r["deal"])) for r in rows]
        similar = self._similarities(watches, [d for _, d in deals])
        found: list[Alert] = []
        for w_index, watch in enumerate(watches):
            done = self._progress(watch.id)
            offers = [deal for d_index, (n, deal) in enumerate(deals)
                      if n > done and self._matches(watch, deal, similar[w_index, d_index])]
            hits = [(deal, self._estimate(deal)) for deal in self._new_low(watch.id, offers)]
            alerts = [self._alert(watch, deal, estimate) for deal, estimate in hits]
            if alerts and queue:
                self.memory.queue_notifications(alerts)  # keyed: a repeat after a crash is dropped
            with self.memory.transaction() as db:
                for deal, estimate in hits:
                    db.execute("INSERT OR IGNORE INTO watch_matches (watch_id, deal_key, query, title, price, "
                               "estimate, url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               (watch.id, deal_key(deal), watch.query, deal.title, deal.price,
                                estimate.value if estimate else None, deal.url, _now().isoformat()))
                db.execute("UPDATE watches SET checked_through = MAX(checked_through, ?) WHERE id = ?",
                           (deals[-1][0], watch.id))
            found += alerts
        return found

    def _new_low(self, watch_id: int, offers: Sequence[Deal]) -> list[Deal]:
        """The cheapest offer when it is under every price this watch has alerted for: one product
        comes from many retailers and in colours, and each of those is no news. A new offer is
        compared with new ones only, so an open-box or refurbished price never silences it."""
        alerted = self.memory.rows("SELECT title, price FROM watch_matches WHERE watch_id = ?", (watch_id,))
        found = []
        for used in (False, True):
            same = [deal for deal in offers if second_hand(deal.title) == used]
            lows = [row["price"] for row in alerted if used or not second_hand(row["title"])]
            lows += [deal.price for deal in found]  # a used offer must also beat this scan's new one
            if same and (cheapest := min(same, key=lambda deal: deal.price)).price < min(lows, default=math.inf):
                found.append(cheapest)
        return found

    def _progress(self, watch_id: int) -> int:
        rows = self.memory.rows("SELECT checked_through FROM watches WHERE id = ?", (watch_id,))
        return rows[0]["checked_through"] if rows else 0

    def _similarities(self, watches: Sequence[Watch], deals: Sequence[Deal]) -> np.ndarray:
        if self.embedder is None:
            return np.array([[1.0 if words_match(w.query, d.title) else 0.0 for d in deals] for w in watches])
        vectors = np.asarray(self.embedder.embed([*(w.query for w in watches), *(d.title for d in deals)]))
        return vectors[:len(watches)] @ vectors[len(watches):].T

    @staticmethod
    def _matches(watch: Watch, deal: Deal, similarity: float) -> bool:
        if watch.max_price is not None and deal.price > watch.max_price:
            return False
        floor = MODEL_NUMBER_FLOOR if any(len(_squash(w)) >= 5 for w in watch.required) else SIMILARITY_FLOOR
        return similarity >= floor and names_model_words(watch.query, f"{deal.title}\n{deal.description}")

    def _estimate(self, deal: Deal) -> Estimate | None:
        """The deal's final estimate (recorded last, after its members')."""
        rows = self.memory.rows("SELECT estimate FROM estimates WHERE deal_key = ? ORDER BY id DESC LIMIT 1",
                                (deal_key(deal),))
        return Estimate.model_validate_json(rows[0]["estimate"]) if rows else None

    @staticmethod
    def _alert(watch: Watch, deal: Deal, estimate: Estimate | None) -> Alert:
        name = deal.title if len(deal.title) <= 60 else deal.title[:57].rsplit(" ", 1)[0] + "..."
        facts = f"Price {money(deal.price)}"
        if estimate is not None:
            facts += f" | we estimate {money(estimate.value)}"
            if estimate.low is not None and estimate.high is not None:
                facts += f" (likely {money(estimate.low)}-{money(estimate.high)})"
        lines = [f"Matches your watch: {watch.describe()}", deal.title, facts]
        if estimate is not None and (claim := claim_line(deal.price, deal.claimed_price, estimate)):
            lines.append(claim)
        lines.append(deal.url)
        return Alert(key=f"watch-{watch.id}:{deal_key(deal)}", title=f"Watch: {name} - {money(deal.price)}",
                     body="\n".join(lines), url=deal.url)
