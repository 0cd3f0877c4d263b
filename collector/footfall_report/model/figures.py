"""The report's figures as data: per day, month, zone and door, the comparisons and the
hourly profile, each with the `as_dict()` that is the JSON form (docs/reports.md). Words
for statuses live here so the renderers and the JSON say the same thing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ..periods import Period

__all__ = [
    "STATUS_TEXT",
    "WEEKDAYS",
    "Comparison",
    "DayFigure",
    "DayStatus",
    "DoorFigure",
    "DoorStatus",
    "Doors",
    "MonthFigure",
    "ProfileCell",
    "Report",
    "ReportError",
    "UnknownZoneError",
    "ZoneReport",
    "ZoneStatus",
    "iso",
]

DayStatus = Literal["open", "closed", "closed_with_visits", "no_data", "not_yet"]
DoorStatus = Literal["available", "partial", "not_available"]
ZoneStatus = Literal["counted", "closed", "no_data", "not_yet"]

STATUS_TEXT: Final[dict[str, str]] = {
    "open": "open",
    "closed": "closed",
    "closed_with_visits": "closed, visits counted",
    "no_data": "no data",
    "not_yet": "not yet",
}
WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class ReportError(ValueError):
    """A report that cannot be made as asked (the message says why)."""


class UnknownZoneError(ReportError):
    """Zones asked for that the site (or the report) does not have: `unknown`, among
    the `known` ones."""

    def __init__(
        self, message: str, unknown: Sequence[str] = (), known: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.unknown = list(unknown)
        self.known = list(known)


@dataclass(frozen=True)
class DayFigure:
    day: dt.date
    status: DayStatus
    opening_hours: str | None
    """"08:00-20:00", or None when closed."""
    entries: int | None
    exits: int | None
    peak: int | None
    peak_at: dt.datetime | None
    estimated_hours: int

    @property
    def estimated(self) -> bool:
        return self.estimated_hours > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "weekday": WEEKDAYS[self.day.weekday()],
            "status": self.status,
            "opening_hours": self.opening_hours,
            "entries": self.entries,
            "exits": self.exits,
            "peak": self.peak,
            "peak_at": iso(self.peak_at),
            "estimated_hours": self.estimated_hours,
            "estimated": self.estimated,
        }


@dataclass(frozen=True)
class MonthFigure:
    """One calendar month of a zone (within the period)."""

    year: int
    month: int
    entries: int | None
    estimated_hours: int
    days_open: int
    days_closed: int
    days_no_data: int
    days_not_yet: int

    @property
    def key(self) -> str:
        return f"{self.year}-{self.month:02d}"

    @property
    def estimated(self) -> bool:
        return self.estimated_hours > 0

    @property
    def closed(self) -> bool:
        """No open day in the month (per the site file)."""
        return self.days_open == 0 and self.days_not_yet == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.key,
            "entries": self.entries,
            "estimated_hours": self.estimated_hours,
            "estimated": self.estimated,
            "closed": self.closed,
            "days_open": self.days_open,
            "days_closed": self.days_closed,
            "days_no_data": self.days_no_data,
            "days_not_yet": self.days_not_yet,
        }


@dataclass(frozen=True)
class Comparison:
    """The zone's visits in an earlier period (a month or a year before)."""

    period: Period
    entries: int | None
    """None: no rollup row at all in that period."""
    change_pct: float | None
    """(now - then) / then * 100, one decimal; None without both figures or when then = 0."""
    estimated_hours: int
    days_no_data: int
    truncated_to_days: int | None = None
    """The period being reported is in progress: only its first N days are compared."""

    @property
    def estimated(self) -> bool:
        return self.estimated_hours > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period.key,
            "label": self.period.label,
            "entries": self.entries,
            "change_pct": self.change_pct,
            "estimated_hours": self.estimated_hours,
            "estimated": self.estimated,
            "days_no_data": self.days_no_data,
            "truncated_to_days": self.truncated_to_days,
        }


@dataclass(frozen=True)
class ProfileCell:
    """Mean entries in one local hour of one weekday, over the days that have that hour."""

    mean: float | None
    days: int
    estimated: bool

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "days": self.days, "estimated": self.estimated}


@dataclass(frozen=True)
class ZoneReport:
    zone: str
    name: str
    parent: str | None
    parent_name: str | None
    depth: int
    entries: int | None
    """Visits; None: no rollup row at all in the period."""
    exits: int | None
    estimated_hours: int
    peak: int | None
    peak_at: dt.datetime | None
    peak_estimated: bool
    days_open: int
    days_closed: int
    days_no_data: int
    days_not_yet: int
    closed_with_visits: list[dt.date]
    days: list[DayFigure]
    months: list[MonthFigure]
    month_before: Comparison | None
    year_before: Comparison | None
    profile: list[list[ProfileCell]]
    """[weekday 0=Mon][local hour 0..23]."""

    @property
    def estimated(self) -> bool:
        return self.estimated_hours > 0

    @property
    def complete(self) -> bool:
        return self.days_no_data == 0

    @property
    def status(self) -> ZoneStatus:
        """Why `entries` is None: every day closed, or open days without data, or all days
        still to come; "counted" when it is a figure."""
        if self.entries is not None:
            return "counted"
        if self.days_no_data:
            return "no_data"
        if self.days_open == 0 and self.days_closed > 0:
            return "closed"
        return "not_yet" if self.days_not_yet else "no_data"

    def as_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "name": self.name,
            "parent": self.parent,
            "parent_name": self.parent_name,
            "depth": self.depth,
            "status": self.status,
            "entries": self.entries,
            "exits": self.exits,
            "estimated_hours": self.estimated_hours,
            "estimated": self.estimated,
            "peak": self.peak,
            "peak_at": iso(self.peak_at),
            "peak_estimated": self.peak_estimated,
            "days_open": self.days_open,
            "days_closed": self.days_closed,
            "days_no_data": self.days_no_data,
            "days_not_yet": self.days_not_yet,
            "closed_with_visits": [d.isoformat() for d in self.closed_with_visits],
            "month_before": self.month_before.as_dict() if self.month_before else None,
            "year_before": self.year_before.as_dict() if self.year_before else None,
            "days": [d.as_dict() for d in self.days],
            "months": [m.as_dict() for m in self.months],
            "profile": {
                WEEKDAYS[w]: [c.as_dict() for c in cells] for w, cells in enumerate(self.profile)
            },
        }


@dataclass(frozen=True)
class DoorFigure:
    door: str
    outside: str | None
    inside: str | None
    """None for a door found in the data but no longer in the site file."""
    label: str
    entries: int | None
    """Crossings `in`; None when the raw data are not available."""
    exits: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "door": self.door,
            "outside": self.outside,
            "inside": self.inside,
            "label": self.label,
            "in": self.entries,
            "out": self.exits,
        }


@dataclass(frozen=True)
class Doors:
    status: DoorStatus
    available_from: dt.date | None
    """First local day whose raw crossings are still kept; None: all are kept."""
    doors: list[DoorFigure] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "available_from": self.available_from.isoformat() if self.available_from else None,
            "doors": [d.as_dict() for d in self.doors],
        }


@dataclass(frozen=True)
class Report:
    site: str
    site_name: str
    timezone: str
    period: Period
    generated_at: dt.datetime
    zones: list[ZoneReport]
    doors: Doors

    @property
    def in_progress(self) -> bool:
        return self.generated_at < self.period.end

    def zone(self, zone_id: str) -> ZoneReport:
        for z in self.zones:
            if z.zone == zone_id:
                return z
        raise UnknownZoneError(
            f"zone {zone_id!r} is not in this report", [zone_id], [z.zone for z in self.zones]
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "site_name": self.site_name,
            "timezone": self.timezone,
            "period": _period_dict(self.period),
            "generated_at": iso(self.generated_at),
            "in_progress": self.in_progress,
            "zones": [z.as_dict() for z in self.zones],
            "doors": self.doors.as_dict(),
        }


def iso(when: dt.datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when is not None else None


def _period_dict(period: Period) -> dict[str, Any]:
    return {
        "key": period.key,
        "kind": period.kind,
        "label": period.label,
        "first": period.first.isoformat(),
        "last": period.last.isoformat(),
        "start": iso(period.start),
        "end": iso(period.end),
        "hours": period.hours,
    }
