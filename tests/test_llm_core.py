"""The provider layer apart from any one adapter: structured output, the fake, key redaction,
choosing a model from configuration, `llm check` and `chat` through the real CLI."""

from __future__ import annotations

import socket

import pytest
from llm_replay import replay
from pydantic import BaseModel, Field, SecretStr
from typer.testing import CliRunner

import launch
from models.config import Settings
from models.llm import (
    CallLog,
    ChatResponse,
    FakeChatModel,
    Message,
    ProviderError,
    Tool,
    ToolCall,
    Usage,
    forced_tool,
    redact,
    structured,
)
from models.providers import check_providers, make_chat_model, parse_spec


class Valuation(BaseModel):
    """What a product is worth."""

    price: float = Field(gt=0)
    currency: str = "USD"


ASK = [Message(role="user", content="What is it worth?")]
PROVIDER_ENV = ["OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "OLLAMA_HOST", "LLM",
                "LLM_FRONTIER", "LLM_PLANNER", "LLM_SCANNER", "LLM_MESSAGING", "LOCAL_MODEL_PATH"]


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"DEALSCOUT_{name}", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    return monkeypatch


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_structured_repairs_once_then_gives_up():
    bad = FakeChatModel.tool_call("answer", price="about forty dollars")
    good = FakeChatModel.tool_call("answer", price=42.5)
    fake = FakeChatModel([bad, good])
    assert structured(fake, ASK, Valuation) == Valuation(price=42.5)
    assert fake.requests[0]["tool_choice"] == "answer"
    assert "did not validate" in fake.requests[1]["messages"][-1].content

    with pytest.raises(ProviderError, match="does not fit Valuation"):
        structured(FakeChatModel([bad, bad]), ASK, Valuation)


def test_structured_shows_the_model_arguments_that_were_not_json():
    broken = ChatResponse(tool_calls=[ToolCall.from_json("c1", "answer", '{"price": 42.5')])
    fake = FakeChatModel([broken, FakeChatModel.tool_call("answer", price=42.5)])
    assert structured(fake, ASK, Valuation).price == 42.5
    assert fake.requests[1]["messages"][-2].content == '{"price": 42.5'


def test_tool_call_arguments_from_json():
    assert ToolCall.from_json("c", "t", '{"a": 1}').arguments == {"a": 1}
    assert ToolCall.from_json("c", "t", None).arguments == {}
    assert ToolCall.from_json("c", "t", "[1, 2]").raw_arguments == "[1, 2]"


def test_fake_records_calls_and_scripted_tool_calls():
    fake = FakeChatModel(["hi", FakeChatModel.tool_call("scan_deals", limit=3)])
    assert "".join(fake.stream(ASK)) == "hi"
    reply = fake.chat(ASK)
    assert reply.tool_calls[0].arguments == {"limit": 3} and reply.model == "fake:scripted"
    assert len(fake.calls.records) == 2
    with pytest.raises(ProviderError, match="no scripted reply left"):
        fake.chat(ASK)


def test_call_log_keeps_recent_calls_and_totals():
    log = CallLog("x:y", keep=2)
    for n in (1, 2, 3):
        log.add(Usage(input_tokens=n, output_tokens=10 * n), started=0.0)
    assert len(log.records) == 2 and log.total() == Usage(input_tokens=5, output_tokens=50)


def test_redact_removes_keys_and_their_masked_echoes():
    key = "sk-proj-Zx81kLmN0pQrStUvWxYz0123456789abcd"
    text = redact(f"bad key {key}; provided: sk-proj-****abcd; id req_1", [key])
    assert key not in text and "abcd" not in text and "req_1" in text


def test_forced_tool_follows_the_choice():
    tools = [Tool(name="a", description="A.", parameters={}), Tool(name="b", description="B.", parameters={})]
    assert forced_tool(tools, "b").name == "b"
    assert forced_tool(tools, "auto") is None and forced_tool(tools, "none") is None
    assert forced_tool(tools, "required") is None  # several: the adapter must let the model pick
    assert forced_tool(tools[:1], "required").name == "a"
    with pytest.raises(ProviderError, match="not among the tools"):
        forced_tool(tools, "x")


def test_specs_and_missing_keys(clean_env):
    settings = Settings()
    assert parse_spec("openai") == ("openai", "gpt-4o-mini")
    assert parse_spec(" Ollama:qwen2.5:0.5b ") == ("ollama", "qwen2.5:0.5b")
    with pytest.raises(ProviderError, match="unknown LLM provider 'gpt4'"):
        make_chat_model("gpt4", settings)
    with pytest.raises(ProviderError, match="OpenAI is not configured: set DEALSCOUT_OPENAI_API_KEY"):
        make_chat_model("openai:gpt-4o-mini", settings)
    with pytest.raises(ProviderError, match="Anthropic is not configured"):
        make_chat_model("anthropic", settings)
    keyed = settings.model_copy(update={"anthropic_api_key": SecretStr("sk-ant-test"), "llm_max_retries": 0})
    assert make_chat_model("anthropic", keyed).name == "anthropic:claude-haiku-4-5"
    assert make_chat_model("ollama", settings).name == "ollama:llama3.2"


def test_check_offline_local_ok_others_not_configured(clean_env):
    statuses = {s.spec: s for s in check_providers(Settings())}
    assert statuses["local"].ok and statuses["local"].used_by == ["default"]
    for provider in ("openai", "anthropic", "ollama"):
        assert not statuses[provider].configured and statuses[provider].detail == "not configured"


def test_llm_check_cli_reports_each_provider_without_traceback(clean_env):
    with replay("openai/say_ok.json") as wire:
        clean_env.setenv("DEALSCOUT_OPENAI_BASE_URL", wire.url("/v1"))
        clean_env.setenv("DEALSCOUT_LLM_FRONTIER", "openai:llama3.2")
        clean_env.setenv("DEALSCOUT_LLM_PLANNER", "ollama:llama3.2")
        clean_env.setenv("DEALSCOUT_OLLAMA_HOST", f"http://127.0.0.1:{free_port()}")
        result = CliRunner().invoke(launch.app, ["llm", "check"])
    lines = result.output.splitlines()
    assert result.exit_code == 1  # the planner's provider does not answer
    assert "Traceback" not in result.output
    assert any(line.startswith("ok") and "openai:llama3.2 (used by frontier)" in line for line in lines)
    assert any(line.startswith("ok") and line.split()[1] == "local" for line in lines)
    assert any(line.startswith("FAIL") and "no Ollama server answers" in line for line in lines)
    assert any(line.startswith("--") and "anthropic: not configured" in line for line in lines)


def test_chat_cli_answers_with_the_local_default(clean_env):
    result = CliRunner().invoke(launch.app, ["chat", "hello", "--max-tokens", "12"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


def test_chat_cli_missing_key_is_one_clear_line(clean_env):
    result = CliRunner().invoke(launch.app, ["chat", "hello", "--llm", "anthropic"])
    assert result.exit_code == 1
    assert "Anthropic is not configured" in result.output and "Traceback" not in result.output
