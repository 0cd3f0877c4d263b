"""gpiozero adapters: thin wrappers that turn pin edges into timestamped readings.

The time of a reading is the time of the edge as the pin factory saw it (its `ticks`),
not when a Python thread got round to it: on a busy Pi Zero the callback can run
milliseconds late, which is as long as a fast walker takes to cross a beam.
Hardware sits behind gpiozero's pin factories: lgpio on a Pi with Bookworm, `MockFactory`
in tests and in the crowd simulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gpiozero import DigitalInputDevice
from gpiozero.pins import Factory

from .config import (
    DoorSettings,
    EdgeConfig,
    Level,
    Pin,
    PresenceSettings,
    bcm_pin,
    header_pin,
)

# (monotonic ms of the edge, active) -> None; called from the pin factory's thread.
LevelSink = Callable[[int, bool], None]


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class _EdgeInput(DigitalInputDevice):  # type: ignore[misc]
    """A digital input that reports each edge with the factory's own timestamp."""

    def __init__(
        self,
        pin: Pin,
        *,
        pull_up: bool,
        active_when: Level,
        sink: LevelSink,
        pin_factory: Factory | None = None,
    ) -> None:
        self._sink: LevelSink | None = None
        self._active_high = active_when == "high"
        super().__init__(pin, pull_up=pull_up, pin_factory=pin_factory)
        self._sink = sink

    def _pin_changed(self, ticks: Any, state: Any) -> None:
        super()._pin_changed(ticks, state)
        sink = self._sink
        if sink is None:
            return
        factory = self.pin_factory
        # How long ago the edge happened, by the factory's clock; robust to tick wrap.
        ago_s = max(0.0, float(factory.ticks_diff(factory.ticks(), ticks)))
        sink(monotonic_ms() - round(ago_s * 1000), bool(state) == self._active_high)

    @property
    def active_level(self) -> bool:
        """The current level as this sensor means it (blocked / motion)."""
        return bool(self.pin.state) == self._active_high


class BeamInput(_EdgeInput):
    """One IR beam-break receiver; active means the beam is interrupted."""


class MotionInput(_EdgeInput):
    """A PIR or mmWave presence sensor's OUT pin; active means motion."""


def open_door(
    door: DoorSettings,
    on_beam: Callable[[str, str, int, bool], None],
    pin_factory: Factory | None = None,
) -> tuple[BeamInput, BeamInput]:
    def beam(name: str, pin: Pin) -> BeamInput:
        def sink(t_ms: int, blocked: bool) -> None:
            on_beam(door.id, name, t_ms, blocked)

        return BeamInput(
            pin,
            pull_up=door.pull_up,
            active_when=door.blocked_when,
            sink=sink,
            pin_factory=pin_factory,
        )

    return beam("outer", door.outer_pin), beam("inner", door.inner_pin)


def open_presence(
    sensor: PresenceSettings,
    on_motion: Callable[[str, int, bool], None],
    pin_factory: Factory | None = None,
) -> MotionInput:
    return MotionInput(
        sensor.pin,
        pull_up=sensor.pull_up,
        active_when=sensor.active_when,
        sink=lambda t, v: on_motion(sensor.id, t, v),
        pin_factory=pin_factory,
    )


def describe_pins(settings: EdgeConfig) -> list[str]:
    """What `footfall-edge check` shows the installer: each pin by its GPIO number and
    where it is on the header, which is what a wire goes to."""

    def where(pin: Pin) -> str:
        bcm = bcm_pin(pin, "pin")
        return f"GPIO{bcm} (header pin {header_pin(bcm)})"

    lines = []
    for d in settings.doors:
        pull = "pull-up" if d.pull_up else "no pull-up"
        lines.append(
            f"door {d.id}: outer beam on {where(d.outer_pin)}, inner beam on "
            f"{where(d.inner_pin)} ({pull}, blocked when {d.blocked_when}"
            f"{', inverted' if d.invert else ''})"
        )
    for p in settings.presence:
        lines.append(
            f"presence {p.id}: {where(p.pin)} (motion when {p.active_when}, hold {p.hold_s:g} s)"
        )
    return lines
