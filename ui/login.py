"""Login with a throttle: after a few wrong passwords for a user name, or from one address, each
further try has to wait longer (doubling, capped), and a try inside the wait is refused even with
the right password. Gradio hands its auth function only the name and the password, so a small
ASGI middleware tells it the client address of the login request.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.middleware import Middleware

log = logging.getLogger(__name__)
_client_address: contextvars.ContextVar[str] = contextvars.ContextVar("client_address", default="?")


class ClientAddress:
    """Remembers the address of each request for the auth function (same task, same context)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            _client_address.set((scope.get("client") or ("?", 0))[0])
        await self.app(scope, receive, send)


@dataclass
class _Failures:
    count: int = 0
    blocked_until: float = 0.0


class LoginThrottle:
    """Gradio's `auth` callable for the configured user:password pairs, throttled per user name and
    per address."""

    def __init__(self, accounts: list[tuple[str, str]], *, free_tries: int = 5, base_s: float = 1.0,
                 max_wait_s: float = 900.0, clock: Callable[[], float] = time.monotonic):
        self.accounts = [(user.encode(), password.encode()) for user, password in accounts]
        self.free_tries, self.base_s, self.max_wait_s, self.clock = free_tries, base_s, max_wait_s, clock
        self.failures: dict[str, _Failures] = {}
        self.lock = threading.Lock()

    def __call__(self, username: str, password: str) -> bool:
        keys = [f"user:{username}", f"address:{_client_address.get()}"]
        now = self.clock()
        with self.lock:
            if len(self.failures) > 10_000:  # names an attacker made up: keep only the blocked ones
                self.failures = {k: f for k, f in self.failures.items() if f.blocked_until > now}
            if any(self.failures.get(k, _Failures()).blocked_until > now for k in keys):
                log.warning("login for %r from %s refused: too many wrong passwords", username, keys[1][8:])
                return False
            right = self.matches(username, password)
            for key in keys:
                if right:
                    self.failures.pop(key, None)
                    continue
                failed = self.failures.setdefault(key, _Failures())
                failed.count += 1
                if failed.count >= self.free_tries:
                    wait = min(self.max_wait_s, self.base_s * 2 ** (failed.count - self.free_tries))
                    failed.blocked_until = now + wait
            return right

    def matches(self, username: str, password: str) -> bool:
        # Every pair is compared, in constant time, so the answer's timing names no user.
        given_user, given_password = username.encode(), password.encode()
        right = False
        for user, expected in self.accounts:
            right |= hmac.compare_digest(given_user, user) & hmac.compare_digest(given_password, expected)
        return right


def throttled_login(accounts: list[tuple[str, str]], **options: Any) -> dict[str, Any]:
    """The `launch()` arguments for a throttled login of these user:password pairs. Gradio's form
    says only "Incorrect credentials", also to the right password inside a wait: the login page
    says why that can be."""
    throttle = LoginThrottle(accounts, **options)
    wait = f"{throttle.base_s:g} second" + ("" if throttle.base_s == 1 else "s")
    return {"auth": throttle, "app_kwargs": {"middleware": [Middleware(ClientAddress)]},
            "auth_message": (f"After {throttle.free_tries} wrong passwords for a name or from an address, each "
                             f"further login there waits ({wait}, doubling, up to {throttle.max_wait_s / 60:g} "
                             "minutes), and a login inside the wait is refused even with the right password.")}
