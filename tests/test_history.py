"""Chat turns kept in memory: the planner records each turn and its tool steps in SQLite as it
runs (a failed or interrupted turn too), the schema migrates by named steps, and
`launch.py history` lists them."""

from __future__ import annotations

import json
import sqlite3
from types import SimpleNamespace

from typer.testing import CliRunner

import launch
from agents.chat.planner import PlanningAgent, Reply, ToolResult
from agents.memory import MIGRATIONS, Memory
from models.llm import FakeChatModel, Tool


class Toolbox:
    def tools(self):
        def estimate_price(description: str) -> str:
            """Estimate a product's worth."""

        return [Tool.from_function(estimate_price)]

    def call(self, name, arguments):
        if arguments.get("description") == "boom":
            raise ValueError("the description is empty")
        return ToolResult(text=f"Worth about $80 ({arguments['description']})\nmore detail")


def agent(memory: Memory, *replies, session: str = "s1") -> PlanningAgent:
    return PlanningAgent(FakeChatModel(list(replies)), Toolbox(), router=None, native_tools=True,
                         recorder=memory, session=session)


def test_a_turn_and_its_steps_are_kept(tmp_path):
    with Memory(tmp_path / "m.db") as memory:
        planner = agent(memory, FakeChatModel.tool_call("estimate_price", description="a drill"),
                        "It is worth about $80.")
        events = list(planner.run("what is a drill worth?"))
        assert events[-1] == Reply(text="It is worth about $80.")
        [turn] = memory.turns()
        assert (turn.session, turn.message, turn.answer, turn.outcome) == \
            ("s1", "what is a drill worth?", "It is worth about $80.", "ok")
        assert turn.finished_at is not None and turn.finished_at >= turn.started_at
        [step] = turn.steps
        assert (step.position, step.tool, step.arguments, step.status) == \
            (1, "estimate_price", {"description": "a drill"}, "done")
        assert step.result.startswith("Worth about $80") and step.seconds >= 0


def test_a_failing_tool_is_recorded_as_failed(tmp_path):
    with Memory(tmp_path / "m.db") as memory:
        routed = PlanningAgent(FakeChatModel([]), Toolbox(), router=None, native_tools=False,
                               recorder=memory)
        routed.router = type("R", (), {"route": lambda self, m: type(
            "Route", (), {"tool": "estimate_price", "arguments": {"description": "boom"}, "refusal": None})()})()
        assert list(routed.run("what is boom worth"))[-1].failed
        native = agent(memory, FakeChatModel.tool_call("estimate_price", description="boom"),
                       FakeChatModel.tool_call("no_such_tool"), "I could not price it.")
        list(native.run("price boom"))
        newest, oldest = memory.turns()
        assert oldest.outcome == "failed" and "the description is empty" in oldest.answer
        assert [(s.tool, s.status) for s in oldest.steps] == [("estimate_price", "error")]
        assert [(s.position, s.tool, s.status) for s in newest.steps] == \
            [(1, "estimate_price", "error"), (2, "no_such_tool", "error")]
        assert "the description is empty" in newest.steps[0].result
        assert newest.answer == "I could not price it." and newest.outcome == "ok"


def test_a_model_failure_and_an_interrupted_turn_are_kept(tmp_path):
    with Memory(tmp_path / "m.db") as memory:
        down = agent(memory)  # no scripted reply: the model fails, and the router answers instead
        down.router = SimpleNamespace(route=lambda message: SimpleNamespace(tool=None, arguments={}, refusal=None))
        list(down.run("hello"))
        events = agent(memory, FakeChatModel.tool_call("estimate_price", description="a drill"),
                       "unused").run("value a drill")
        next(events)  # the step starts, then the user leaves
        events.close()
        interrupted, model_failed = memory.turns()
        assert model_failed.outcome == "ok" and "language model failed" in model_failed.answer
        assert interrupted.outcome == "failed" and interrupted.answer == "interrupted before the answer"
        assert interrupted.finished_at is not None


def test_a_broken_recorder_does_not_break_the_chat(tmp_path):
    memory = Memory(tmp_path / "m.db")
    memory.close()  # every write now fails
    planner = agent(memory, "Hi!")
    assert list(planner.run("hello"))[-1].text == "Hi!"


def test_migrations_run_once_by_name_and_upgrade_an_old_database(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the first release: no claim columns, no chat tables
        db.execute("CREATE TABLE notifications (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, "
                   "opportunity_id INTEGER, title TEXT NOT NULL, body TEXT NOT NULL, url TEXT NOT NULL, "
                   "status TEXT NOT NULL DEFAULT 'pending', channel TEXT NOT NULL DEFAULT '', "
                   "attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', "
                   "created_at TEXT NOT NULL, delivered_at TEXT)")
    with Memory(path) as memory:
        names = [r["name"] for r in memory._db.execute("SELECT name FROM migrations ORDER BY rowid")]
        assert names == [name for name, _ in MIGRATIONS]
        columns = {r["name"] for r in memory._db.execute("PRAGMA table_info(notifications)")}
        assert {"claimed_by", "claimed_at"} <= columns
        memory.start_turn("s", "hi")
    with Memory(path) as memory:  # opening again changes nothing
        assert len(memory.turns()) == 1
        assert memory._db.execute("SELECT COUNT(*) FROM migrations").fetchone()[0] == len(MIGRATIONS)


def test_history_command_lists_the_last_turns_with_their_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    empty = runner.invoke(launch.app, ["history"])
    assert empty.exit_code == 0 and "no chat turns yet" in empty.output
    with Memory(tmp_path / "dealscout.db") as memory:
        for n in range(3):
            list(agent(memory, FakeChatModel.tool_call("estimate_price", description=f"drill {n}"),
                       f"Answer {n}").run(f"value drill {n}"))
    shown = runner.invoke(launch.app, ["history", "--limit", "2"])
    assert shown.exit_code == 0, shown.output
    assert "value drill 2" in shown.output and "value drill 1" in shown.output
    assert "value drill 0" not in shown.output
    assert "estimate_price" in shown.output and "Answer 2" in shown.output
    assert shown.output.index("value drill 2") < shown.output.index("value drill 1")
    as_json = json.loads(runner.invoke(launch.app, ["history", "--json", "--limit", "1"]).output)
    assert [t["message"] for t in as_json] == ["value drill 2"]
    assert as_json[0]["steps"][0]["arguments"] == {"description": "drill 2"}


def test_the_wired_planner_records_into_the_memory(tmp_path):
    from agents.wiring import Services
    from models.config import Settings

    services = Services(Settings(_env_file=None, data_dir=tmp_path, feeds=[]),
                        overrides={"llm": FakeChatModel(["Hello!"], supports_tools=True),
                                   "pricer": object(), "router": None})
    assert list(services.planner().run("hi"))[-1].text == "Hello!"
    assert [t.message for t in services.memory.turns()] == ["hi"]


def test_a_message_with_a_lone_surrogate_is_recorded(tmp_path):
    with Memory(tmp_path / "m.db") as memory:
        planner = agent(memory, FakeChatModel.tool_call("estimate_price", description="drill \udcff"),
                        "About $80 for the drill \udcff.")
        assert list(planner.run("drill \udcff 20V"))[-1].text == "About $80 for the drill \udcff."
        [turn] = memory.turns()
        assert turn.message == "drill ? 20V" and turn.answer == "About $80 for the drill ?."
        assert turn.outcome == "ok"
        [step] = turn.steps
        assert step.arguments == {"description": "drill ?"} and "drill ?" in step.result


def test_history_shows_control_characters_harmlessly_and_json_stays_exact(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path))
    message = "drill \x1b[31mred\x1b[0m \x00 \x07 \x9b2J\tend"
    with Memory(tmp_path / "dealscout.db") as memory:
        list(agent(memory, FakeChatModel.tool_call("estimate_price", description="a \x1b[2J drill"),
                   "Answer \x1b]0;pwned\x07 done").run(message))
    runner = CliRunner()
    shown = runner.invoke(launch.app, ["history"])
    assert shown.exit_code == 0, shown.output
    assert not any(ord(c) < 32 and c not in "\n\t" or 0x7f <= ord(c) < 0xa0 for c in shown.output)
    assert "drill \\x1b[31mred\\x1b[0m \\x00 \\x07 \\x9b2J" in shown.output  # rich expands the tab
    assert "Answer \\x1b]0;pwned\\x07 done" in shown.output
    as_json = json.loads(runner.invoke(launch.app, ["history", "--json"]).output)
    assert as_json[0]["message"] == message
    assert as_json[0]["answer"] == "Answer \x1b]0;pwned\x07 done"


def test_history_limit_out_of_range_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    for limit in ("99999999999999999999", "10001", "0"):
        result = runner.invoke(launch.app, ["history", "--limit", limit])
        assert result.exit_code == 2, (limit, result.output, result.exception)
        assert "--limit" in result.output
    assert runner.invoke(launch.app, ["history", "--limit", "10000"]).exit_code == 0


def test_a_not_ready_chat_is_recorded_as_a_failed_turn(tmp_path):
    from agents.wiring import Services
    from models.config import Settings
    from ui.app import DealScoutApp

    ui = DealScoutApp(Services(Settings(_env_file=None, data_dir=tmp_path, feeds=[]),
                               overrides={"llm": FakeChatModel(["unused"])}))  # no pricer built
    [(shown, planner)] = list(ui.chat("what is a drill worth?", [], None))
    assert planner is None and shown[0].content.startswith("I am not ready yet")
    [turn] = ui.services.memory.turns()
    assert (turn.message, turn.outcome, turn.steps) == ("what is a drill worth?", "failed", [])
    assert turn.answer.startswith("I am not ready yet: no pricing agent is built yet")
    assert turn.finished_at is not None


def test_a_huge_step_argument_is_cut_with_a_marker(tmp_path):
    from agents.memory import STEP_ARGUMENT_CHARS

    with Memory(tmp_path / "m.db") as memory:
        turn = memory.start_turn("s", "price this")
        memory.record_step(turn, 1, "estimate_price", {"description": "x" * 5_000_000}, "ok", "done", 0.1)
        memory.record_step(turn, 2, "estimate_price", {"description": "a drill"}, "ok", "done", 0.1)
        stored = [len(r[0]) for r in memory._db.execute("SELECT arguments FROM steps ORDER BY id")]
        assert stored[0] <= STEP_ARGUMENT_CHARS + 200
        big, small = memory.turns()[0].steps
        assert small.arguments == {"description": "a drill"}
        [(key, cut)] = big.arguments.items()
        assert key == "truncated" and cut.startswith('{"description": "xxx')
        assert "5000019 characters in all" in cut


def test_only_the_newest_turns_are_kept_with_their_steps(tmp_path):
    with Memory(tmp_path / "m.db", keep_turns=3) as memory:
        for n in range(5):
            turn = memory.start_turn("s", f"message {n}")
            memory.record_step(turn, 1, "estimate_price", {"n": n}, "ok", "done", 0.1)
            memory.finish_turn(turn, f"answer {n}", "ok")
        assert [t.message for t in memory.turns()] == ["message 4", "message 3", "message 2"]
        assert [s.arguments for t in memory.turns() for s in t.steps] == [{"n": 4}, {"n": 3}, {"n": 2}]
        assert memory._db.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 3


def test_a_new_database_is_readable_by_its_owner_only(tmp_path):
    import os
    import stat

    path = tmp_path / "new.db"
    with Memory(path) as memory:
        memory.start_turn("s", "hi")
        files = [p for p in tmp_path.iterdir() if p.name.startswith("new.db")]
        assert {p.name for p in files} >= {"new.db", "new.db-wal"}
        for each in files:
            assert stat.S_IMODE(os.stat(each).st_mode) == 0o600, each
    old = tmp_path / "old.db"
    sqlite3.connect(old).close()
    old.chmod(0o644)
    with Memory(old) as memory:  # an existing database keeps its mode
        memory.start_turn("s", "hi")
    assert stat.S_IMODE(os.stat(old).st_mode) == 0o644
