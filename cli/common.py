"""What every command shares: the configuration, and one clear line instead of a traceback."""

from __future__ import annotations

import typer
from rich.console import Console

from models.config import Settings

console = Console(stderr=True, soft_wrap=True)


def settings() -> Settings:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return Settings()
    except SettingsError as err:
        fail(f"bad configuration: {err}")
    except ValidationError as err:
        problems = "; ".join(f"DEALSCOUT_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                             for e in err.errors())
        fail(f"bad configuration: {problems}")


def fail(message: str) -> None:
    """One clear line on stderr and exit 1: what the user sees instead of a traceback."""
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(1)
