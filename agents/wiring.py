"""Build the running system from a Settings object: the one place objects are wired together,
shared by the CLI, the scheduled scans and the app."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

from agents.chat.planner import PlanningAgent
from agents.chat.router import Router
from agents.chat.small_talk import SmallTalk
from agents.chat.tools import DealTools
from agents.feeds import FeedFetcher
from agents.memory import Memory
from agents.messaging import MessagingAgent, Notifier
from agents.pages import PageReader
from agents.price_history import OfferGroups
from agents.pricing import load_pricers, main_pricer, make_embedder
from agents.scanner import Scanner
from agents.settings_store import RunSettings, SettingsStore
from agents.watchlist import Watchlist
from agents.workflow import DealPipeline
from models.breaker import ModelBreaker
from models.config import Settings
from models.llm import ChatModel
from models.providers import make_chat_model
from models.types import Pricer

log = logging.getLogger(__name__)
@dataclass
class Services:
    """Everything heavy, built lazily once per process."""

    settings: Settings
    overrides: dict[str, object] = field(default_factory=dict)  # tests hand in fakes by name

    def _get(self, name: str, build):
        if name not in self.overrides:
            self.overrides[name] = build()
        return self.overrides[name]

    @cached_property
    def memory(self) -> Memory:
        return self._get("memory", lambda: Memory(self.settings.database))

    @cached_property
    def settings_store(self) -> SettingsStore:
        return self._get("settings_store",
                         lambda: SettingsStore(self.memory, RunSettings.defaults(self.settings)))

    @cached_property
    def embedder(self):
        return self._get("embedder", lambda: make_embedder(self.settings))

    @cached_property
    def loaded_pricers(self) -> tuple[dict[str, Pricer], dict[str, str]]:
        """The pricing agents that load, and why each other one does not."""
        return load_pricers(self.settings, self.embedder)

    @cached_property
    def pricers(self) -> dict[str, Pricer]:
        return self._get("pricers", lambda: self.loaded_pricers[0])

    @cached_property
    def pricer(self) -> Pricer:
        return self._get("pricer", lambda: main_pricer(self.pricers))

    @cached_property
    def llm(self) -> ChatModel:
        return self._get("llm", lambda: make_chat_model(self.settings.llm_for("planner"), self.settings))

    def agent_llm(self, agent: str) -> ChatModel | None:
        """The model DEALSCOUT_LLM_<AGENT> names, or None when unset: the agent keeps its plain path
        (a feed's own description, a computed alert) rather than calling the default model per deal."""
        spec = getattr(self.settings, f"llm_{agent}")
        return make_chat_model(spec, self.settings) if spec else None

    def scanner(self, fetcher: FeedFetcher) -> Scanner:
        """The scanner of every scan, a full one or a dry run: refined by DEALSCOUT_LLM_SCANNER when set."""
        return Scanner(fetcher, refiner=self.agent_llm("scanner"))

    @cached_property
    def router(self) -> Router:
        return self._get("router", lambda: Router(self.embedder))

    @cached_property
    def messenger(self) -> MessagingAgent:
        def build() -> MessagingAgent:
            urls = self.settings.notify_urls
            return MessagingAgent(self.memory, Notifier(urls) if urls else None,
                                  llm=self.agent_llm("messaging"))

        return self._get("messenger", build)

    @cached_property
    def pipeline(self) -> DealPipeline:
        def build() -> DealPipeline:
            fetcher = FeedFetcher(validators=self.memory, allow_private=self.settings.allow_private_feeds)
            saved = self.settings_store.load()
            return DealPipeline(self.scanner(fetcher), self.memory, self.pricer, self.messenger,
                                feeds=saved.feeds, threshold=saved.threshold,
                                notify_best=saved.notify_best,
                                lock_path=self.settings.data_dir / "scan.lock",
                                watchlist=self.watchlist, offers=self.offers,
                                digest=saved.digest_hour is not None)

        return self._get("pipeline", build)

    @cached_property
    def watchlist(self) -> Watchlist:
        return self._get("watchlist", lambda: Watchlist(self.memory, self.embedder))

    @cached_property
    def offers(self) -> OfferGroups:
        return self._get("offers", lambda: OfferGroups(self.memory, self.embedder))

    @cached_property
    def page_reader(self) -> PageReader:
        return self._get("page_reader", lambda: PageReader(self.memory))

    @cached_property
    def small_talk(self) -> SmallTalk:
        return self._get("small_talk", SmallTalk)

    @cached_property
    def model_breaker(self) -> ModelBreaker:
        return self._get("model_breaker", ModelBreaker)

    def toolbox(self, user: str = "") -> DealTools:
        return DealTools(self.pipeline, self.pricer, self.memory, self.messenger, self.page_reader, owner=user,
                         settings=self.settings_store)

    def planner(self, user: str = "") -> PlanningAgent:
        """A planning agent for one chat session (cheap: it shares the heavy parts); `user` owns
        the session's watches (the app's login name under --auth)."""
        return PlanningAgent(self.llm, self.toolbox(user), self.router, recorder=self.memory,
                             small_talk=self.small_talk, breaker=self.model_breaker)
