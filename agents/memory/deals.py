"""The deals seen, their estimates and the opportunities among them: what a scan stores, what
pricing records (atomically, once per deal) and what the app and chat list."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from agents.memory.store import Store, StoreError, now_text
from models.types import Deal, Estimate, Opportunity

if TYPE_CHECKING:
    from agents.scanner import ScanResult


class StoredOpportunity(Opportunity):
    id: int
    decision: Literal["undecided", "notify", "pass"]
    created_at: datetime


class Evidence(BaseModel):
    opportunity: StoredOpportunity
    estimates: list[Estimate]  # the ensemble's and each member's, oldest first


def deal_key(deal: Deal) -> str:
    return deal.guid or deal.url


class DealStore(Store):
    """Deals (keyed by guid, else URL), their estimates and opportunities, and feed validators."""

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
                         outcome.validators.get("last-modified", ""), now_text()))
        return new

    def find_deal(self, url: str) -> Deal | None:
        """A deal already seen, by its link or guid."""
        rows = self._rows("SELECT deal FROM deals WHERE key = ? OR json_extract(deal, '$.url') = ? "
                          "LIMIT 1", (url, url))
        return Deal.model_validate_json(rows[0]["deal"]) if rows else None

    def deals_to_assess(self) -> list[Deal]:
        rows = self._rows("SELECT deal FROM deals WHERE state = 'new' ORDER BY rowid")
        return [Deal.model_validate_json(r["deal"]) for r in rows]

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
                           (key, each.agent, each.value, each.model_dump_json(), now_text()))
            if opportunity is None:
                return None
            cursor = db.execute(
                "INSERT INTO opportunities (deal_key, price, discount, category, opportunity, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (key, opportunity.deal.price, opportunity.discount, opportunity.deal.category,
                 opportunity.model_dump_json(), now_text()))
            return cursor.lastrowid

    def undecided_opportunities(self) -> list[StoredOpportunity]:
        rows = self._rows("SELECT * FROM opportunities WHERE decision = 'undecided' ORDER BY id")
        return [self._opportunity(r) for r in rows]

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

    def counts(self) -> dict[str, int]:
        tables = ("deals", "estimates", "opportunities", "notifications")
        return {t: self._rows(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"] for t in tables}

    @staticmethod
    def _opportunity(row: sqlite3.Row) -> StoredOpportunity:
        stored = Opportunity.model_validate_json(row["opportunity"])
        return StoredOpportunity(**dict(stored), id=row["id"], decision=row["decision"],
                                 created_at=row["created_at"])
