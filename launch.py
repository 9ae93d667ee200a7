"""DealScout command line: builds the configuration, wires the agents, runs a subcommand."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from models.config import Settings

app = typer.Typer(help="DealScout: find deals worth your money and say what things are worth.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
train_app = typer.Typer(help="Build the artifacts the agents load.", no_args_is_help=True)
llm_app = typer.Typer(help="LLM providers.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(llm_app, name="llm")
console = Console(stderr=True)


def settings() -> Settings:
    return Settings()


def fail(message: str) -> None:
    """One clear line on stderr and exit 1: what the user sees instead of a traceback."""
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(1)


# --- commands: data, train, evaluate (training/) ---------------------------------------------

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

# --- commands: price (agents/) ---------------------------------------------------------------

# --- commands: scan, route (agents/) ---------------------------------------------------------

@app.command()
def route(
    message: Annotated[str, typer.Argument(help="A chat message; '-' reads standard input.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the tool (or none) and arguments the planner would choose for a message, without running it."""
    from agents.router import Router
    from models.embeddings import Embedder

    text = sys.stdin.read() if message == "-" else message
    try:
        chosen = Router(Embedder()).route(text)
    except (ImportError, OSError) as err:
        fail(f"could not load the MiniLM embeddings ({err}); run scripts/setup.sh")
    if json_out:
        print(chosen.model_dump_json())
        return
    out = Console(highlight=False)
    out.print(f"tool       {chosen.tool or 'none (answered in text)'}")
    out.print(f"arguments  {json.dumps(chosen.arguments, ensure_ascii=False)[:500]}")
    out.print(f"confidence {chosen.confidence:.2f}  [dim]{chosen.reason}[/dim]")


@app.command()
def scan(
    feed: Annotated[list[str] | None, typer.Option(
        "--feed", help="Feed URL, file:// URL or path (repeatable); default: the configured feeds.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only print what the feeds hold: touch neither memory nor notifications.")] = False,
    json_out: Annotated[bool, typer.Option(
        "--json", help="One JSON object a line: each deal, then each skipped entry and why.")] = False,
) -> None:
    """Scan deal feeds into deals; without --dry-run, new deals are recorded in memory."""
    from agents.feeds import FeedFetcher
    from agents.memory import Memory, StoreError
    from agents.scanner import Scanner

    cfg = settings()
    feeds = feed or cfg.feeds
    new_deals = None
    try:
        if dry_run:
            with FeedFetcher() as fetcher:
                result = Scanner(fetcher).scan(feeds)
        else:
            with Memory(cfg.database) as memory, FeedFetcher(validators=memory) as fetcher:
                result = Scanner(fetcher).scan(feeds)
                new_deals = memory.record_scan(result)
    except StoreError as err:
        fail(str(err))
    for outcome in result.feeds:
        console.print(outcome.line(), highlight=False, markup=False)
    if json_out:
        for line in result.json_lines():
            print(line)
    else:
        from rich.markup import escape

        out = Console(highlight=False, soft_wrap=True)
        for d in result.deals:
            out.print(f"${d.price:>9,.2f}  {escape(d.title)}  [dim]{escape(d.retailer)}[/dim]")
        for s in result.skipped:
            out.print(f"[dim]skipped ({escape(s.reason)}): {escape(s.title)}[/dim]")
    console.print(result.summary() + (f", {len(new_deals)} new" if new_deals is not None else ""))
    if result.feeds and all(f.status == "failed" for f in result.feeds):
        fail("no feed could be read")


# --- commands: app (ui/) ---------------------------------------------------------------------


if __name__ == "__main__":
    app()
