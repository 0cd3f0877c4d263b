"""Drive gpiozero `MockFactory` pins from a trace in real time: a bench test of the whole
agent (pins, detection, outbox, MQTT) without hardware, and what the crowd simulator and
the fault tests build on."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable

from gpiozero.pins.mock import MockFactory

from .config import EdgeConfig
from .trace import TraceError, TraceRow


def mock_factory() -> MockFactory:
    return MockFactory()


class TraceClock:
    """The detectors' clock while a trace plays (`Timebase`): the trace's own
    milliseconds. Without it a trace played `speed` times faster reaches the detectors
    with every interval shrunk by `speed` while their debounce and gap times stay in
    real milliseconds, so short blocks vanish as chatter and counts go missing (a trace
    replay counts 6, `watch --speed 5` counted 5). With it an edge carries its row's
    time exactly, and the clock never runs past the next row not yet played, so the
    detectors see what `replay` sees however fast the trace plays or late a thread
    wakes; after the last row it runs on at `speed` for the time-outs."""

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be above 0, not {speed}")
        self.speed = speed
        self._lock = threading.Lock()
        self._start_ns: int | None = None  # monotonic ns at trace time 0
        self._playing = 0  # trace ms of the row being played
        self._next: float = 0.0  # trace ms of the next row not yet played

    def begin(self, first_ms: float) -> int:
        """Trace time 0 is now; returns that instant (monotonic ns)."""
        with self._lock:
            self._start_ns = time.monotonic_ns()
            self._next = first_ms
            return self._start_ns

    def play(self, t_ms: int) -> None:
        """The rows of `t_ms` are being put on the pins now."""
        with self._lock:
            self._playing = t_ms

    def played(self, next_ms: float) -> None:
        """They are: the clock may run on to the next row (`math.inf` after the last)."""
        with self._lock:
            self._next = next_ms

    def now_ms(self) -> int:
        with self._lock:
            if self._start_ns is None:
                return 0
            elapsed = (time.monotonic_ns() - self._start_ns) / 1e6 * self.speed
            return int(min(elapsed, self._next))

    def edge_ms(self, mono_ms: int) -> int:
        with self._lock:
            return self._playing

    def mono_ms(self, t_ms: int) -> int:
        """The monotonic time the row of `t_ms` was played at."""
        with self._lock:
            start_ns = self._start_ns if self._start_ns is not None else time.monotonic_ns()
        return round(start_ns / 1e6 + t_ms / self.speed)

    def wall_ms(self, t_ms: int) -> int:
        from . import sensing  # its wall_clock_ms, looked up now: tests replace it

        return sensing.wall_clock_ms(self.mono_ms(t_ms))


class TraceDriver:
    """Plays trace rows onto the pins the settings give each door's beams, by `clock`
    (which the detectors then use too; see `TraceClock`)."""

    def __init__(
        self,
        factory: MockFactory,
        settings: EdgeConfig,
        rows: Iterable[TraceRow],
        speed: float = 1.0,
        clock: TraceClock | None = None,
    ) -> None:
        self._pins: dict[tuple[str, str], tuple[object, bool]] = {}
        for d in settings.doors:
            high = d.blocked_when == "high"
            self._pins[(d.id, "outer")] = (factory.pin(d.outer_pin), high)
            self._pins[(d.id, "inner")] = (factory.pin(d.inner_pin), high)
        self._rows = list(rows)
        for r in self._rows:
            if (r.door, r.beam) not in self._pins:
                raise TraceError(f"trace door {r.door!r} is not configured in the agent")
        self.clock = clock or TraceClock(speed)
        self._speed = self.clock.speed
        self.last_ms = self._rows[-1].t_ms if self._rows else 0
        self._stop = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trace-driver", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        for pin, high in self._pins.values():  # intact beams, whatever the pull-up says
            (pin.drive_low if high else pin.drive_high)()  # type: ignore[attr-defined]
        start = self.clock.begin(self._rows[0].t_ms if self._rows else math.inf) / 1e9
        for i, r in enumerate(self._rows):
            delay = start + r.t_ms / 1000.0 / self._speed - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            self.clock.play(r.t_ms)
            pin, high = self._pins[(r.door, r.beam)]
            level = r.blocked == high
            (pin.drive_high if level else pin.drive_low)()  # type: ignore[attr-defined]
            self.clock.played(self._rows[i + 1].t_ms if i + 1 < len(self._rows) else math.inf)
        self.done.set()
