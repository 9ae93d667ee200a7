"""Watches in the running app under --auth: each logged-in user (Gradio's request username) has
their own, made in the chat; a scan alerts once for a match, to the inbox here."""

from __future__ import annotations

import pytest
from gradio_client import Client

from models.llm import FakeChatModel
from tests.running_app import running_app
from tests.test_app import answer, chat

USERS = [("alice", "alice-pw"), ("bob", "bob-pw")]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("watches"), ["traps.xml"], FakeChatModel([]), auth=USERS) as running:
        yield running


def test_each_user_has_their_own_watches_and_a_match_alerts_once(app):
    alice = Client(app.url, auth=USERS[0], verbose=False)
    bob = Client(app.url, auth=USERS[1], verbose=False)
    said = answer(chat(alice, "alert me when a Sony WH-1000XM5 drops under $250"))
    assert said.startswith("Watching #1 Sony WH-1000XM5 under $250.00")
    assert answer(chat(bob, "what am I watching?")).startswith("You are not watching anything yet")
    assert "#1 Sony WH-1000XM5 under $250.00" in answer(chat(alice, "what am I watching?"))
    assert "not watching anything" in answer(chat(bob, "stop watching the Sony"))
    assert [w.owner for w in app.services.watchlist.watches()] == ["alice"]

    alice.predict(api_name="/scan_deals")
    alice.predict(api_name="/scan_deals")
    watch_alerts = [n for n in app.services.memory.inbox() if n.title.startswith("Watch:")]
    assert [n.title for n in watch_alerts] == ["Watch: Sony WH-1000XM5 Wireless Noise Cancelling Headphones - $248.00"]
    assert "we estimate $300.00" in watch_alerts[0].body
