"""The Gradio app running on loopback for tests: a tmp data dir, loopback feeds, a keyword pricer
(no trained artifacts needed), the real router, and a scripted model where one must talk.

    with running_app(tmp_path, feeds=["traps.xml"], llm=FakeChatModel([...])) as app:
        Client(app.url).predict("scan for deals now", api_name="/chat")
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.wiring import Services
from models.config import Settings
from models.types import Estimate
from tests.servers import LoopbackServer, respond
from tests.test_workflow import KeywordPricer
from ui.app import DealScoutApp
from ui.mcp_server import serve

FEEDS = Path(__file__).parent / "fixtures" / "feeds"


class StrictKeywordPricer(KeywordPricer):
    """The workflow tests' keyword pricer, refusing empty text as the real pricers do."""

    def estimate(self, description: str) -> Estimate:
        if not description.strip():
            raise ValueError("the description is empty: paste the product's title and details")
        return super().estimate(description)


class MemberPricer(StrictKeywordPricer):
    """One ensemble member, as the Price tab lists it: the keyword pricer's value for that member."""

    def __init__(self, name: str):
        self.name = name

    def estimate(self, description: str) -> Estimate:
        whole = super().estimate(description)
        return Estimate(agent=self.name, value=whole.members.get(self.name, whole.value))


@dataclass
class RunningApp:
    url: str
    services: Services
    feeds: LoopbackServer
    llm: Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(data_dir: Path, feeds: list[str], llm: Any, *, auth: list[tuple[str, str]] | tuple[str, str] | None = None,
                mcp: bool = False, launch: dict[str, Any] | None = None, activity_every_s: float = 10.0,
                **settings: Any) -> Iterator[RunningApp]:
    """With `auth`/`mcp`: launched as `launch.py app --auth user:pass --mcp` launches it."""
    with LoopbackServer() as server:
        for name in feeds:
            server.route(f"/{name}", respond((FEEDS / name).read_bytes(), "application/rss+xml"))
        config = Settings(_env_file=None, data_dir=data_dir, feeds=[server.url(f"/{n}") for n in feeds],
                          notify_urls=[], **{"allow_private_feeds": True, **settings})
        pricer = StrictKeywordPricer()
        pricers = {"forest": MemberPricer("forest"), "frontier": MemberPricer("frontier"), "ensemble": pricer}
        services = Services(config, overrides={"pricer": pricer, "pricers": pricers, "llm": llm})
        port = free_port()
        demo = serve(DealScoutApp(services, activity_every_s=activity_every_s).build(mcp=mcp), auth=auth, mcp=mcp, login=launch, server_name="127.0.0.1",
                     server_port=port, quiet=True, show_error=True)
        try:
            yield RunningApp(f"http://127.0.0.1:{port}/", services, server, llm)
        finally:
            demo.close()
            services.memory.close()
