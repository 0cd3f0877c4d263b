"""footfall-web stops at once, whenever its stop signals land (docs/web.md, "Stopping").
Ctrl-C in the demo reaches the whole process group and the demo's SIGTERM follows at
once: a second signal that came while the first one's handler held the live state's
lock (to end the open streams) hung the process for good, and the demo killed it after
20 s. The handler now only sets uvicorn's flag; the streams end from the event loop."""

from __future__ import annotations

import functools
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from footfall_sim.localservices import Influx, Mosquitto
from tests.support.collector import write_site
from tests.support.waiting import eventually
from tests.support.web import web_process

pytestmark = pytest.mark.services


class Stream:
    """One open live stream, read on a thread of its own until the server ends it."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.snapshots = 0
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            with httpx.stream("GET", f"{self.base}/api/v1/stream", timeout=30) as answer:
                for line in answer.iter_lines():
                    if line == "event: snapshot":
                        self.snapshots += 1
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()


def all_open(streams: list[Stream]) -> bool:
    return all(s.snapshots for s in streams)


def test_a_burst_of_stop_signals_ends_the_server_and_its_streams_at_once(
    tmp_path: Path, mosquitto: Mosquitto, influx: Influx
) -> None:
    site = write_site(tmp_path)
    for attempt in range(4):
        log = tmp_path / f"web-{attempt}.log"
        with web_process(["--site", str(site)], mosquitto, influx, log) as (proc, http):
            streams = [Stream(str(http.base_url).rstrip("/")) for _ in range(3)]
            eventually(functools.partial(all_open, streams), 15, "the streams open")
            t0 = time.monotonic()
            # As Ctrl-C and a stop script's SIGTERM, over and over until it has ended (so
            # that some land while the handler of another one runs).
            while proc.poll() is None and time.monotonic() - t0 < 10:
                proc.send_signal(signal.SIGINT)
                proc.send_signal(signal.SIGTERM)
            try:
                status = proc.wait(1)
            except Exception:
                proc.send_signal(signal.SIGUSR1)  # its stacks, in the failure's text
                time.sleep(0.5)
                proc.kill()
                proc.wait()
                raise AssertionError(f"not stopped in 10 s\n{log.read_text()[-6000:]}") from None
            took = time.monotonic() - t0
            assert status == 0, log.read_text()  # a clean stop, whatever came after
            assert took < 5, (took, log.read_text())
            assert all(s.ended.wait(5) for s in streams)


def test_sigusr1_prints_every_threads_stack_and_the_server_goes_on(
    tmp_path: Path, mosquitto: Mosquitto, influx: Influx
) -> None:
    site = write_site(tmp_path)
    log = tmp_path / "web.log"
    with web_process(["--site", str(site)], mosquitto, influx, log) as (proc, http):
        proc.send_signal(signal.SIGUSR1)
        eventually(lambda: "Current thread" in log.read_text(), 10, "the stacks in the log")
        text = log.read_text()
        assert "most recent call first" in text and "footfall_web/cli.py" in text, text
        assert http.get("/healthz").status_code == 200
