"""Reliability, measured: fuzz cases run, faults survived, kill -9 crash trials with what a restart
lost or repeated, latency and losses under load, and a vulnerability audit of the installed packages.

    .venv/bin/python benchmarks/reliability.py [--fuzz-examples 1000] [--crash-trials 20]
        [--sessions 1,4,16] [--skip fuzz,attacks,faults,crash,load,kinds,audit] [--json FILE]

`kinds` is the load table with the default models and the built artifacts (`make artifacts`):
price, scan-list and small-talk chat messages, 5 per session, at 1 and 16 sessions.

The same checks run, smaller, in `make test` (tests/test_fuzz.py, test_faults.py, test_security.py);
everything here is bounded and stops by itself. Nothing leaves the machine except pip-audit's
query to PyPI's vulnerability service (reported as such when it cannot be reached).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.chat_load import KIND_MESSAGES, kind_load_run  # noqa: E402
from tests.delivery_crash import delivery_crash_trial  # noqa: E402
from tests.faults import (  # noqa: E402
    FAULTS,
    TARGETS,
    DefaultApp,
    RunningApp,
    burst_run,
    chat_under_fault,
    load_run,
    scan_crash_trial,
    scan_under_fault,
    store_crash_trial,
)


def section(title: str) -> None:
    print(f"\n## {title}\n", flush=True)


def fuzz(examples: int) -> dict:
    """tests/test_fuzz.py with `examples` fresh (not the CI's fixed) cases per property."""
    section(f"Fuzz: tests/test_fuzz.py, {examples} fresh examples per property")
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "cases.json"
        env = {**os.environ, "DEALSCOUT_FUZZ_EXAMPLES": str(examples), "DEALSCOUT_FUZZ_FRESH": "1",
               "DEALSCOUT_FUZZ_REPORT": str(report), "HF_HUB_OFFLINE": "1"}
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "pytest", "tests/test_fuzz.py", "-q", "-p", "no:cacheprovider",
                              "--no-header"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
        seconds = time.perf_counter() - started
        cases = json.loads(report.read_text()) if report.exists() else {}
    summary = (run.stdout.strip().splitlines() or ["no output"])[-1]
    print("| entry point | cases |\n|---|---:|")
    for name, n in sorted(cases.items()):
        print(f"| {name} | {n:,} |")
    print(f"| **all** | **{sum(cases.values()):,}** |")
    print(f"\npytest: {summary} ({seconds:.0f} s)")
    if run.returncode:
        print(run.stdout[-3000:])
    return {"cases": cases, "total": sum(cases.values()), "pytest": summary, "ok": run.returncode == 0,
            "seconds": round(seconds, 1)}


# Issue 16: what an outside attack on the running app found, each replayed on loopback by a test
# that failed before its fix.
ATTACKS = [
    ("SSRF: Deals-tab feed URLs on loopback ports", ["tests/test_url_policy.py"]),
    ("one message, hundreds of tool calls and 6 scans", [
        "tests/test_planner.py::test_the_budget_counts_calls_not_rounds_and_allows_one_scan"]),
    ("a lone surrogate (\\ud800) in the chat and the Price tab", [
        "tests/test_input_guards.py::test_a_lone_surrogate_is_cleaned_in_the_chat_and_the_price_tab"]),
    ("null message, non-list history, minutes 1e308, id NaN, threshold NaN", [
        "tests/test_input_guards.py::test_a_null_message_or_a_history_that_is_no_list_gets_one_sentence",
        "tests/test_input_guards.py::test_numbers_from_the_deals_tab_are_checked_before_anything_changes"]),
    ("price filters $0, $-5, $1e308, $inf, $nan", [
        "tests/test_input_guards.py::test_an_invalid_price_filter_is_said_to_be_invalid"]),
    ("kill -9 mid-delivery: a push shown twice", [
        "tests/test_messaging.py::test_a_delivery_killed_between_channels_is_not_repeated_where_it_was_shown"]),
    ("40 wrong passwords, then the right one", ["tests/test_login.py"]),
    ("the hosted planner model down", [
        "tests/test_planner.py::test_a_failing_hosted_model_falls_back_to_the_router_and_says_so_once"]),
    ("HTML entities in API answers; two tracebacks per error", [
        "tests/test_input_guards.py::test_answers_are_text_not_html_entities",
        "tests/test_input_guards.py::test_one_traceback_per_user_facing_error"]),
]


def attacks() -> dict:
    section("Attacks (issue 16): each replayed on loopback; held = its test passes")
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "junit.xml"
        ids = [test for _, tests in ATTACKS for test in tests]
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header",
                              f"--junitxml={report}", *ids], cwd=ROOT, capture_output=True, text=True,
                             timeout=1800, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        outcomes = junit_outcomes(report) if report.exists() else {}
    print("| attack | tests | held |\n|---|---:|---|")
    rows = {}
    for attack, tests in ATTACKS:
        mine = {name: ok for name, ok in outcomes.items() if any(name.startswith(t) for t in tests)}
        held = bool(mine) and all(mine.values())
        rows[attack] = {"tests": len(mine), "held": held}
        print(f"| {attack} | {len(mine)} | {'held' if held else 'BROKE: ' + ', '.join(n for n, ok in mine.items() if not ok)[:120] or 'not run'} |")
    print(f"\npytest: {(run.stdout.strip().splitlines() or ['no output'])[-1]}")
    return {"held": sum(r["held"] for r in rows.values()), "total": len(rows), "rows": rows}


def junit_outcomes(report: Path) -> dict[str, bool]:
    """{"tests/x.py::test_y[param]": passed} from pytest's JUnit XML."""
    import xml.etree.ElementTree as ET

    found = {}
    for case in ET.parse(report).iter("testcase"):
        path = case.get("classname", "").replace(".", "/") + ".py"
        found[f"{path}::{case.get('name')}"] = not any(child.tag in ("failure", "error", "skipped") for child in case)
    return found


def faults() -> dict:
    section("Faults: one scan (and one chat turn) per fault, then the fault clears and a scan recovers")
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for target in TARGETS:
            for kind in FAULTS:
                for transient in (False, True):
                    runs.append(scan_under_fault(Path(folder) / f"{target}-{kind}-{transient}", target, kind,
                                                 transient=transient))
    runs += [chat_under_fault(kind) for kind in FAULTS]
    print("| where | fault | every request | first request only | repeats at the receiver (same key) |")
    print("|---|---|---|---|---:|")
    for target in (*TARGETS, "chat"):
        for kind in FAULTS:
            pair = [r for r in runs if r.target == target and r.kind == kind]
            cells = {r.transient: ("survived" if r.survived else "FAILED: " + "; ".join(r.problems)[:80])
                     for r in pair}
            repeats = sum(r.wire_repeats for r in pair)
            print(f"| {target} | {kind} | {cells.get(False, '-')} | {cells.get(True, '-')} | {repeats} |")
    survived = sum(r.survived for r in runs)
    print(f"\n{survived} of {len(runs)} faults survived with a clear outcome and nothing lost after recovery.")
    examples = {f"{r.target}/{r.kind}": r.reasons[0] for r in runs if r.reasons and not r.transient}
    print("\nWhat the user is told (one per target):")
    for where in ("feed/500", "feed/garbled", "notifier/reset", "llm/truncated", "chat/429"):
        if where in examples:
            print(f"- {where}: {examples[where][:160]}")
    return {"survived": survived, "total": len(runs),
            "failed": [f"{r.target}/{r.kind}/{'once' if r.transient else 'always'}: {r.problems}"
                       for r in runs if not r.survived],
            "receiver_repeats": sum(r.wire_repeats for r in runs)}


def crashes(trials: int, seed: int) -> dict:
    section(f"Crash consistency: kill -9 at random points, then restart ({trials} trials each)")
    rng = random.Random(seed)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, trial in (("scan (DealPipeline.scan, 24 deals, fake pricer, file outbox)",
                             lambda n: scan_crash_trial(Path(folder) / f"scan-{n}", rng, deals=24, kills=2)),
                            ("vector-store build (VectorStore.build, 96 items, hash embedder)",
                             lambda n: store_crash_trial(Path(folder) / f"store-{n}", rng, items=96, kills=2))):
            started = time.perf_counter()
            done = [trial(n) for n in range(trials)]
            phases = Counter(p for t in done for p in t.killed_in)
            row = {"trials": trials, "kills_mid_run": sum(t.kills for t in done), "killed_in": dict(phases),
                   "lost": sum(t.lost for t in done), "duplicated": sum(t.duplicated for t in done),
                   "resent_same_key": sum(t.wire_repeats for t in done),
                   "restart_errors": [e for t in done for e in t.errors],
                   "seconds": round(time.perf_counter() - started, 1)}
            results[name] = row
        started = time.perf_counter()
        deliveries = [delivery_crash_trial(Path(folder) / f"delivery-{n}", rng) for n in range(trials)]
        results["delivery (MessagingAgent, 4 alerts x 2 json:// channels, receivers that do not dedupe)"] = {
            "trials": trials, "kills_mid_run": sum(t.killed for t in deliveries),
            "killed_in": {"0-10 ms after a receiver answered": sum(t.killed for t in deliveries)},
            "lost": sum(t.lost for t in deliveries), "duplicated": sum(t.duplicates for t in deliveries),
            "resent_same_key": "-", "restart_errors": [t.errors for t in deliveries if t.errors],
            "seconds": round(time.perf_counter() - started, 1)}
    print("| run killed | trials | kills mid-run | interrupted while | lost | shown twice | resent with the same key "
          "| restart errors |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for name, r in results.items():
        where = ", ".join(f"{k} {v}" for k, v in sorted(r["killed_in"].items()))
        print(f"| {name} | {r['trials']} | {r['kills_mid_run']} | {where} | {r['lost']} | {r['duplicated']} "
              f"| {r['resent_same_key']} | {len(r['restart_errors'])} |")
    print("\n'resent with the same key': deliveries a kill cut off between sending and marking; the next run "
          "sent them again with the alert's idempotency key and the receiver showed each once.")
    print("'delivery': each kill falls 0-10 ms after a receiver answered, the worst moment. A restart sends "
          "only to channels whose attempt was not confirmed; a channel that accepted the message in the "
          "milliseconds before the kill, before its confirmation was written, shows it twice: no sender can "
          "know that it arrived, and not resending would lose the alerts the kill cut off before they arrived. "
          "A receiver that honours the Idempotency-Key (json://, form://, xml://) drops that repeat.")
    for r in results.values():
        for error in r["restart_errors"][:3]:
            print(f"- restart error: {error}")
    return results


def load(sessions: list[int]) -> dict:
    section("Load: concurrent gradio_client sessions against the app on loopback (fake 50 ms pricer)")
    rows = {}
    with tempfile.TemporaryDirectory() as folder, RunningApp(Path(folder), pricer_seconds=0.05) as app:
        load_run(app.url, 1, requests_per_session=2)  # warm up
        for n in sessions:
            rows[n] = load_run(app.url, n, requests_per_session=8, deadline_s=180)
        app.services.pricer.seconds = 0.2
        burst = burst_run(app.url, jobs=100, clients=10, timeout_s=180)
    print("| sessions | requests | answered | refused | lost | p50 s | p95 s | max s | requests/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in rows.items():
        print(f"| {n} | {r.requests} | {r.answered} | {len(r.errors)} | {r.lost} | {r.percentile(50):.2f} "
              f"| {r.percentile(95):.2f} | {max(r.latencies, default=float('nan')):.2f} "
              f"| {r.answered / r.seconds:.1f} |")
    refusals = Counter(burst.errors)
    print(f"\nBurst: {burst.requests} /price jobs at once from {burst.sessions} sessions (200 ms pricer, queue of "
          f"64, 2 at a time): {burst.answered} answered, {len(burst.errors)} refused, {burst.lost} lost; "
          f"p95 of the answered {burst.percentile(95):.1f} s.")
    for message, n in refusals.items():
        print(f"- refused {n}x with: {message!r}")
    return {"sessions": {n: {"requests": r.requests, "answered": r.answered, "refused": len(r.errors),
                             "lost": r.lost, "p50_s": round(r.percentile(50), 3),
                             "p95_s": round(r.percentile(95), 3)} for n, r in rows.items()},
            "burst": {"jobs": burst.requests, "answered": burst.answered, "refused": len(burst.errors),
                      "lost": burst.lost, "messages": dict(refusals)}}


def kinds(sessions: list[int], messages: int = 5) -> dict:
    section(f"Load by message kind: default models and built artifacts, {messages} chat messages a session")
    rows: dict[str, dict[int, dict]] = {}
    with tempfile.TemporaryDirectory() as folder, DefaultApp(Path(folder)) as app:
        for kind in KIND_MESSAGES:  # warm up: the router's classifier is fitted on first use
            kind_load_run(app.url, kind, 1, messages_per_session=1)
        for kind in KIND_MESSAGES:
            rows[kind] = {n: served(app, kind, n, messages) for n in sessions}
    print("The sessions run in a process of their own (tests/chat_load.py); this process is the server. "
          "'in the planner': a turn's own time (its record in the memory), the rest of the answer's time is "
          "Gradio and the queue; 'server CPU': this process's CPU time per message.\n")
    print("| messages | sessions | requests | answered | refused | lost | p50 s | p95 s | max s "
          "| in the planner p95 s | server CPU ms/message | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, by_n in rows.items():
        for n, row in by_n.items():
            r = row["result"]
            print(f"| {kind} | {n} | {r.requests} | {r.answered} | {len(r.errors)} | {r.lost} "
                  f"| {r.percentile(50):.2f} | {r.percentile(95):.2f} | {max(r.latencies, default=float('nan')):.2f} "
                  f"| {row['planner_p95_s']:.3f} | {row['cpu_ms']:.0f} | {r.seconds:.1f} |")
    for kind, by_n in rows.items():
        for error in [e for row in by_n.values() for e in row["result"].errors][:2]:
            print(f"- {kind}: {error}")
    print(f"\n(load average {os.getloadavg()[0]:.2f} at the end)")
    return {kind: {n: {"requests": row["result"].requests, "answered": row["result"].answered,
                       "refused": len(row["result"].errors), "lost": row["result"].lost,
                       "p50_s": round(row["result"].percentile(50), 3), "p95_s": round(row["result"].percentile(95), 3),
                       "planner_p95_s": round(row["planner_p95_s"], 4), "server_cpu_ms": round(row["cpu_ms"], 1),
                       "wall_s": round(row["result"].seconds, 1), "load_average": round(row["load_average"], 2)}
                   for n, row in by_n.items()} for kind, by_n in rows.items()}


def served(app: DefaultApp, kind: str, sessions: int, messages: int) -> dict:
    """One load run and what it cost the server: its CPU time and each turn's time in the planner."""
    load_average = os.getloadavg()[0]
    cpu = time.process_time()
    result = kind_load_run(app.url, kind, sessions, messages_per_session=messages)
    cpu_ms = (time.process_time() - cpu) * 1000 / max(1, result.requests)
    turns = app.services.memory.turns(limit=result.requests)
    planner = [(t.finished_at - t.started_at).total_seconds() for t in turns if t.finished_at is not None]
    return {"result": result, "cpu_ms": cpu_ms, "load_average": load_average,
            "planner_p95_s": float(np.percentile(planner, 95)) if planner else float("nan")}


def audit() -> dict:
    section("Known vulnerabilities: pip-audit over the virtualenv")
    try:
        run = subprocess.run([sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "-f", "json"],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as err:
        print(f"pip-audit could not run: {err}")
        return {"ran": False, "why": str(err)}
    if "No module named pip_audit" in run.stderr:
        print("pip-audit is not installed: `.venv/bin/pip install pip-audit` (a dev dependency)")
        return {"ran": False, "why": "not installed"}
    try:
        found = json.loads(run.stdout)
    except json.JSONDecodeError:
        why = (run.stderr.strip().splitlines() or ["no output"])[-1][:300]
        print(f"pip-audit could not run here: {why}")
        return {"ran": False, "why": why}
    deps = found.get("dependencies", [])
    audited = [d for d in deps if "vulns" in d and not d.get("skip_reason")]
    vulnerable = [d for d in audited if d["vulns"]]
    skipped = [d for d in deps if d.get("skip_reason")]
    if deps and not audited:
        why = skipped[0]["skip_reason"] if skipped else "nothing audited"
        print(f"pip-audit ran but could not audit any of the {len(deps)} packages: the vulnerability service "
              f"is not reachable from this machine (first reason: {why!r}). Rerun with network access.")
        return {"ran": False, "packages": len(deps), "why": why}
    print(f"{len(audited)} packages audited, {len(skipped)} skipped, {len(vulnerable)} with known vulnerabilities")
    for d in vulnerable:
        for v in d["vulns"]:
            print(f"- {d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v.get('fix_versions') or ['-'])})")
    return {"ran": True, "audited": len(audited), "skipped": len(skipped),
            "vulnerable": {d["name"]: [v["id"] for v in d["vulns"]] for d in vulnerable}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fuzz-examples", type=int, default=1000, help="examples per fuzz property")
    parser.add_argument("--crash-trials", type=int, default=20, help="kill -9 trials per kind (scan, store)")
    parser.add_argument("--sessions", default="1,4,16", help="concurrent sessions, comma-separated")
    parser.add_argument("--kind-sessions", default="1,16", help="sessions for the load table by message kind")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    started = time.perf_counter()
    print("# DealScout reliability")
    figures: dict = {}
    if "fuzz" not in skip:
        figures["fuzz"] = fuzz(args.fuzz_examples)
    if "attacks" not in skip:
        figures["attacks"] = attacks()
    if "faults" not in skip:
        figures["faults"] = faults()
    if "crash" not in skip:
        figures["crash"] = crashes(args.crash_trials, args.seed)
    if "load" not in skip:
        figures["load"] = load([int(n) for n in args.sessions.split(",")])
    if "kinds" not in skip:
        figures["kinds"] = kinds([int(n) for n in args.kind_sessions.split(",")])
    if "audit" not in skip:
        figures["audit"] = audit()
    section("Summary")
    if "fuzz" in figures:
        f = figures["fuzz"]
        print(f"- fuzz: {f['total']:,} generated cases over {len(f['cases'])} entry points; {f['pytest']}")
    if "attacks" in figures:
        print(f"- attacks held (issue 16): {figures['attacks']['held']} / {figures['attacks']['total']}")
    if "faults" in figures:
        print(f"- faults survived: {figures['faults']['survived']} / {figures['faults']['total']}")
    for name, r in figures.get("crash", {}).items():
        print(f"- crash, {name.split(' (')[0]}: {r['trials']} trials, {r['kills_mid_run']} kills mid-run, "
              f"lost {r['lost']}, shown twice {r['duplicated']}")
    if "load" in figures:
        worst = max(figures["load"]["sessions"].items(), key=lambda kv: kv[0])
        print(f"- load: {sum(r['lost'] for r in figures['load']['sessions'].values())} requests lost; "
              f"p95 {worst[1]['p95_s']:.2f} s at {worst[0]} sessions; burst refusals explained: "
              f"{list(figures['load']['burst']['messages'])}")
    for kind, by_n in figures.get("kinds", {}).items():
        print(f"- {kind}: " + "; ".join(f"{n} sessions p50 {r['p50_s']:.2f} s, p95 {r['p95_s']:.2f} s, "
                                        f"{r['answered']}/{r['requests']} answered" for n, r in by_n.items()))
    if "audit" in figures:
        a = figures["audit"]
        print(f"- pip-audit: {'vulnerable: ' + str(a['vulnerable']) if a.get('ran') else 'not run: ' + a['why'][:120]}")
    print(f"\n({time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
