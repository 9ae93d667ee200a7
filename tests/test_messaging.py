"""Messaging: alert text, real apprise json:// delivery to a loopback receiver, the notifier being
down, the inbox when no URL is set, LLM wording, and scan -> one notification per deal, once."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from agents.feeds import FeedFetcher
from agents.memory import Memory
from agents.messaging import MessagingAgent, Notifier, alert_title, facts_line, llm_sentence
from agents.scanner import Scanner
from models.llm import ChatResponse, FakeChatModel, ToolCall
from models.types import Deal, Estimate, Opportunity
from tests.servers import LoopbackServer, respond

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"


def opportunity(n: int = 1, price: float = 249.99, value: float = 399.0) -> Opportunity:
    deal = Deal(title=f"Sony WH-1000XM5 Headphones #{n}", description="Headphones", price=price,
                url=f"https://example.com/sony/{n}", guid=f"sony-{n}")
    estimate = Estimate(agent="ensemble", value=value, low=350.0, high=450.0)
    return Opportunity(deal=deal, estimate=estimate, discount=value - price, reason="below estimate")


def stored(memory: Memory, opps: list[Opportunity]) -> None:
    from agents.scanner import ScanResult

    memory.record_scan(ScanResult(deals=[o.deal for o in opps]))
    for o in opps:
        memory.save_assessment(o.deal, o.estimate, o)


def notifier(server: LoopbackServer, **kwargs) -> Notifier:
    return Notifier([f"json://127.0.0.1:{server.port}/hook"], **({"backoff_s": 0.01} | kwargs))


def test_alert_text_has_price_estimate_discount_interval_title_and_link(tmp_path):
    opp = opportunity()
    assert facts_line(opp) == ("Price $249.99 | worth about $399.00 (range $350.00-$450.00) | "
                               "$149.01 below (37%)")
    with Memory(tmp_path / "m.db") as memory:
        alert = MessagingAgent(memory).compose(opp)
    assert alert.title == alert_title(opp) == "Deal: Sony WH-1000XM5 Headphones #1 - $249.99"
    assert alert.body.splitlines() == [opp.deal.title, facts_line(opp), opp.deal.url]
    assert alert.key == "sony-1"


def test_delivers_through_apprise_json_exactly_once(tmp_path):
    with LoopbackServer() as server, Memory(tmp_path / "m.db") as memory:
        server.route("/hook", respond(b"ok"))
        stored(memory, [opportunity(1), opportunity(2, price=100.0), opportunity(3, price=300.0)])
        agent = MessagingAgent(memory, notifier(server))
        queued = agent.queue(memory.undecided_opportunities(), best=2)
        assert len(queued) == 2
        report = agent.deliver_pending()
        assert (report.delivered, report.failed) == (2, 0)
        assert agent.deliver_pending().delivered == 0  # nothing pending: nothing sent again
        assert agent.queue(memory.undecided_opportunities(), best=2) == []
        received = [json.loads(r.body) for r in server.requests_to("/hook")]
    assert [r["title"] for r in received] == ["Deal: Sony WH-1000XM5 Headphones #2 - $100.00",
                                              "Deal: Sony WH-1000XM5 Headphones #1 - $249.99"]
    assert "https://example.com/sony/2" in received[0]["message"]
    with Memory(tmp_path / "m.db") as memory:
        assert [(n.status, n.channel) for n in memory.inbox()] == [("delivered", "json")] * 2
        decisions = sorted(o.decision for o in memory.list_opportunities())
    assert decisions == ["notify", "notify", "pass"]


def test_notifier_down_is_retried_recorded_and_delivered_later(tmp_path, caplog):
    with LoopbackServer() as server, Memory(tmp_path / "m.db") as memory:
        server.route("/hook", respond(b"unavailable", status=503))
        stored(memory, [opportunity(1)])
        agent = MessagingAgent(memory, notifier(server, attempts=3))
        agent.queue(memory.undecided_opportunities(), best=3)
        with caplog.at_level(logging.WARNING, logger="dealscout.messaging"):
            report = agent.deliver_pending()
        assert (report.delivered, report.failed) == (0, 1)
        assert len(server.requests_to("/hook")) == 3  # tenacity retried
        [pending] = memory.pending_notifications()
        assert pending.attempts == 1 and "503" in pending.last_error
        assert "will retry at the next round" in caplog.text
        server.route("/hook", respond(b"ok"))  # the service is back
        assert agent.deliver_pending().delivered == 1
        assert len(server.requests_to("/hook")) == 4
        assert agent.deliver_pending().delivered == 0 and memory.pending_notifications() == []


def test_unreachable_notifier_is_a_recorded_failure(tmp_path):
    with Memory(tmp_path / "m.db") as memory:
        stored(memory, [opportunity(1)])
        agent = MessagingAgent(memory, Notifier(["json://127.0.0.1:9/hook"], attempts=2,
                                                backoff_s=0.01))
        agent.queue(memory.undecided_opportunities(), best=3)
        report = agent.deliver_pending()
        assert report.failed == 1 and "after 2 tries" in report.errors[0]
        assert memory.pending_notifications()[0].last_error


def test_no_url_goes_to_the_inbox_and_the_log(tmp_path, caplog):
    with Memory(tmp_path / "m.db") as memory:
        stored(memory, [opportunity(1)])
        agent = MessagingAgent(memory)
        agent.queue(memory.undecided_opportunities(), best=3)
        with caplog.at_level(logging.INFO, logger="dealscout.messaging"):
            assert agent.deliver_pending().to_inbox == 1
        assert "Deal: Sony WH-1000XM5 Headphones #1" in caplog.text
        [note] = memory.inbox()
        assert (note.status, note.channel) == ("delivered", "inbox")


def test_free_form_message_is_sent_once_per_key(tmp_path):
    with LoopbackServer() as server, Memory(tmp_path / "m.db") as memory:
        server.route("/hook", respond(b"ok"))
        agent = MessagingAgent(memory, notifier(server))
        note = agent.message("chat-1", "Hello", "A message from the chat")
        assert note.status == "delivered"
        agent.message("chat-1", "Hello", "A message from the chat")
        assert len(server.requests_to("/hook")) == 1


def test_invalid_url_is_a_clear_error_without_secrets():
    with pytest.raises(ValueError, match="not a notification URL") as err:
        Notifier(["nosuchservice://user:hunter2@host"])
    assert "hunter2" not in str(err.value)


def _wording(sentence: str) -> FakeChatModel:
    return FakeChatModel([ChatResponse(tool_calls=[ToolCall(id="1", name="answer",
                                                            arguments={"sentence": sentence})])])


def test_llm_wording_is_used_when_it_only_states_given_numbers(tmp_path):
    llm = _wording("Noise-cancelling Sony headphones at $249.99, about 37% below their $399 value.")
    with Memory(tmp_path / "m.db") as memory:
        alert = MessagingAgent(memory, llm=llm).compose(opportunity())
    assert alert.body.splitlines()[0].startswith("Noise-cancelling Sony headphones")
    assert alert.body.splitlines()[2] == facts_line(opportunity())  # the facts stay computed
    assert "<deal>{" in llm.requests[0]["messages"][1].content


@pytest.mark.parametrize("sentence", ["Only $19 today!", "Buy at https://evil.example now",
                                      "x" * 400])
def test_llm_wording_with_invented_numbers_or_links_is_dropped(sentence):
    assert llm_sentence(_wording(sentence), opportunity()) is None
    assert llm_sentence(FakeChatModel([]), opportunity()) is None  # a failing model


def test_scan_to_notification_once_then_a_second_scan_sends_none(tmp_path):
    feeds = [FIXTURES / "traps.xml", FIXTURES / "atom.xml"]
    shared = os.environ.get("DEALSCOUT_TEST_FEEDS_DIR")
    if shared:
        feeds += [Path(shared) / name for name in ("dealnews_sample.xml", "dealnews_roundups.xml",
                                                   "techbargains.xml")]
    with LoopbackServer() as server, Memory(tmp_path / "m.db") as memory:
        server.route("/hook", respond(b"ok"))
        for path in feeds:
            server.route(f"/{path.name}", respond(path.read_bytes(), "application/rss+xml"))
        agent = MessagingAgent(memory, notifier(server))

        def scan_and_notify() -> None:
            with FeedFetcher(validators=memory, timeout_s=2, attempts=1, allow_private=True) as fetcher:
                memory.record_scan(Scanner(fetcher).scan([server.url(f"/{p.name}") for p in feeds]))
            for deal in memory.deals_to_assess():  # a fake pricer: everything is worth $60 more
                estimate = Estimate(agent="fake", value=deal.price + 60)
                memory.save_assessment(deal, estimate, Opportunity(deal=deal, estimate=estimate,
                                                                   discount=60, reason="test"))
            agent.queue(memory.undecided_opportunities(), best=100)
            agent.deliver_pending()

        scan_and_notify()
        first = [json.loads(r.body)["message"].splitlines()[-1] for r in server.requests_to("/hook")]
        scan_and_notify()
        second = len(server.requests_to("/hook"))
    expected = 4 + (8 if shared else 0)  # traps 3 + atom 1; captures 3 + 1 (+1 dup) + 4
    assert len(first) == len(set(first)) == expected
    assert second == expected  # the second scan sent nothing


def test_every_delivery_carries_the_same_idempotency_key(tmp_path):
    """A delivery a crash cut off (left 'sending' by a dead process) is sent again with the key
    of the first try, so the receiver can drop the repeat."""
    with LoopbackServer() as server, Memory(tmp_path / "m.db") as memory:
        server.route("/hook", respond(b"ok"))
        stored(memory, [opportunity(1)])
        agent = MessagingAgent(memory, notifier(server))
        agent.queue(memory.undecided_opportunities(), best=1)
        [note] = memory.pending_notifications()
        assert memory.claim_notification(note)
        agent.notifier.send(note.title, note.body, key=note.delivery_key)  # sent, then "killed":
        memory._db.execute("UPDATE notifications SET claimed_by = ?",  # the owner is gone
                           (memory.owner.rsplit(":", 2)[0] + ":999999999:dead",))
        report = agent.deliver_pending()
        assert (report.delivered, report.resumed) == (1, 1)
        first, again = server.requests_to("/hook")
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"] == note.delivery_key
    assert json.loads(again.body)["idempotency_key"] == note.delivery_key
    assert json.loads(first.body)["message"] == json.loads(again.body)["message"]


def test_concurrent_delivery_rounds_send_each_alert_once(tmp_path):
    """The scheduled scan and a chat's notify tool may deliver at the same moment: claims keep
    them from both sending one alert."""
    import threading

    from tests.servers import slow

    with LoopbackServer() as server, Memory(tmp_path / "m.db") as memory, \
            Memory(tmp_path / "m.db") as second:
        server.route("/hook", slow(0.05, respond(b"ok")))
        stored(memory, [opportunity(n, price=100.0 + n) for n in range(6)])
        MessagingAgent(memory).queue(memory.undecided_opportunities(), best=6)
        agents = [MessagingAgent(m, notifier(server)) for m in (memory, memory, second)]
        start = threading.Barrier(len(agents))
        reports = []

        def deliver(agent: MessagingAgent) -> None:
            start.wait()
            reports.append(agent.deliver_pending())

        threads = [threading.Thread(target=deliver, args=(a,)) for a in agents]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        keys = [r.headers["Idempotency-Key"] for r in server.requests_to("/hook")]
        assert memory.pending_notifications() == []
    assert len(keys) == len(set(keys)) == 6
    assert sum(r.delivered for r in reports) == 6


def test_a_delivery_killed_between_channels_is_not_repeated_where_it_was_shown(tmp_path):
    """kill -9 while the second of two channels is being retried (issue 16: a push shown twice):
    the restart sends only to the channel that did not confirm; receivers here do not dedupe."""
    import signal
    import subprocess
    import threading

    from tests.delivery_crash import ROOT, Receiver, deliver, notifier_urls, queue_alerts, worker_command

    db, second_refused, healthy = tmp_path / "dealscout.db", threading.Event(), threading.Event()
    queue_alerts(db, 1)

    def answer(path: str) -> int:
        if path == "/b" and not healthy.is_set():
            second_refused.set()
            return 500
        return 200

    with LoopbackServer() as server:
        receiver = Receiver(server, answer=answer)
        urls = notifier_urls(server)
        worker = subprocess.Popen(worker_command(db, urls, "60"), cwd=ROOT)  # retries /b after 60 s
        assert second_refused.wait(60)
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(60) == -signal.SIGKILL
        healthy.set()
        report = deliver(db, urls, attempts=1)
    assert (report.delivered, report.resumed) == (1, 1)
    assert sorted(receiver.shown.values()) == [1, 1] and {path for path, _ in receiver.shown} == {"/a", "/b"}
