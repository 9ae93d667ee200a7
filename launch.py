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

# --- commands: price (agents/) ---------------------------------------------------------------

# --- commands: scan, route (agents/) ---------------------------------------------------------

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
