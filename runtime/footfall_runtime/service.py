"""What every long-running program (edge agent, collector, alerts, web) needs around its own
logic, written once: a clock the pure parts are handed instead of reading time themselves,
threads that are started and joined as a group, one log format (text or JSON lines for
journald and Loki), and the main loop that runs until SIGTERM or SIGINT.

Standard library only: the edge imports it on a Pi."""

from __future__ import annotations

import faulthandler
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol


class Clock(Protocol):
    """Wall-clock milliseconds; tests pass a clock they move by hand."""

    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class Threads:
    """The daemon threads of one service: started by name, joined together at stop."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)
        return t

    def join(self, timeout_s: float = 10.0) -> None:
        """Each thread gets `timeout_s`; one that hangs does not hold the others' stop."""
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=timeout_s)
        self._threads.clear()

    def __iter__(self) -> Iterator[threading.Thread]:
        return iter(list(self._threads))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log shippers (journald, Loki) parse without rules."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(fmt: str = "text", verbose: bool = False) -> None:
    """`fmt`: "text" (the default) or "json"; always to stderr, which systemd journals."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


class Stopping(Protocol):
    """What a thread that must end with its service reads: a `StopFlag` (the one a signal
    handler may set) or a `threading.Event`."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class StopFlag:
    """Set by a signal handler, so without a lock: Python runs a handler on the main
    thread between two bytecodes, maybe while that thread holds the very lock a
    `threading.Event.set()` would take (a second SIGTERM arriving inside the first one's
    handler deadlocked the collector's stop that way). Waiting polls instead."""

    POLL_S = 0.05

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._set:
            left = self.POLL_S
            if deadline is not None:
                left = min(left, deadline - time.monotonic())
            if left <= 0:
                break
            time.sleep(left)
        return self._set


class Periodic:
    """`action` on a thread of its own every `every_s` seconds, and within `POLL_S` of a
    `request()` (SIGHUP: a folder of sites read again). `request` only sets a flag, so a
    signal handler may call it (see StopFlag); a failing action is logged and retried at
    the next turn, never the end of the service."""

    POLL_S = 0.1

    def __init__(
        self, action: Callable[[], None], every_s: float, name: str, logger: logging.Logger
    ) -> None:
        self.action = action
        self.every_s = every_s
        self.name = name
        self._log = logger
        self._asked = False
        self._stop = StopFlag()
        self._thread: threading.Thread | None = None
        self.runs = 0
        """Turns completed (tests wait on it)."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._asked = True

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        due = time.monotonic() + self.every_s
        while not self._stop.is_set():
            if not self._asked and time.monotonic() < due:
                self._stop.wait(self.POLL_S)
                continue
            self._asked = False
            try:
                self.action()
            except Exception:  # a bug in one turn must not end the next ones
                self._log.exception("%s failed; trying again at the next turn", self.name)
            self.runs += 1
            due = time.monotonic() + self.every_s


@contextmanager
def stop_on_signals(on_stop: Callable[[], None] | None = None) -> Iterator[StopFlag]:
    """A flag set by SIGTERM (systemd's stop) or SIGINT (Ctrl-C); `on_stop` also runs,
    once, from the first signal's handler, for work that must be interrupted at once (a
    wait for InfluxDB at start); later signals do nothing more. `kill -USR1 PID` prints
    every thread's stack to stderr. The previous handlers come back on exit, so tests
    may use it in-process."""
    stop = StopFlag()

    def handler(_signum: int, _frame: object) -> None:
        if stop.is_set():
            return
        stop.set()
        if on_stop is not None:
            on_stop()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with stacks_on_usr1():
            yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def stacks_on_usr1() -> Iterator[None]:
    """`kill -USR1 PID` prints every thread's stack to stderr (a hung stop shows where it
    hangs; the demo sends it before it kills a process that did not stop)."""
    faulthandler.register(signal.SIGUSR1, file=2)  # the descriptor: sys.stderr may be a capture
    try:
        yield
    finally:
        faulthandler.unregister(signal.SIGUSR1)


@contextmanager
def reload_on_sighup(request: Callable[[], None] | None) -> Iterator[None]:
    """SIGHUP (`systemctl reload`) calls `request`, which must only set a flag
    (`Periodic.request`); without one (a program given a single site file) SIGHUP is
    ignored rather than ending the program. Installed before the service starts, so that
    a reload during a long start (waiting for InfluxDB) does not end it either."""
    handler = signal.SIG_IGN if request is None else (lambda _s, _f: request())
    previous = signal.signal(signal.SIGHUP, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


def run_until_signal(
    start: Callable[[], None],
    stop: Callable[[], None],
    *,
    interrupt: Callable[[], None] | None = None,
    tick: Callable[[], None] | None = None,
    tick_s: float = 1.0,
) -> int:
    """The main loop of a service: `start()`, wait for SIGTERM/SIGINT (calling `tick()`
    every `tick_s`), then `stop()` whatever happened. Returns the exit status 0."""
    with stop_on_signals(interrupt) as stopping:
        try:
            start()
            while not stopping.wait(tick_s):
                if tick is not None:
                    tick()
        finally:
            stop()
    return 0
