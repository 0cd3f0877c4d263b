"""Log lines about what outsiders send (bad MQTT messages, login guesses) limited per
reason, as the collector limits its own: a misbehaving device or a guessing run must not
flood the log, yet the first line of every kind is written at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LogLimiter:
    """At most one line per key every `interval_s`. `allow` says whether to write one now
    and how many were left out since the last; keys beyond `max_keys` share one."""

    def __init__(
        self,
        interval_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1000,
    ) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.max_keys = max_keys
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> int | None:
        """None: leave this line out; else write it (the number is how many lines of this
        key were left out since the last one written)."""
        now = self.clock()
        with self._lock:
            if key not in self._last and len(self._last) >= self.max_keys:
                key = "(other)"
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._left_out[key] = self._left_out.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._left_out.pop(key, 0)
