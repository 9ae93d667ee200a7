"""When a configured model is down, stop asking it for a while (the planner's, the frontier's).

A dead hosted model costs each message its timeouts and retries (3-21 s, 4+ requests) before the
local router answers. After a failure the breaker is open: for `open_s` seconds every session
goes straight to the router, then the model is tried again. The app holds one, shared by its chat
sessions, so a dead model costs one failed message a minute, not every message.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

OPEN_S = 60.0


class ModelBreaker:
    def __init__(self, open_s: float = OPEN_S, clock: Callable[[], float] = time.monotonic):
        self.open_s, self.clock = open_s, clock
        self._retry_at = -math.inf
        self._lock = threading.Lock()
        self.error = ""  # the last failure's first line, for the note of a session that did not see it

    def allows(self) -> bool:
        with self._lock:
            return self.clock() >= self._retry_at

    def failed(self, error: str) -> None:
        with self._lock:
            self._retry_at, self.error = self.clock() + self.open_s, error

    def worked(self) -> None:
        with self._lock:
            self._retry_at = -math.inf
