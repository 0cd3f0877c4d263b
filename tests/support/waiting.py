"""Waiting without guessing: tests wait for a condition (`eventually`) or for a marker
that went down the same ordered path as the thing under test (`barrier`), never for a
fixed time, so that they are as fast as the system and fail with what they waited for.

A sleep stays only where time passing is the scenario itself (a trace played in real
time, a threshold or back-off that must elapse, reconnect attempts that must happen)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    cond: Callable[[], T],
    timeout_s: float = 30.0,
    what: str = "condition",
    interval_s: float = 0.1,
) -> T:
    """Poll `cond` until it returns something true and return that; fail naming `what`,
    the time waited and the last value seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout_s} s (last: {value!r})")
        time.sleep(interval_s)


def barrier(
    send_marker: Callable[[], object],
    arrived: Callable[[], object],
    timeout_s: float = 20.0,
    what: str = "the barrier's marker",
) -> None:
    """Everything sent before has been processed: `send_marker` sends a marker down the
    same ordered path right after the messages under test (the same MQTT connection and
    topic, the same queue), and this waits until `arrived` sees it come out at the end.
    Whatever those messages were going to cause has happened by then, so a test can
    assert that nothing more came without sleeping."""
    send_marker()
    eventually(arrived, timeout_s, what)
