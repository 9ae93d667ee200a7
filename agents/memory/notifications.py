"""Notifications: the intent to send each alert, its claim by one deliverer, and a record per
channel tried, so that a crash at any point is resumed without showing a message twice.

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
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from agents.memory.store import Store, now_text

# A claim older than this is taken over even when its owner may be alive (a hung process): far
# longer than one delivery with its retries takes.
CLAIM_LEASE = timedelta(minutes=10)
_PROCESS_TOKEN = uuid.uuid4().hex[:12]  # tells this process from an earlier one with the same pid


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


class NotificationStore(Store):
    """Notifications and their delivery attempts (queueing also decides the opportunities)."""

    @property
    def owner(self) -> str:
        """Who claims notifications from this process: "host:pid:token"."""
        return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}"

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
                    (alert.key, alert.opportunity_id, alert.title, alert.body, alert.url, now_text()))
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
                (self.owner, now_text(), note.id, note.status, note.claimed_by)).rowcount)

    def begin_attempt(self, notification_id: int, channel: str) -> int:
        """Record that `channel` is about to be sent this notification (before the send)."""
        with self._transaction() as db:
            return db.execute("INSERT INTO delivery_attempts (notification_id, channel, owner, started_at) "
                              "VALUES (?, ?, ?, ?)", (notification_id, channel, self.owner, now_text())).lastrowid

    def confirm_attempt(self, attempt_id: int) -> None:
        """The channel accepted the message: a resumed delivery never sends it there again."""
        with self._transaction() as db:
            db.execute("UPDATE delivery_attempts SET confirmed_at = ? WHERE id = ?", (now_text(), attempt_id))

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
                (channel, now_text(), notification_id)).rowcount)

    def mark_failed(self, notification_id: int, error: str) -> None:
        """Record a failed delivery; the notification is pending again and retried later."""
        with self._transaction() as db:
            db.execute("UPDATE notifications SET status = 'pending', attempts = attempts + 1, "
                       "last_error = ? WHERE id = ? AND status IN ('pending', 'sending')",
                       (error[:500], notification_id))

    def notification(self, key: str) -> Notification | None:
        rows = self._rows("SELECT * FROM notifications WHERE key = ?", (key,))
        return Notification.model_validate(dict(rows[0])) if rows else None

    def inbox(self, limit: int = 50) -> list[Notification]:
        rows = self._rows("SELECT * FROM notifications ORDER BY id DESC LIMIT ?", (limit,))
        return [Notification.model_validate(dict(r)) for r in rows]
