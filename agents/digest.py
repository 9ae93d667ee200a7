"""The daily digest: instead of one push per deal, one notification a day at a chosen hour with
the day's best deals and every watch match.

It goes through the same queue as every alert, keyed by the day ("digest-2026-12-04"), so it is
queued once and delivered once even when the process dies around it; the deals it reports are
marked decided in the same transaction. A digest the app was not running for (or died before
queueing) is sent at the next check after its hour: the schedule checks at the hour and at start.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from agents.memory import Alert, Memory
from agents.messaging import DeliveryReport, MessagingAgent
from agents.watchlist import Watchlist
from models.types import money

log = logging.getLogger("dealscout.digest")
DAY = timedelta(days=1)


class DailyDigest:
    def __init__(self, memory: Memory, messenger: MessagingAgent, watchlist: Watchlist | None, *,
                 hour: int, best: int):
        self.memory, self.messenger, self.watchlist = memory, messenger, watchlist
        self.hour, self.best = hour, best

    def compose(self, now: datetime) -> tuple[Alert, list[int]] | None:
        """Today's digest and the undecided opportunities it covers; None with nothing to say."""
        since = now - DAY
        found = [o for o in self.memory.list_opportunities(order="best", limit=500) if o.created_at >= since]
        best = found[:self.best]
        matches = self.watchlist.matches(None, since) if self.watchlist is not None else []
        if not best and not matches:
            return None
        lines = []
        if best:
            lines.append(f"Best deals of the day ({len(best)} of {len(found)}):")
            lines += [f"- {o.deal.title[:90]}: {money(o.deal.price)}, worth about {money(o.estimate.value)} "
                      f"({money(o.discount)} below) {o.deal.url}" for o in best]
        if matches:
            lines.append("Your watches:")
            lines += [f"- {m.query}: {m.title[:90]} {money(m.price)}"
                      + (f", we estimate {money(m.estimate)}" if m.estimate is not None else "") + f" {m.url}"
                      for m in matches]
        title = f"DealScout daily: {len(best)} deals, {len(matches)} watch matches"
        covered = [o.id for o in self.memory.undecided_opportunities()]
        return Alert(key=f"digest-{now:%Y-%m-%d}", title=title, body="\n".join(lines)), covered

    def due(self, now: datetime) -> bool:
        return now.hour >= self.hour and self.memory.notification(f"digest-{now:%Y-%m-%d}") is None

    def send(self, now: datetime | None = None) -> DeliveryReport | None:
        """Queue today's digest if its hour has come and it is not queued yet, then deliver what
        is pending (a digest cut off by a crash included)."""
        now = now or datetime.now().astimezone()
        if self.due(now) and (built := self.compose(now)) is not None:
            alert, covered = built
            self.memory.queue_notifications([alert], passed=covered)
        return self.messenger.deliver_pending()


def schedule_digest(digest: DailyDigest) -> BackgroundScheduler:
    """Check at the digest's hour every day, and once now (a digest missed while the app was off)."""

    def run() -> None:
        try:
            digest.send()
        except Exception:  # a failed digest must not kill the scheduler; the next check retries
            log.exception("daily digest failed")

    scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
    # One job, first run now: a separate one-off catch-up job raced the scheduler's own removal of it
    # when the app stopped (JobLookupError in the scheduler's thread).
    scheduler.add_job(run, "cron", hour=digest.hour, minute=0, id="digest",
                      next_run_time=datetime.now().astimezone())
    with suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
    return scheduler
