from typer.testing import CliRunner

import launch
from models.config import Settings


def test_lists_from_env_and_key_aliases(monkeypatch):
    monkeypatch.setenv("DEALSCOUT_FEEDS", "https://a.example/rss, https://b.example/rss")
    monkeypatch.setenv("DEALSCOUT_NOTIFY_URLS", '["json://127.0.0.1:9/hook"]')
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("DEALSCOUT_LLM_PLANNER", "openai:gpt-4o-mini")
    s = Settings()
    assert s.feeds == ["https://a.example/rss", "https://b.example/rss"]
    assert s.notify_urls == ["json://127.0.0.1:9/hook"]
    assert s.openai_api_key.get_secret_value() == "sk-test-secret"
    assert "sk-test-secret" not in repr(s) and "sk-test-secret" not in str(s.model_dump())
    assert s.llm_for("planner") == "openai:gpt-4o-mini" and s.llm_for("frontier") == "local"


def test_bad_values_are_one_line_errors(monkeypatch):
    for name, value in [("DEALSCOUT_THRESHOLD", "cheap"), ("DEALSCOUT_THRESHOLD", "-5"),
                        ("DEALSCOUT_FEEDS", "[broken"), ("DEALSCOUT_LLM_MAX_RETRIES", "99"),
                        ("DEALSCOUT_EMBEDDING_TOKENS", "1000")]:
        monkeypatch.setenv(name, value)
        result = CliRunner().invoke(launch.app, ["evaluate", "--model", "constant"])
        assert result.exit_code == 1, (name, value)
        assert "bad configuration" in result.output and "Traceback" not in result.output
        monkeypatch.delenv(name)
