"""DealScout command line: builds the configuration, wires the agents, runs a subcommand."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from cli import deals, train
from cli.common import console, fail, settings

app = typer.Typer(help="DealScout: find deals worth your money and say what things are worth.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
llm_app = typer.Typer(help="LLM providers.", no_args_is_help=True)
app.add_typer(train.commands)
app.add_typer(deals.commands)
app.add_typer(train.train_app, name="train")
app.add_typer(llm_app, name="llm")


# --- commands: llm, chat (models/) -----------------------------------------------------------

@app.command()
def chat(
    message: Annotated[str, typer.Argument(help="What to ask; '-' reads standard input.")],
    llm: Annotated[str | None, typer.Option(help="Provider spec, e.g. local, openai:gpt-4o-mini; default: DEALSCOUT_LLM.")] = None,
    system: Annotated[str, typer.Option(help="System prompt.")] = "You are DealScout, a concise shopping assistant.",
    max_tokens: Annotated[int, typer.Option(min=1, help="Longest answer, in tokens.")] = 256,
) -> None:
    """Ask the configured LLM one question and stream the answer (the local model needs no key)."""
    from models.llm import Message, ProviderError
    from models.providers import make_chat_model

    cfg = settings()
    text = sys.stdin.read() if message == "-" else message
    said = False
    try:
        model = make_chat_model(llm or cfg.llm, cfg)
        for piece in model.stream([Message(role="system", content=system),
                                   Message(role="user", content=text)], max_tokens=max_tokens):
            print(piece, end="", flush=True)
            said = True
    except ProviderError as err:
        if said:
            print()  # the error goes on its own line, after what was already said
        fail(str(err))
    print()


@llm_app.command("check")
def llm_check() -> None:
    """List the LLM providers, whether each is configured, and whether it answers."""
    from models.providers import check_providers

    statuses = check_providers(settings())
    out = Console(highlight=False, soft_wrap=True)
    for s in statuses:
        mark = "[green]ok[/green]  " if s.ok else ("[dim]--[/dim]  " if not s.configured else "[red]FAIL[/red]")
        used = f" [dim](used by {', '.join(s.used_by)})[/dim]" if s.used_by else ""
        took = f" in {s.latency_s:.1f} s" if s.latency_s is not None else ""
        out.print(f"{mark} {s.spec}{used}: {s.detail}{took}")
    if any(s.used_by and not s.ok for s in statuses):
        raise typer.Exit(1)


# --- commands: app (ui/) ---------------------------------------------------------------------

@app.command("app")
def run_app(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
    share: Annotated[bool, typer.Option(help="A public share link (requires --auth).")] = False,
    auth: Annotated[list[str] | None, typer.Option(help="user:password required to open the app; repeat it for more users, each with their own watches.")] = None,
    mcp: Annotated[bool, typer.Option(help="Serve estimate_price, scan_deals, list_opportunities and explain_estimate as MCP tools at /gradio_api/mcp/ (requires --auth; HTTP Basic auth).")] = False,
    schedule_scans: Annotated[bool, typer.Option("--schedule/--no-schedule", help="Scan on the configured interval.")] = True,
) -> None:
    """Start the web app: chat with the planning agent, the deals dashboard, pricing."""
    credentials = None
    if auth:
        credentials = []
        for pair in auth:
            user, _, password = pair.partition(":")
            if not user or not password:
                fail("--auth takes user:password")
            if user in dict(credentials):
                fail(f"--auth names {user} twice")
            credentials.append((user, password))
    exposed = share or mcp or host not in ("127.0.0.1", "localhost", "::1")
    if exposed and credentials is None:
        fail("a share link, MCP server or non-loopback --host is reachable by others: "
             "add --auth user:password")
    from agents.wiring import Services
    from cli.deals import say_missing
    from ui.app import DealScoutApp
    from ui.login import throttled_login
    from ui.mcp_server import serve

    cfg = settings()
    ui = DealScoutApp(Services(cfg))
    saved = ui.services.settings_store.load()
    if schedule_scans and saved.schedule_on:
        ui.set_schedule(saved.scan_every_minutes, True, save=False)
    if saved.digest_hour is not None:
        try:
            ui.digest.start(saved.digest_hour)
        except ValueError as err:
            console.print(f"the daily digest is off: {err}")
    say_missing(ui.services.loaded_pricers[1])  # the pricers load now, not on the first question
    login = throttled_login(credentials) if credentials else None
    serve(ui.build(mcp=mcp), auth=credentials, mcp=mcp, login=login, server_name=host, server_port=port,
          share=share, footer_links=["api"], show_error=True).block_thread()



if __name__ == "__main__":
    app()
