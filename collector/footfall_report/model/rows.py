"""The rollup rows a report is built from, as `source.py` reads them: the input side of
the model, kept apart from the figures so the readers and the builders share one shape."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["DailyRow", "DoorCount", "HourlyRow"]


@dataclass(frozen=True)
class DailyRow:
    """One `visits_daily` point: a zone's local calendar day."""

    zone: str
    day: dt.date
    entries: int
    exits: int
    peak: int
    peak_at_ms: int | None
    estimated_hours: int


class HourlyRow(NamedTuple):
    """One `visits_hourly` point, by its local date and hour (the autumn DST day's
    repeated hour gives two rows with the same hour). A tuple: a year has 8,760 of them
    per zone."""

    zone: str
    day: dt.date
    hour: int
    entries: int
    estimated: bool

    @classmethod
    def at(cls, zone: str, start: dt.datetime, entries: int, estimated: bool) -> HourlyRow:
        """The row of the hour starting at `start` (aware, on the site's clock)."""
        return cls(zone, start.date(), start.hour, entries, estimated)


@dataclass(frozen=True)
class DoorCount:
    """Raw crossings through one door in one direction over the period."""

    door: str
    direction: str
    count: int
