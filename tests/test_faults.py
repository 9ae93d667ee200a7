"""Faults: a whole scan with a delay, a reset, 429, 500, a body cut short or a broken 200 in front
of the feed, the notifier (apprise json://) and the LLM (the OpenAI adapter via base_url); the
chat under a failing LLM; kill -9 at random points of scans and of the vector-store build, then
a restart; concurrent sessions and a burst beyond the app's queue.

benchmarks/reliability.py runs the same with more trials and sessions (tests/faults.py has it all).
"""

from __future__ import annotations

import random
import threading

import pytest

from models.llm import Message, ProviderError
from models.openai_provider import OpenAIChatModel
from tests.chat_load import kind_load_run
from tests.faults import (
    FAULTS,
    TARGETS,
    RunningApp,
    burst_run,
    chat_under_fault,
    load_run,
    scan_crash_trial,
    scan_under_fault,
    store_crash_trial,
)
from tests.servers import LoopbackServer, respond

# every persistent fault, and the transient ones that must be retried away
SCENARIOS = [(t, k, False) for t in TARGETS for k in FAULTS] + [
    (t, k, True) for t in TARGETS for k in ("reset", "429", "garbled")]


@pytest.mark.parametrize(("target", "kind", "transient"), SCENARIOS,
                         ids=[f"{t}-{k}-{'once' if tr else 'always'}" for t, k, tr in SCENARIOS])
def test_a_scan_under_a_fault_finishes_with_a_clear_outcome(tmp_path, target, kind, transient):
    run = scan_under_fault(tmp_path, target, kind, transient=transient)
    assert run.problems == [], run
    if not (transient and kind != "garbled") and not (target == "notifier" and kind == "garbled"):
        assert run.reasons, "the user is told what went wrong"


def test_notifier_faults_after_the_receiver_acted_repeat_only_under_the_same_key(tmp_path):
    """A receiver that answered too late, or whose answer was cut, did get the alert: the retry
    sends it again, with the same Idempotency-Key, so the receiver can show it once."""
    run = scan_under_fault(tmp_path, "notifier", "truncated")
    assert run.survived and run.wire_repeats >= 3  # each of the 3 alerts arrived again


@pytest.mark.parametrize("kind", FAULTS)
def test_the_chat_under_a_failing_llm_says_so(kind):
    run = chat_under_fault(kind)
    assert run.problems == [], run


@pytest.mark.parametrize("body", [
    b'{"id":"x","object":"chat.completion","choices":[{"index":0,"mess',  # cut, length consistent
    b"<html><body>502 Bad Gateway</body></html>", b"null", b"[1, 2]", b'"text"',
    b'{"id":"x","object":"chat.completion","created":0,"model":"m","choices":[]}',
    b'{"id":"x","object":"chat.completion","created":0,"model":"m","choices":[{"index":0}]}',
    b'{"id":"x","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":"many"}}',
])
def test_a_broken_200_from_an_openai_compatible_server_is_a_provider_error(body):
    with LoopbackServer() as server:
        server.route("/v1/chat/completions", respond(body, "application/json"))
        llm = OpenAIChatModel("fake", api_key=None, base_url=server.url("/v1"), max_retries=0)
        with pytest.raises(ProviderError, match="openai:fake at http://127.0.0.1"):
            llm.chat([Message(role="user", content="hi")])


# --- crash consistency -------------------------------------------------------------------------

def test_kill_9_at_random_points_of_scans_loses_and_repeats_nothing(tmp_path):
    rng = random.Random(8)
    trials = [scan_crash_trial(tmp_path / f"trial-{n}", rng, deals=16, kills=2) for n in range(3)]
    assert all(t.errors == [] for t in trials), trials
    assert sum(t.kills for t in trials) >= 3, trials  # most kills landed mid-scan
    assert [(t.lost, t.duplicated) for t in trials] == [(0, 0)] * len(trials), trials


def test_kill_9_during_the_vector_store_build_then_a_rebuild_is_whole(tmp_path):
    trial = store_crash_trial(tmp_path / "chroma", random.Random(8), items=64, kills=2)
    assert trial.errors == [] and trial.kills >= 1, trial
    assert (trial.lost, trial.duplicated) == (0, 0), trial


# --- load --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with RunningApp(tmp_path_factory.mktemp("load"), pricer_seconds=0.05) as running:
        yield running


@pytest.mark.parametrize("sessions", [1, 4])
def test_concurrent_sessions_lose_no_request(app, sessions):
    result = load_run(app.url, sessions, requests_per_session=4, deadline_s=300)  # a bound for a hang
    assert result.requests == 4 * sessions
    assert (result.answered, result.errors, result.lost) == (result.requests, [], 0), result


def test_the_chat_load_comes_from_a_process_of_its_own(app):
    """benchmarks/reliability.py's load table by message kind: sessions from another process,
    each answer checked for its kind, nothing lost."""
    result = kind_load_run(app.url, "price", sessions=3, messages_per_session=2, deadline_s=300)
    assert (result.requests, result.answered, result.errors, result.lost) == (6, 6, [], 0), result
    assert len(result.latencies) == 6 and result.seconds > 0


def test_a_burst_beyond_the_queue_is_refused_with_a_reason(app):
    """The pricer is held until the app's queue has counted every job (queued or refused), so
    the queue is full whatever the machine's load; no deadline releases it early."""
    gate = threading.Event()
    app.services.pricer.gate = gate
    try:
        with app.arrivals(80) as arrived:
            result = burst_run(app.url, jobs=80, clients=8, timeout_s=300, release=gate, arrived=arrived)
    finally:
        app.services.pricer.gate = None
        gate.set()
    assert result.lost == 0, result
    assert result.answered >= 64 and result.errors, result  # the queue holds 64 waiting jobs
    assert {e for e in result.errors} == {"QueueError: Queue is full! Please try again."}
