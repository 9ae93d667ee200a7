"""Small talk with the local model: fixed answers for what is recognised, the model for the rest
behind a cap and a time limit (a controlled slow model, no timing assertions), and the model for
everything with a hosted one. Then the running app: greetings from many sessions at once are
answered while the model is stuck."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client

from agents.chat.planner import PlanningAgent
from agents.chat.small_talk import HELP, ModelGate, SmallTalk, canned_reply
from models.llm import ChatResponse, FakeChatModel
from tests.running_app import running_app
from tests.test_app import answer
from tests.test_planner import FixedRouter, RecordingToolbox, run


class HeldModel:
    """An in-process model whose every reply waits until the test releases it."""

    name = "local:held"
    supports_tools = False
    in_process = True

    def __init__(self, reply: str = "Ha, a joke about prices. That is all."):
        self.reply = reply
        self.entered = threading.Event()  # a call has started
        self.release = threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def chat(self, messages, **kwargs):
        with self._lock:
            self.calls += 1
        self.entered.set()
        assert self.release.wait(timeout=60), "the test never released the model"
        return ChatResponse(content=self.reply)


@pytest.mark.parametrize("message, starts", [
    ("hello there", "Hello! I'm DealScout."),
    ("Hi!", "Hello! I'm DealScout."),
    ("good morning, DealScout", "Hello! I'm DealScout."),
    ("thanks a lot", "You're welcome!"),
    ("Thank you so much!", "You're welcome!"),
    ("who are you", "I'm DealScout, an open-source assistant"),
    ("hey, who are you?", "I'm DealScout, an open-source assistant"),
    ("what's your name?", "I'm DealScout, an open-source assistant"),
    ("what can you do", HELP),
    ("help", HELP),
    ("how do I use this?", HELP),
    ("can you help me?", HELP),
    ("could you help me out please", HELP),
    ("I need some help", HELP),
    ("where do I start?", HELP),
    ("hello, how are you today?", "Doing well, thanks"),
])
def test_recognised_small_talk_gets_a_fixed_answer_without_the_model(message, starts):
    model = HeldModel()
    model.release.set()
    assert SmallTalk().answer(model, message).startswith(starts)
    assert model.calls == 0


@pytest.mark.parametrize("message", ["tell me something funny", "hello, is the Sony XM5 any good?",
                                     "who are you voting for", "thanks but the drill was $90 at Lowe's",
                                     "can you help me find a cheap TV", "help me choose a laptop",
                                     "hi " * 20, ""])
def test_anything_else_is_not_recognised(message):
    assert canned_reply(message) is None


def test_the_rest_goes_to_the_local_model():
    model = HeldModel("Why did the deal cross the road? To get to the other price. Really. More.")
    model.release.set()
    answer = SmallTalk().answer(model, "tell me something funny")
    assert answer.startswith("Why did the deal cross the road? To get to the other price.")
    assert "More." not in answer and answer.endswith(HELP)  # two sentences, then the help text
    assert model.calls == 1


def test_a_hosted_model_answers_all_small_talk():
    model = FakeChatModel(["Hey! Good to see you."], name="openai:gpt-4o-mini")
    assert SmallTalk().answer(model, "hello there").startswith("Hey! Good to see you.")
    assert len(model.requests) == 1
    assert SmallTalk().answer(FakeChatModel([]), "hello there") == HELP  # its failure: the help text


def test_the_cap_and_the_time_limit_fall_back_to_the_help_text():
    model = HeldModel()
    talk = SmallTalk(ModelGate(cap=1, time_limit_s=0.2, slot_wait_s=0.2))
    # The model never answers within the limit (it waits for the test): the help text answers.
    assert talk.answer(model, "tell me something funny") == HELP
    assert model.entered.wait(timeout=30)
    # The first call still holds the one slot, in the background: the next caller does not queue
    # behind it for the model, it gets the help text, and the model is not asked again.
    assert talk.answer(model, "write me a poem") == HELP
    assert model.calls == 1
    model.release.set()
    talk.gate.time_limit_s = talk.gate.slot_wait_s = 60  # time for the slot to come back, however busy the machine
    assert talk.answer(model, "write me a poem").startswith("Ha, a joke about prices.")
    assert model.calls == 2


def test_the_planner_answers_small_talk_through_its_small_talk():
    model = HeldModel()
    agent = PlanningAgent(model, RecordingToolbox(), FixedRouter(None), native_tools=False)
    assert run(agent, "thanks a lot")[-1].text.startswith("You're welcome!")
    assert model.calls == 0


def test_greetings_from_many_sessions_are_answered_while_the_model_is_stuck(tmp_path):
    model = HeldModel()
    messages = ["hello there", "thanks a lot", "who are you", "what can you do"] * 3
    with running_app(tmp_path, ["traps.xml"], model) as app:
        app.services.small_talk = SmallTalk(ModelGate(cap=1, time_limit_s=0.5))
        clients = [Client(app.url, verbose=False) for _ in range(4)]
        # One unrecognised message takes the model's only slot and keeps it: the model is held.
        stuck = clients[0].submit("tell me something funny", [], api_name="/chat")
        assert model.entered.wait(timeout=60)
        with ThreadPoolExecutor(len(messages)) as pool:
            replies = list(pool.map(lambda pair: pair[1].predict(pair[0], [], api_name="/chat")[1],
                                    zip(messages, clients * 3, strict=True)))
        assert answer(stuck.result(timeout=60)[1]).startswith("I can value a product")  # the time limit
        model.release.set()
    answers = [answer(r) for r in replies]
    assert all(a.startswith(("Hello! I'm DealScout", "You're welcome", "I'm DealScout", "I can value"))
               for a in answers), answers
    assert model.calls == 1
