import logging
import subprocess
import sys
import threading

import pytest

from agents.schedule import ScanBusy, parse_every, scan_lock, schedule


def test_parse_every():
    assert parse_every("30m") == 1800 and parse_every("2h") == 7200 and parse_every("45s") == 45
    assert parse_every("90") == 5400  # plain numbers are minutes
    for bad in ("soon", "5s", "-3m", ""):
        with pytest.raises(ValueError):
            parse_every(bad)


def test_lock_is_exclusive_and_a_killed_holder_does_not_leave_it_stuck(tmp_path):
    lock = tmp_path / "scan.lock"
    with scan_lock(lock), pytest.raises(ScanBusy), scan_lock(lock):
        pass
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, '.');"
        "from agents.schedule import scan_lock; from pathlib import Path\n"
        f"with scan_lock(Path({str(lock)!r})):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ScanBusy), scan_lock(lock):
        pass
    holder.kill()
    holder.wait()
    with scan_lock(lock):  # the kernel released it with the dead process
        pass


def test_the_scan_lock_needs_no_fcntl_so_the_app_imports_on_windows(tmp_path):
    """Windows has no fcntl; here its import is made to fail as it does there."""
    lock = tmp_path / "scan.lock"
    done = subprocess.run([sys.executable, "-c", (
        "import sys; sys.modules['fcntl'] = None; sys.path.insert(0, '.')\n"
        "import agents.workflow\n"
        "from agents.schedule import scan_lock\nfrom pathlib import Path\n"
        f"with scan_lock(Path({str(lock)!r})):\n    print('held')")],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "held", done.stderr[-2000:]


def test_background_schedule_runs_now_and_skips_while_busy(tmp_path, caplog):
    lock = tmp_path / "scan.lock"
    ran = threading.Event()
    scheduler = schedule(ran.set, 3600)  # an hour: only the first, immediate run can happen here
    try:
        assert ran.wait(300)  # a bound for a stalled machine, not a timing
    finally:
        scheduler.shutdown(wait=False)
    calls, tried = [], threading.Event()
    with scan_lock(lock), caplog.at_level(logging.INFO, logger="agents.schedule"):
        def guarded_job():
            try:
                with scan_lock(lock):  # as DealPipeline.scan does
                    calls.append(1)
            finally:
                tried.set()

        scheduler = schedule(guarded_job, 3600)
        assert tried.wait(300)
        scheduler.shutdown(wait=True)  # the run has logged its outcome
    assert calls == []  # skipped: another scan held the lock
    assert "scheduled scan skipped: another scan is running" in caplog.text
