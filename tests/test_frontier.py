"""Frontier agent: neighbours' estimate by default, a trusted LLM's number only when sane."""

from __future__ import annotations

import math

import pytest

from agents.pricing.frontier import FrontierAgent, frontier_asks_llm, neighbour_estimate
from agents.pricing.text import DescriptionError, clean_description
from models.breaker import ModelBreaker
from models.llm import ChatResponse, FakeChatModel, ToolCall
from models.text import first_amount as parse_price_text
from models.types import Neighbour


def near(price: float, similarity: float, title: str = "thing") -> Neighbour:
    return Neighbour(title=title, category="Electronics", price=price, similarity=similarity)


NEIGHBOURS = [near(100, 0.9, "Bluetooth speaker A"), near(120, 0.8, "Bluetooth speaker B"),
              near(80, 0.7), near(400, 0.3), near(90, 0.6)]


class FakeStore:
    """Answers every query with the same neighbours and remembers what it was asked."""

    def __init__(self, neighbours: list[Neighbour]):
        self.neighbours = neighbours
        self.queries: list[str] = []

    def query(self, text: str, k: int = 5) -> list[Neighbour]:
        self.queries.append(text)
        return self.neighbours[:k]

    def query_batch(self, texts: list[str], k: int = 5) -> list[list[Neighbour]]:
        return [self.query(t, k) for t in texts]


def answer(price) -> ChatResponse:
    return ChatResponse(tool_calls=[ToolCall(id="1", name="answer", arguments={"price": price})])


def test_neighbour_estimate_is_a_weighted_geometric_mean() -> None:
    assert neighbour_estimate([near(10, 0.5), near(1000, 0.5)]) == pytest.approx(100)
    # the close match dominates a loose one
    assert neighbour_estimate([near(10, 0.9), near(1000, 0.3)]) < 15
    with pytest.raises(ValueError):
        neighbour_estimate([])


@pytest.mark.parametrize(("text", "value"), [
    ("$1,299.99", 1299.99), ("about 45 dollars", 45.0), ("Price is $ 12", 12.0),
    ("no idea", None), ("", None),
])
def test_parse_price_text(text: str, value: float | None) -> None:
    assert parse_price_text(text) == value


def test_untrusted_llm_is_never_called() -> None:
    llm = FakeChatModel([], name="local:smollm2")  # any call would raise: no scripted reply
    agent = FrontierAgent(FakeStore(NEIGHBOURS), llm, trust_llm=False)
    estimate = agent.estimate("Portable Bluetooth speaker, waterproof")
    assert estimate.value == pytest.approx(neighbour_estimate(NEIGHBOURS), abs=0.01)
    assert estimate.evidence == NEIGHBOURS and "similarity-weighted" in estimate.note
    assert llm.requests == []


def test_trusted_llm_number_is_used_and_sees_the_neighbours() -> None:
    llm = FakeChatModel([answer(135.0)], name="openai:gpt-4o-mini")
    estimate = FrontierAgent(FakeStore(NEIGHBOURS), llm, trust_llm=True).estimate("speaker")
    assert estimate.value == 135.0 and "openai:gpt-4o-mini" in estimate.note
    prompt = llm.requests[0]["messages"][-1].content
    assert "Bluetooth speaker A: $100.00" in prompt and "speaker" in prompt


def test_insane_llm_number_falls_back_and_says_so() -> None:
    llm = FakeChatModel([answer(99_999.0)], name="openai:gpt-4o-mini")
    estimate = FrontierAgent(FakeStore(NEIGHBOURS), llm, trust_llm=True).estimate("speaker")
    assert estimate.value == pytest.approx(neighbour_estimate(NEIGHBOURS), abs=0.01)
    assert "not used" in estimate.note and "outside the plausible" in estimate.note


def test_llm_without_tool_calls_is_read_as_text() -> None:
    llm = FakeChatModel(["I think", "roughly", "It is about $110."], name="anthropic:haiku")
    estimate = FrontierAgent(FakeStore(NEIGHBOURS), llm, trust_llm=True).estimate("speaker")
    assert estimate.value == 110.0


def test_failing_llm_falls_back() -> None:
    llm = FakeChatModel([], name="openai:gpt-4o-mini")
    estimate = FrontierAgent(FakeStore(NEIGHBOURS), llm, trust_llm=True).estimate("speaker")
    assert estimate.value == pytest.approx(neighbour_estimate(NEIGHBOURS), abs=0.01)
    assert "failed" in estimate.note


def test_a_failed_llm_is_skipped_for_a_while_then_asked_again() -> None:
    """A re-check of issue 16: with the hosted model dead, every estimate still asked it (8
    requests, ~6 s each)."""
    clock = [0.0]
    llm = FakeChatModel([], name="openai:gpt-4o-mini")
    agent = FrontierAgent(FakeStore(NEIGHBOURS), llm, trust_llm=True)
    agent.breaker = ModelBreaker(open_s=60, clock=lambda: clock[0])
    agent.estimate("speaker")
    asked = len(llm.requests)
    assert asked > 0
    second = agent.estimate("speaker")
    assert len(llm.requests) == asked and "skipped for a while" in second.note
    assert second.value == pytest.approx(neighbour_estimate(NEIGHBOURS), abs=0.01)
    clock[0] = 61
    llm.replies.append(answer(110.0))
    assert agent.estimate("speaker").value == 110.0  # tried again after the pause, and it works


def test_trust_follows_the_provider_unless_configured() -> None:
    assert not frontier_asks_llm("local")
    assert not frontier_asks_llm("ollama:llama3.2")
    assert frontier_asks_llm("openai:gpt-4o-mini")
    assert frontier_asks_llm("local", "always") and not frontier_asks_llm("openai:x", "never")


@pytest.mark.parametrize("bad", ["", "   \n\t ", "<p> </p>", "&nbsp;"])
def test_empty_descriptions_are_a_clear_error(bad: str) -> None:
    with pytest.raises(DescriptionError, match="empty"):
        FrontierAgent(FakeStore(NEIGHBOURS)).estimate(bad)


def test_html_huge_and_foreign_descriptions_are_priced() -> None:
    store = FakeStore(NEIGHBOURS)
    agent = FrontierAgent(store)
    html = "<div><script>alert(1)</script><b>Sony</b> speaker &amp; case<br/></div>"
    assert agent.estimate(html).value > 0
    assert store.queries[-1] == "Sony speaker & case"
    huge = agent.estimate("speaker " * 1_300_000)  # ~10 MB
    assert huge.value > 0 and len(store.queries[-1]) <= 4000
    assert agent.estimate("Altavoz Bluetooth portátil, resistente al agua").value > 0
    assert agent.estimate("便携式蓝牙音箱").value > 0


def test_batch_matches_single() -> None:
    agent = FrontierAgent(FakeStore(NEIGHBOURS))
    batch = agent.estimate_batch(["a speaker", "another speaker"])
    assert [e.value for e in batch] == [agent.estimate("a speaker").value] * 2


def test_clean_description_keeps_ordinary_text() -> None:
    assert clean_description("  Drill  20V\n\nkit ") == "Drill 20V kit"
    assert clean_description("5 < 6 and 7 > 3") == "5 < 6 and 7 > 3"


def test_real_store_prices_from_similar_items(tmp_path) -> None:
    from models.embeddings import Embedder
    from tests.test_vectorstore import make_items
    from vectorstore.store import VectorStore

    store = VectorStore.open(Embedder(), chroma_dir=tmp_path / "chroma")
    store.build(make_items(36), progress=False)
    estimate = FrontierAgent(store, k=3).estimate("Stainless dishwasher, 24 inch, built in")
    assert all(n.category == "Appliances" for n in estimate.evidence)
    assert 600 < estimate.value < 700 and math.isfinite(estimate.latency_s)
