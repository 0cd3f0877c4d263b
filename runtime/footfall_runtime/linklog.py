"""How a service tells its operator about a connection it depends on (the MQTT broker,
InfluxDB) and about a state it holds data in (events waiting for the clock, messages
waiting for InfluxDB): each failure is logged once with what to check, again only when
the reason changes, and the recovery once. A retry loop that logs every attempt buries
the cause; one that logs nothing leaves an installer staring at a silent service.

No dependencies: the edge agent imports it on a Pi without pydantic."""

from __future__ import annotations

import logging
import threading


class LinkLog:
    """The state of one connection (or held state) as the log has told it."""

    def __init__(self, logger: logging.Logger, recovered: str) -> None:
        """`recovered`: the line logged (INFO) when it works again after a failure, e.g.
        "MQTT broker 10.0.0.5:8883 reachable again"."""
        self._log = logger
        self._recovered = recovered
        self._lock = threading.Lock()
        self._key: str | None = None
        self.failures = 0
        """Failures reported (logged or not) since the last recovery."""

    @property
    def failing(self) -> bool:
        return self._key is not None

    @property
    def reason(self) -> str | None:
        """The key of the failure last logged, None while it works."""
        return self._key

    def failed(self, key: str, message: str, level: int = logging.WARNING) -> bool:
        """Log `message` unless the failure last logged had the same `key` (a short,
        stable name of the reason: "connection refused", not a message with a changing
        count in it). Returns whether it logged."""
        with self._lock:
            self.failures += 1
            if key == self._key:
                return False
            self._key = key
        self._log.log(level, "%s", message)
        return True

    def ok(self, detail: str = "") -> bool:
        """It works: log the recovery once if a failure was logged. Returns whether it
        logged."""
        with self._lock:
            was = self._key
            self._key = None
            self.failures = 0
        if was is None:
            return False
        self._log.info("%s%s (was: %s)", self._recovered, f"; {detail}" if detail else "", was)
        return True
