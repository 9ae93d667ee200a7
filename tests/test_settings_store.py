"""Settings changed in the app are saved in the memory database and are there after a restart;
the DEALSCOUT_* environment only gives the defaults."""

from __future__ import annotations

import pytest

from agents.memory import Memory
from agents.settings_store import RunSettings, SettingsStore
from agents.wiring import Services
from models.config import Settings
from tests.running_app import StrictKeywordPricer
from ui.app import DealScoutApp


def app_on(data_dir, **env) -> DealScoutApp:
    config = Settings(_env_file=None, data_dir=data_dir, notify_urls=[], **env)
    return DealScoutApp(Services(config, overrides={"pricer": StrictKeywordPricer()}))


def test_settings_changed_in_the_app_survive_a_restart(tmp_path):
    first = app_on(tmp_path, threshold=50, notify_best=3, feeds=["https://a.example/feed"])
    said = first.apply_settings(75, "https://b.example/rss\nhttps://c.example/rss", 5)
    assert said.endswith("Saved.")
    assert first.set_schedule(15, False) == "Scheduled scans are off."
    first.services.memory.close()

    again = app_on(tmp_path, threshold=50, notify_best=3, feeds=["https://a.example/feed"])
    pipeline = again.services.pipeline
    assert (pipeline.threshold, pipeline.notify_best) == (75, 5)
    assert pipeline.feeds == ["https://b.example/rss", "https://c.example/rss"]
    saved = again.services.settings_store.load()
    assert saved.schedule_on is False
    again.services.memory.close()


def test_environment_values_are_the_defaults_until_changed(tmp_path):
    app = app_on(tmp_path, threshold=40, notify_best=2, scan_every_minutes=12, feeds=["https://a.example/f"])
    saved = app.services.settings_store.load()
    assert (saved.threshold, saved.notify_best, saved.scan_every_minutes, saved.feeds) == (
        40, 2, 12, ["https://a.example/f"])
    app.set_schedule(20, False)
    assert app.services.settings_store.load().scan_every_minutes == 20
    app.services.memory.close()


def test_bad_values_are_refused_with_one_sentence(tmp_path):
    with Memory(tmp_path / "m.db") as memory:
        store = SettingsStore(memory, RunSettings(threshold=50, notify_best=3, feeds=[], scan_every_minutes=30))
        for change in ({"notify_best": 0}, {"digest_hour": 25}, {"colour": "red"}):
            try:
                store.save(**change)
            except ValueError as err:
                assert "\n" not in str(err)
            else:
                raise AssertionError(f"{change} was accepted")
        assert store.load().notify_best == 3
        assert app_on(tmp_path / "x").apply_settings(50, "", 0) == "Alerts per scan must be a whole number, 1 or more."


def test_the_digest_hour_is_saved_and_turns_per_deal_pushes_off_after_a_restart(tmp_path):
    first = app_on(tmp_path)
    assert first.digest.set_hour(24).startswith("The digest hour is a whole hour")
    assert first.digest.set_hour(7) == "A daily digest at 07:00 with the day's best deals and watch matches."
    first.digest.start(None)  # stop its scheduler; the saved hour stays
    first.services.memory.close()
    again = app_on(tmp_path)
    assert again.services.settings_store.load().digest_hour == 7
    assert again.services.pipeline.digest is True
    assert again.digest.set_hour(None) == "One alert per deal (no daily digest)."
    assert again.services.pipeline.digest is False
    again.services.memory.close()


def test_settings_changed_in_the_chat_survive_a_restart(tmp_path):
    from agents.chat.planner import PlanningAgent, Reply
    from agents.chat.router import Router
    from models.llm import FakeChatModel

    class RulesOnly:
        def embed(self, texts):
            raise AssertionError(f"the classifier ran for {texts!r}")

    first = app_on(tmp_path, threshold=50, notify_best=3, feeds=["https://a.example/feed"])
    planner = PlanningAgent(FakeChatModel([]), first.services.toolbox(), Router(RulesOnly()), native_tools=False)
    said = [e for e in planner.run("set the threshold to $80 and send me 2 alerts per scan") if isinstance(e, Reply)]
    assert said[0].text == "Saved: an alert needs an estimate $80.00 above the price; at most 2 alerts per scan; " \
                           "1 feed."
    assert (first.services.pipeline.threshold, first.services.pipeline.notify_best) == (80, 2)
    first.services.memory.close()
    again = app_on(tmp_path, threshold=50, notify_best=3)
    assert (again.services.pipeline.threshold, again.services.pipeline.notify_best) == (80, 2)
    with pytest.raises(ValueError, match="notify_best"):
        again.services.toolbox().call("change_settings", {"notify_best": 0})
    again.services.memory.close()
