"""Room presence from a PIR / mmWave OUT pin: occupied while motion is seen and for a
hold time after the last motion (docs/spec.md §1). Pure, like the door detector."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PresenceChange:
    t_ms: int
    sensor: str
    occupied: bool


class PresenceTracker:
    def __init__(self, sensor: str, hold_ms: int = 120_000) -> None:
        if hold_ms < 0:
            raise ValueError("hold_ms must be >= 0")
        self.sensor = sensor
        self.hold_ms = hold_ms
        self.occupied = False
        self._motion = False
        self._hold_until: int | None = None
        self._now = 0

    def feed(self, t_ms: int, motion: bool) -> list[PresenceChange]:
        out = self.advance(t_ms)
        t = self._now
        if motion == self._motion:
            return out
        self._motion = motion
        if motion:
            self._hold_until = None
            if not self.occupied:
                self.occupied = True
                out.append(PresenceChange(t, self.sensor, True))
        else:
            self._hold_until = t + self.hold_ms
            out.extend(self.advance(t))
        return out

    def advance(self, t_ms: int) -> list[PresenceChange]:
        self._now = max(self._now, int(t_ms))
        due = self._hold_until
        if self.occupied and not self._motion and due is not None and due <= self._now:
            self.occupied = False
            self._hold_until = None
            return [PresenceChange(due, self.sensor, False)]
        return []
