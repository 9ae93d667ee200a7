"""Scans on a schedule, one at a time across processes.

The lock is an OS file lock (filelock: flock on POSIX, msvcrt on Windows): the OS drops it when its
holder dies, so a crashed scan never leaves it stuck.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from filelock import FileLock, Timeout

log = logging.getLogger(__name__)
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScanBusy(RuntimeError):
    """Another scan holds the lock."""


def parse_every(text: str) -> float:
    """'30m', '2h', '45s', '90' (minutes) -> seconds."""
    match = _EVERY.match(text)
    if not match:
        raise ValueError(f"cannot read {text!r} as an interval: use e.g. 30m, 2h or 45s")
    seconds = float(match.group(1)) * _SECONDS[(match.group(2) or "m").lower()]
    if seconds < 10:
        raise ValueError("scan interval must be at least 10 seconds")
    return seconds


@contextmanager
def scan_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout as err:
        raise ScanBusy("a scan is already running") from err
    try:
        yield
    finally:
        lock.release()


def _guarded(job: Callable[[], object]) -> Callable[[], None]:
    """The job takes the scan lock itself (DealPipeline.scan does), so on-demand and scheduled
    scans exclude each other; here a busy lock or a failure is only logged."""

    def run() -> None:
        try:
            job()
        except ScanBusy:
            log.info("scheduled scan skipped: another scan is running")
        except Exception:  # a failed scan must not kill the scheduler
            log.exception("scheduled scan failed")

    return run


def schedule(job: Callable[[], object], every_s: float, *, block: bool = False):
    """Run `job` every `every_s` seconds, the first run right away. In the app the scheduler runs
    in a background thread and is returned; for the `scan --every` daemon it blocks until stopped."""
    kind = BlockingScheduler if block else BackgroundScheduler
    scheduler = kind(job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(_guarded(job), "interval", seconds=every_s, id="scan",
                      next_run_time=datetime.now().astimezone())
    with suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
    return scheduler
