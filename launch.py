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

# --- commands: app (ui/) ---------------------------------------------------------------------


if __name__ == "__main__":
    app()
