"""Slowing down suppliers who try codes: after ``limit`` failed look-ups within
``window`` seconds, every further claim of that supplier is refused (429) until
the oldest failure leaves the window — so the 11th try in a minute is refused.

The count is kept in each server process's memory, so a server with N worker
processes lets a supplier fail at most N x ``limit`` times a minute — still far
too few to guess an 80-bit code.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable


class FailureLimiter:
    def __init__(
        self, limit: int = 10, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _trim(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked(self, key: str) -> bool:
        with self._lock:
            failures = self._trim(key, self._clock())
            if not failures:
                self._failures.pop(key, None)
                return False
            return len(failures) >= self.limit

    def fail(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            self._trim(key, now).append(now)
