"""Drive gpiozero `MockFactory` pins from a trace in real time: a bench test of the whole
agent (pins, detection, outbox, MQTT) without hardware, and what the crowd simulator and
the fault tests build on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from gpiozero.pins.mock import MockFactory

from .config import EdgeConfig
from .trace import TraceError, TraceRow


def mock_factory() -> MockFactory:
    return MockFactory()


class TraceDriver:
    """Plays trace rows onto the pins the settings give each door's beams."""

    def __init__(
        self,
        factory: MockFactory,
        settings: EdgeConfig,
        rows: Iterable[TraceRow],
        speed: float = 1.0,
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
        self._speed = speed
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
        start = time.monotonic()
        for r in self._rows:
            delay = start + r.t_ms / 1000.0 / self._speed - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            pin, high = self._pins[(r.door, r.beam)]
            level = r.blocked == high
            (pin.drive_high if level else pin.drive_low)()  # type: ignore[attr-defined]
        self.done.set()
