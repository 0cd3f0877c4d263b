"""The service runtime's stop: a burst of SIGTERMs (systemd's stop, then an operator's
kill, then the demo's stop script) must end the service once and cleanly. A handler that
took a lock once deadlocked the collector when the second signal arrived inside the
first one's handler."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from footfall_runtime.service import Periodic, StopFlag, reload_on_sighup
from tests.support.waiting import eventually

SERVICE = textwrap.dedent(
    """
    import sys, threading, time
    from footfall_runtime.service import run_until_signal

    inner = threading.Event()  # what a service's interrupt() sets, as the collector's does
    def start():
        print("started", flush=True)
    def interrupt():
        for _ in range(2000):  # keep the handler busy inside Event.set() and its lock
            inner.set()
            inner.clear()
        inner.set()
    def stop():
        print("stopped", flush=True)
    sys.exit(run_until_signal(start, stop, interrupt=interrupt, tick_s=0.01))
    """
)


def test_a_burst_of_sigterms_stops_the_service_once() -> None:
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True, env=os.environ
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        for _ in range(50):
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert out.split() == ["stopped"]


def test_the_stop_flag_waits_and_answers_without_a_lock() -> None:
    flag = StopFlag()
    t0 = time.monotonic()
    assert flag.wait(0.2) is False
    assert time.monotonic() - t0 >= 0.2
    flag.set()
    assert flag.wait(5) is True
    eventually(flag.is_set, 1, "the flag")


def test_periodic_runs_on_request_and_survives_a_failing_turn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A site folder is read again on SIGHUP (`request`, from the signal handler: a flag,
    no lock) and every `every_s`; one turn failing does not end the next ones."""
    turns: list[int] = []

    def action() -> None:
        turns.append(len(turns))
        if len(turns) == 1:
            raise RuntimeError("a broken turn")

    periodic = Periodic(action, 3600, "test-periodic", logging.getLogger("test.periodic"))
    periodic.start()
    try:
        for _ in range(50):  # a burst of SIGHUPs asks for one turn, not fifty
            periodic.request()
        eventually(lambda: periodic.runs == 1, 5, "the first turn")
        periodic.request()
        eventually(lambda: periodic.runs == 2, 5, "the second turn")
        assert turns == [0, 1]
        assert "test-periodic failed; trying again at the next turn" in caplog.text
    finally:
        periodic.stop()
    fast = Periodic(lambda: None, 0.05, "fast", logging.getLogger("test.periodic"))
    fast.start()
    try:
        eventually(lambda: fast.runs >= 3, 5, "three timed turns")
    finally:
        fast.stop()


def test_sighup_asks_for_a_reload_or_is_ignored_never_ends_the_program() -> None:
    """`systemctl reload` sends SIGHUP: a program given a folder reads it again; one given
    a single site file (nothing to reload) must not die of it, as it would by default."""
    asked: list[int] = []
    before = signal.getsignal(signal.SIGHUP)
    with reload_on_sighup(lambda: asked.append(1)):
        os.kill(os.getpid(), signal.SIGHUP)
        eventually(lambda: asked == [1], 5, "the reload asked for")
    with reload_on_sighup(None):
        os.kill(os.getpid(), signal.SIGHUP)  # ignored: this test process goes on
        time.sleep(0.1)
    assert asked == [1]
    assert signal.getsignal(signal.SIGHUP) == before  # put back as it was
