"""Issue 16, finding 7: 40 wrong passwords in 0.29 s, and the right one accepted right after.
Now wrong passwords slow the next tries down, per user name and per address (ui/login.py)."""

from __future__ import annotations

import httpx
from typer.testing import CliRunner

from models.llm import FakeChatModel
from tests.running_app import running_app
from ui.login import throttled_login


class Clock:
    """The throttle's clock, moved by the test (no sleeping, no timing in the assertions)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def login(url: str, user: str, password: str) -> int:
    return httpx.post(f"{url}login", data={"username": user, "password": password}, timeout=30).status_code


def test_many_wrong_passwords_then_even_the_right_one_waits(tmp_path):
    clock = Clock()
    launch = throttled_login([("tester", "s3cret")], free_tries=5, base_s=1.0, clock=clock)
    with running_app(tmp_path, ["traps.xml"], FakeChatModel([]), launch=launch) as app:
        # what the login page shows: why the right password can be refused ("Incorrect credentials")
        shown = httpx.get(f"{app.url}config", timeout=30).json()["detail"]["auth_message"]
        assert "After 5 wrong passwords" in shown and "up to 15 minutes" in shown and "even with the right" in shown
        assert login(app.url, "tester", "s3cret") == 200
        assert [login(app.url, "tester", f"guess{i}") for i in range(40)] == [400] * 40
        assert login(app.url, "tester", "s3cret") == 400  # inside the wait: refused all the same
        assert login(app.url, "someone-else", "s3cret") == 400  # the address is throttled too
        clock.now += 15 * 60 + 1  # the longest wait (capped at 15 minutes) is over
        assert login(app.url, "tester", "s3cret") == 200


def test_the_throttle_keeps_users_and_addresses_apart():
    clock = Clock()
    throttle = throttled_login([("tester", "s3cret")], free_tries=3, base_s=10.0, clock=clock)["auth"]
    assert [throttle("mallory", "x") for _ in range(3)] == [False] * 3
    assert throttle("tester", "s3cret") is False  # the same (unknown) address: it waits
    clock.now += 10
    assert throttle("tester", "s3cret") is True  # after the wait, and it clears the address's count
    assert throttle("mallory", "x") is False and throttle("mallory", "right?") is False


def test_wrong_passwords_on_the_mcp_server_count_like_the_login_form(tmp_path):
    clock = Clock()
    launch = throttled_login([("tester", "s3cret")], free_tries=5, base_s=1.0, clock=clock)

    def mcp_status(url: str, password: str) -> int:
        return httpx.post(f"{url}gradio_api/mcp/", auth=httpx.BasicAuth("tester", password), timeout=30,
                          json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers={"accept": "application/json, text/event-stream"}).status_code

    with running_app(tmp_path, ["traps.xml"], FakeChatModel([]), auth=("tester", "s3cret"), mcp=True,
                     launch=launch) as app:
        probes = [httpx.get(f"{app.url}{path}", timeout=30).status_code for path in
                  [".well-known/oauth-protected-resource/gradio_api/mcp", "gradio_api/mcp/"] * 10]
        no_password = [{"authorization": value} for value in ("Bearer xyz", "Basic !!!notb64", "Basic dQ==")]
        probes += [httpx.get(f"{app.url}gradio_api/mcp/", headers=h, timeout=30).status_code for h in no_password * 4]
        assert probes == [401] * 32  # asked without a user and password: refused, but no login was tried
        assert mcp_status(app.url, "s3cret") != 401 and login(app.url, "tester", "s3cret") == 200
        assert [mcp_status(app.url, f"guess{i}") for i in range(20)] == [401] * 20
        assert mcp_status(app.url, "s3cret") == 401  # inside the wait: refused all the same
        assert login(app.url, "tester", "s3cret") == 400  # and the login form waits too
        clock.now += 15 * 60 + 1
        assert mcp_status(app.url, "s3cret") != 401


def test_every_repeated_auth_pair_logs_in(monkeypatch, tmp_path):
    """`launch.py app --auth alice:pw1 --auth bob:pw2` kept only bob: alice got "Could not login"."""
    import launch as cli
    import ui.mcp_server

    launched = {}

    class Launched:
        def block_thread(self):
            pass

    def fake_serve(demo, **options):
        launched.update(options)
        return Launched()

    monkeypatch.setattr(ui.mcp_server, "serve", fake_serve)
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DEALSCOUT_FEEDS", "[]")
    result = CliRunner().invoke(cli.app, ["app", "--auth", "alice:pw1", "--auth", "bob:pw2", "--no-schedule"])
    assert result.exit_code == 0, result.output
    check = launched["login"]["auth"]
    assert check("alice", "pw1") and check("bob", "pw2")
    assert not check("alice", "pw2") and not check("bob", "pw1") and not check("carol", "pw1")
    assert launched["auth"] == [("alice", "pw1"), ("bob", "pw2")]


def test_an_auth_name_given_twice_is_refused():
    import launch as cli

    result = CliRunner().invoke(cli.app, ["app", "--auth", "alice:pw1", "--auth", "alice:pw2", "--no-schedule"])
    assert result.exit_code == 1 and "--auth names alice twice" in result.output
