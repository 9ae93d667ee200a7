"""Chat turns and their tool steps, kept as they happen (the planner's TurnRecorder), so a
misrouted or failed answer can be inspected afterwards (`launch.py history`)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from agents.memory.store import Store, now_text, storable

STEP_RESULT_CHARS = 4000  # a step's result as stored: enough to see what went wrong
STEP_ARGUMENT_CHARS = 20_000  # a step's arguments (JSON) as stored; longer ones are cut, marked
KEEP_TURNS = 5000  # chat turns kept, newest first; older ones go with their steps on insert


class Step(BaseModel):
    """One tool call of a chat turn, as stored."""

    position: int
    tool: str
    arguments: dict[str, Any]
    result: str
    status: str  # done | error
    seconds: float


class Turn(BaseModel):
    """One chat message and what the planner did with it."""

    id: int
    session: str
    message: str
    answer: str
    outcome: Literal["running", "ok", "failed"]  # running: still going, or cut off by a crash
    started_at: datetime
    finished_at: datetime | None = None
    steps: list[Step] = []


def _arguments_json(arguments: dict[str, object]) -> str:
    """A step's arguments as stored: JSON, and when longer than STEP_ARGUMENT_CHARS, a JSON
    object {"truncated": the start of it, marked with its full length}."""
    text = json.dumps(arguments, default=str, ensure_ascii=False)
    if len(text) > STEP_ARGUMENT_CHARS:
        text = json.dumps({"truncated": f"{text[:STEP_ARGUMENT_CHARS]}… ({len(text)} characters in all)"},
                          ensure_ascii=False)
    return storable(text)


class TurnStore(Store):
    """Turns (the newest `keep_turns` are kept) and the steps of each."""

    def __init__(self, path: Path, *, keep_turns: int = KEEP_TURNS):
        self.keep_turns = keep_turns
        super().__init__(path)

    def start_turn(self, session: str, message: str) -> int:
        """Record a new turn; the oldest turns beyond `keep_turns` go, with their steps."""
        with self._transaction() as db:
            turn = db.execute("INSERT INTO turns (session, message, started_at) VALUES (?, ?, ?)",
                              (storable(session), storable(message, STEP_RESULT_CHARS), now_text())).lastrowid
            cut = db.execute("SELECT id FROM turns ORDER BY id DESC LIMIT 1 OFFSET ?",
                             (self.keep_turns,)).fetchone()
            if cut is not None:
                db.execute("DELETE FROM steps WHERE turn_id <= ?", (cut["id"],))
                db.execute("DELETE FROM turns WHERE id <= ?", (cut["id"],))
            return turn

    def record_step(self, turn_id: int, position: int, tool: str, arguments: dict[str, object],
                    result: str, status: str, seconds: float) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO steps (turn_id, position, tool, arguments, result, status, seconds) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (turn_id, position, storable(tool),
                        _arguments_json(arguments),
                        storable(result, STEP_RESULT_CHARS), status, seconds))

    def finish_turn(self, turn_id: int, answer: str, outcome: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE turns SET answer = ?, outcome = ?, finished_at = ? WHERE id = ?",
                       (storable(answer, STEP_RESULT_CHARS), outcome, now_text(), turn_id))

    def turns(self, limit: int = 20) -> list[Turn]:
        """The last `limit` chat turns, newest first, each with its tool steps in order."""
        rows = self._rows("SELECT * FROM turns ORDER BY id DESC LIMIT ?", (limit,))
        steps: dict[int, list[Step]] = {row["id"]: [] for row in rows}
        if steps:
            marks = ", ".join("?" * len(steps))
            for step in self._rows(f"SELECT * FROM steps WHERE turn_id IN ({marks}) "
                                   "ORDER BY turn_id, position", list(steps)):
                steps[step["turn_id"]].append(Step.model_validate(
                    {**dict(step), "arguments": json.loads(step["arguments"])}))
        return [Turn.model_validate({**dict(row), "steps": steps[row["id"]]}) for row in rows]
