"""GPIO adapters through gpiozero's MockFactory: driving pins produces the right events."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TypeVar

from gpiozero.pins.mock import MockFactory

from footfall_edge.config import DoorSettings
from footfall_edge.detection import Crossing, Fault, PresenceChange
from footfall_edge.gpio import BeamInput, monotonic_ms
from footfall_edge.sensing import Sensing, Stamped
from tests.support.edge import DOORS, clear_beams, edge_settings, walk

T = TypeVar("T")


class Collected:
    def __init__(self) -> None:
        self.events: list[Stamped] = []
        self.lock = threading.Lock()

    def __call__(self, events: list[Stamped]) -> None:
        with self.lock:
            self.events.extend(events)

    def of(self, kind: type[T]) -> list[T]:
        with self.lock:
            return [s.event for s in self.events if isinstance(s.event, kind)]

    def wait(self, cond, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not cond():
            time.sleep(0.02)
        assert cond(), self.events


def test_walking_through_doors_counts(mock_factory: MockFactory, tmp_path: Path) -> None:
    settings = edge_settings(tmp_path)
    got = Collected()
    sensing = Sensing(settings, got, mock_factory, tick_s=0.02)
    sensing.start()
    clear_beams(mock_factory, settings)
    try:
        (a, ao, ai), (b, bo, bi) = DOORS
        before = time.time() * 1000
        walk(mock_factory, ao, ai, "in")
        walk(mock_factory, ao, ai, "in")
        walk(mock_factory, bo, bi, "out")
        got.wait(lambda: len(got.of(Crossing)) == 3)
        crossings = got.of(Crossing)
        assert [(c.door, c.dir) for c in crossings] == [(a, "in"), (a, "in"), (b, "out")]
        stamped = [s for s in got.events if isinstance(s.event, Crossing)]
        assert all(before <= s.wall_ms <= time.time() * 1000 for s in stamped)
        assert got.of(Fault) == []
    finally:
        sensing.stop()


def test_presence_holds_then_clears(mock_factory: MockFactory, tmp_path: Path) -> None:
    settings = edge_settings(tmp_path)
    got = Collected()
    sensing = Sensing(settings, got, mock_factory, tick_s=0.02)
    sensing.start()
    clear_beams(mock_factory, settings)
    try:
        pir = mock_factory.pin(22)
        pir.drive_high()
        time.sleep(0.05)
        pir.drive_low()
        got.wait(lambda: len(got.of(PresenceChange)) == 2)
        on, off = [s for s in got.events if isinstance(s.event, PresenceChange)]
        assert [c.occupied for c in got.of(PresenceChange)] == [True, False]
        assert 300 <= off.wall_ms - on.wall_ms <= 600  # 50 ms motion + 0.3 s hold
    finally:
        sensing.stop()


def test_edge_time_comes_from_the_pin_not_the_callback(mock_factory: MockFactory) -> None:
    seen: list[tuple[int, bool]] = []
    beam = BeamInput(
        4,
        pull_up=True,
        active_when="high",
        sink=lambda t, v: seen.append((t, v)),
        pin_factory=mock_factory,
    )
    try:
        # An edge that the pin saw 250 ms before its callback ran.
        ticks = mock_factory.ticks() - 0.250
        beam._pin_changed(ticks, 1)
        now = monotonic_ms()
        t, blocked = seen[-1]
        assert blocked is True
        assert 240 <= now - t <= 300
    finally:
        beam.close()


def test_active_low_receiver(mock_factory: MockFactory, tmp_path: Path) -> None:
    """A receiver that pulls low when the beam is broken: blocked_when = low."""
    door = DoorSettings(id="d", outer_pin=12, inner_pin=13, blocked_when="low")
    settings = edge_settings(tmp_path, doors=[door], presence=[])
    got = Collected()
    sensing = Sensing(settings, got, mock_factory, tick_s=0.02)
    sensing.start()
    try:
        o, i = mock_factory.pin(12), mock_factory.pin(13)
        o.drive_high(), i.drive_high()  # intact beams read high
        time.sleep(0.05)
        for pin, level in ((o, False), (i, False), (o, True), (i, True)):
            (pin.drive_high if level else pin.drive_low)()
            time.sleep(0.05)
        got.wait(lambda: [c.dir for c in got.of(Crossing)] == ["in"])
    finally:
        sensing.stop()


def test_beam_blocked_at_start_raises_the_fault(mock_factory: MockFactory, tmp_path: Path) -> None:
    settings = edge_settings(
        tmp_path,
        detector={"blocked_s": 0.3},
        doors=[{"id": "d", "outer_pin": 17, "inner_pin": 27}],
        presence=[],
    )
    got = Collected()
    mock_factory.pin(17).drive_high()  # something left in the beam before the agent starts
    sensing = Sensing(settings, got, mock_factory, tick_s=0.02)
    sensing.start()
    mock_factory.pin(27).drive_low()
    try:
        got.wait(lambda: len(got.of(Fault)) == 1)
        fault = got.of(Fault)[0]
        assert (fault.source, fault.fault, fault.active) == ("d/outer", "beam_blocked", True)
        mock_factory.pin(17).drive_low()
        got.wait(lambda: len(got.of(Fault)) == 2)
        assert got.of(Fault)[1].active is False
    finally:
        sensing.stop()


def test_events_survive_a_storage_fault(mock_factory: MockFactory, tmp_path: Path) -> None:
    """The outbox failing for a while (disk full, I/O error) loses no event."""
    settings = edge_settings(tmp_path)
    got = Collected()
    failures = [2]

    def flaky(events: list[Stamped]) -> None:
        if failures[0] > 0:
            failures[0] -= 1
            raise OSError("disk full")
        got(events)

    sensing = Sensing(settings, flaky, mock_factory, tick_s=0.02)
    sensing.start()
    clear_beams(mock_factory, settings)
    try:
        _, ao, ai = DOORS[0]
        for _ in range(3):
            walk(mock_factory, ao, ai, "in")
        got.wait(lambda: len(got.of(Crossing)) == 3)
        assert failures[0] == 0 and sensing.lost == 0
    finally:
        sensing.stop()
