"""Settings changed in the app or the chat (threshold, notify-best count, feeds, the scan schedule,
the daily digest), kept in the memory database so they survive a restart. The DEALSCOUT_*
environment (models.config.Settings) gives the defaults; a stored value wins over it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pydantic import BaseModel, Field, ValidationError

from agents.memory import Memory
from models.config import Settings

MIGRATIONS = [("saved settings", (
    "CREATE TABLE saved_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)",))]


class RunSettings(BaseModel):
    """What a person may change while the app runs."""

    threshold: float = Field(ge=0)
    notify_best: int = Field(ge=1)
    feeds: list[str]
    scan_every_minutes: float = Field(gt=0)
    schedule_on: bool = True
    digest_hour: int | None = Field(None, ge=0, le=23)  # None: one push per deal; else a daily digest

    @classmethod
    def defaults(cls, settings: Settings) -> RunSettings:
        return cls(threshold=settings.threshold, notify_best=settings.notify_best, feeds=list(settings.feeds),
                   scan_every_minutes=settings.scan_every_minutes)


class SettingsStore:
    def __init__(self, memory: Memory, defaults: RunSettings):
        self.memory, self.defaults = memory, defaults
        memory.apply_migrations(MIGRATIONS)

    def load(self) -> RunSettings:
        """The defaults with every stored value on top; a stored value that no longer validates
        (an older version's) is ignored."""
        values = self.defaults.model_dump()
        for row in self.memory.rows("SELECT name, value FROM saved_settings"):
            if row["name"] in RunSettings.model_fields:
                candidate = {**values, row["name"]: json.loads(row["value"])}
                try:
                    RunSettings.model_validate(candidate)
                except ValidationError:
                    continue
                values = candidate
        return RunSettings.model_validate(values)

    def save(self, **changes: object) -> RunSettings:
        """Validate and store the changed values together; raises ValueError naming a bad one."""
        unknown = set(changes) - set(RunSettings.model_fields)
        if unknown:
            raise ValueError(f"no such setting: {', '.join(sorted(unknown))}")
        try:
            updated = RunSettings.model_validate({**self.load().model_dump(), **changes})
        except ValidationError as err:
            problem = err.errors()[0]
            raise ValueError(f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}") from None
        now = datetime.now(UTC).isoformat()
        with self.memory.transaction() as db:
            for name in changes:
                db.execute("INSERT OR REPLACE INTO saved_settings VALUES (?, ?, ?)",
                           (name, json.dumps(getattr(updated, name)), now))
        return updated
