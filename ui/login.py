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
    """Gradio's `auth` callable for one user:password, throttled per user name and per address."""

    def __init__(self, user: str, password: str, *, free_tries: int = 5, base_s: float = 1.0,
                 max_wait_s: float = 900.0, clock: Callable[[], float] = time.monotonic):
        self.user, self.password = user, password
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
            right = hmac.compare_digest(username.encode(), self.user.encode()) & hmac.compare_digest(
                password.encode(), self.password.encode())
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


def throttled_login(user: str, password: str, **options: Any) -> dict[str, Any]:
    """The `launch()` arguments for a throttled login."""
    return {"auth": LoginThrottle(user, password, **options), "app_kwargs": {"middleware": [Middleware(ClientAddress)]}}
