"""Where the GPIO threads meet the pure detectors.

Pin callbacks arrive on gpiozero's threads; they only enqueue `(monotonic ms, ...)`.
One thread owns every detector and tracker, feeds them in arrival order, lets their
time-outs run (stuck beam, presence hold), and hands finished events to a sink with
wall-clock times. `footfall-edge run` sinks into the outbox, `watch` into the terminal.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gpiozero.pins import Factory

from .config import EdgeConfig
from .detection import Crossing, DoorDetector, Fault, PresenceChange, PresenceTracker
from .gpio import BeamInput, MotionInput, monotonic_ms, open_door, open_presence

log = logging.getLogger(__name__)

Detected = Crossing | Fault | PresenceChange


@dataclass(frozen=True)
class Stamped:
    """A detected event with its wall-clock time (epoch ms)."""

    wall_ms: int
    event: Detected
    mono_ms: int | None = None
    """The monotonic time of the event, when the detectors' clock is another (a trace
    played at speed); what lets the outbox correct `wall_ms` once NTP sets the clock."""


Sink = Callable[[list[Stamped]], None]


def wall_clock_ms(mono_ms: int) -> int:
    """The wall-clock time of a monotonic instant, by the wall clock as it is now (a Pi
    without a real-time clock may step its clock when NTP syncs after boot)."""
    return time.time_ns() // 1_000_000 - (monotonic_ms() - mono_ms)


class Timebase(Protocol):
    """The detectors' clock. On a Pi it is the monotonic clock (`RealTime`); a trace
    played faster than real time (`--mock-trace --speed`) has its own (mockpins)."""

    def now_ms(self) -> int:
        """Detector time now."""
        ...

    def edge_ms(self, mono_ms: int) -> int:
        """The detector time of a pin edge the pin factory stamped at `mono_ms`."""
        ...

    def mono_ms(self, t_ms: int) -> int:
        """The monotonic time (ms) of detector time `t_ms`."""
        ...

    def wall_ms(self, t_ms: int) -> int:
        """The wall-clock time (epoch ms) of detector time `t_ms`."""
        ...


class RealTime:
    def now_ms(self) -> int:
        return monotonic_ms()

    def edge_ms(self, mono_ms: int) -> int:
        return mono_ms

    def mono_ms(self, t_ms: int) -> int:
        return t_ms

    def wall_ms(self, t_ms: int) -> int:
        return wall_clock_ms(t_ms)  # looked up at each call: tests replace it


class Sensing:
    LATE_MS = 100
    MAX_UNSAVED = 100_000

    def __init__(
        self,
        settings: EdgeConfig,
        sink: Sink,
        pin_factory: Factory | None = None,
        tick_s: float = 0.25,
        timebase: Timebase | None = None,
    ) -> None:
        self.settings = settings
        self._time: Timebase = timebase or RealTime()
        self._sink = sink
        self._pin_factory = pin_factory
        self._tick_s = tick_s
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.doors = {d.id: DoorDetector(d.id, settings.detector_config(d)) for d in settings.doors}
        self.rooms = {
            p.id: PresenceTracker(p.id, round(p.hold_s * 1000)) for p in settings.presence
        }
        self._devices: list[BeamInput | MotionInput] = []
        self._thread: threading.Thread | None = None
        self.raw_levels: dict[str, bool] = {}
        self._unsaved: list[Stamped] = []
        self.lost = 0

    def start(self) -> None:
        start = self._time.now_ms()
        for d in self.settings.doors:
            outer, inner = open_door(d, self._on_beam, self._pin_factory)
            self._devices += [outer, inner]
            for name, dev in (("outer", outer), ("inner", inner)):
                if dev.active_level:  # already blocked at start: the stuck timer runs
                    self._queue.put(("beam", d.id, name, start, True))
        for p in self.settings.presence:
            dev = open_presence(p, self._on_motion, self._pin_factory)
            self._devices.append(dev)
            if dev.active_level:
                self._queue.put(("motion", p.id, start, True))
        self._thread = threading.Thread(target=self._run, name="sensing", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None
        for dev in self._devices:
            dev.close()
        self._devices.clear()

    # -- called from pin factory threads -----------------------------------------------

    def _on_beam(self, door: str, beam: str, t_ms: int, blocked: bool) -> None:
        self._queue.put(("beam", door, beam, self._time.edge_ms(t_ms), blocked))

    def _on_motion(self, sensor: str, t_ms: int, active: bool) -> None:
        self._queue.put(("motion", sensor, self._time.edge_ms(t_ms), active))

    # -- the one thread that owns the detectors ----------------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._tick_s)
            except queue.Empty:
                item = ()
            if item is None:
                self._save()
                return
            # Edges reach this thread a little after they happen; let time-outs run only
            # up to where no edge can still be on its way. Read before the queue is
            # drained: an edge stamped before this instant is in the queue by now.
            now = self._time.now_ms() - self.LATE_MS
            found: list[Detected] = []
            try:
                if item:
                    found += self._apply(item)
                    while True:  # drain what else is waiting, in order
                        try:
                            more = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if more is None:
                            self._queue.put(None)
                            break
                        found += self._apply(more)
                for det in self.doors.values():
                    found += det.advance(now)
                for room in self.rooms.values():
                    found += room.advance(now)
                if found:
                    clock = self._time
                    self._unsaved += [
                        Stamped(clock.wall_ms(e.t_ms), e, clock.mono_ms(e.t_ms)) for e in found
                    ]
            except Exception:  # keep counting whatever one bad reading did
                log.exception("sensing loop error")
            self._save()

    def _save(self) -> None:
        """Hand events to the sink; keep them and try again while it fails (disk full,
        I/O error), up to a bound, so that a passing storage fault loses nothing."""
        if not self._unsaved:
            return
        try:
            self._sink(self._unsaved)
        except Exception:
            if len(self._unsaved) > self.MAX_UNSAVED:
                lost = len(self._unsaved) - self.MAX_UNSAVED
                del self._unsaved[:lost]
                self.lost += lost
                log.error("storage keeps failing: %d events lost", self.lost)
            log.exception("could not store %d events; retrying", len(self._unsaved))
            return
        self._unsaved = []

    def _apply(self, item: tuple[Any, ...]) -> list[Detected]:
        if item[0] == "beam":
            _, door, beam, t_ms, blocked = item
            self.raw_levels[f"{door}/{beam}"] = blocked
            return list(self.doors[door].feed(t_ms, beam, blocked))
        _, sensor, t_ms, active = item
        self.raw_levels[sensor] = active
        return list(self.rooms[sensor].feed(t_ms, active))
