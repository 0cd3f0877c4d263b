"""The report as numbers: rollup rows in, per-zone figures out. Pure (no I/O, `now` given),
so every rule (closed days, "no data", estimates, comparisons, DST days) is tested on its
own; `source.py` does the reading and the renderers only format.

Words used throughout, as docs/reports.md explains them to readers:

- closed: the site file's opening hours say the zone is closed that day. A closed day
  shows as "closed", not 0, unless visits were counted: then the count is shown and the
  day flagged (`closed_with_visits`).
- no data: an open day without a rollup row (nothing was computed for it): not 0.
- estimated: the figure includes at least one hour in which an agent serving the zone's
  doors was offline or had a fault, so the count may be low.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple
from zoneinfo import ZoneInfo

from footfall_contract.site import Site

from .periods import Period, local_datetime, month_period

__all__ = [
    "Comparison",
    "DailyRow",
    "DayFigure",
    "DoorCount",
    "DoorFigure",
    "Doors",
    "HourlyRow",
    "MonthFigure",
    "ProfileCell",
    "Report",
    "ReportError",
    "Statistics",
    "StatisticsUnit",
    "UnknownZoneError",
    "ZoneReport",
    "build_report",
    "build_statistics",
    "select_zones",
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
    pass


# --- input rows ----------------------------------------------------------------------


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


# --- output --------------------------------------------------------------------------


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
            "peak_at": _iso(self.peak_at),
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
            "peak_at": _iso(self.peak_at),
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
        raise UnknownZoneError(f"zone {zone_id!r} is not in this report")

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "site_name": self.site_name,
            "timezone": self.timezone,
            "period": _period_dict(self.period),
            "generated_at": _iso(self.generated_at),
            "in_progress": self.in_progress,
            "zones": [z.as_dict() for z in self.zones],
            "doors": self.doors.as_dict(),
        }


@dataclass(frozen=True)
class StatisticsUnit:
    zone: str
    name: str
    parent: str | None
    depth: int
    visits: int | None
    estimated_hours: int
    months: list[MonthFigure]

    @property
    def estimated_months(self) -> list[int]:
        """Months with at least one estimated hour."""
        return [m.month for m in self.months if m.estimated]

    @property
    def closed_months(self) -> list[int]:
        """Months without an open day."""
        return [m.month for m in self.months if m.closed]

    @property
    def no_data_months(self) -> list[int]:
        """Months with at least one open day that has no data."""
        return [m.month for m in self.months if m.days_no_data]

    def as_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "name": self.name,
            "parent": self.parent,
            "depth": self.depth,
            "visits": self.visits,
            "estimated_hours": self.estimated_hours,
            "estimated_months": self.estimated_months,
            "closed_months": self.closed_months,
            "no_data_months": self.no_data_months,
            "months": [m.as_dict() for m in self.months],
        }


@dataclass(frozen=True)
class Statistics:
    """Annual visits per unit (zone), as the Finnish public library statistics ask."""

    site: str
    site_name: str
    year: int
    generated_at: dt.datetime
    units: list[StatisticsUnit]

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "site_name": self.site_name,
            "year": self.year,
            "generated_at": _iso(self.generated_at),
            "units": [u.as_dict() for u in self.units],
        }


# --- building --------------------------------------------------------------------------


def select_zones(site: Site, zones: Sequence[str] | None = None) -> list[str]:
    """The zones to report in tree order (each parent before its children, site file
    order among siblings); UnknownZoneError names a zone the site does not have."""
    known = [z.id for z in site.zones]
    if zones:
        unknown = [z for z in zones if z not in known]
        if unknown:
            raise UnknownZoneError(
                f"unknown zone {unknown[0]!r} in site {site.site!r}: its zones are "
                + ", ".join(known)
            )
    children: dict[str | None, list[str]] = defaultdict(list)
    for z in site.zones:
        children[z.parent].append(z.id)
    ordered: list[str] = []

    def walk(zone: str) -> None:
        ordered.append(zone)
        for child in children[zone]:
            walk(child)

    for root in children[None]:
        walk(root)
    wanted = set(zones) if zones else set(known)
    return [z for z in ordered if z in wanted]


def build_report(
    site: Site,
    period: Period,
    daily: Iterable[DailyRow],
    hourly: Iterable[HourlyRow],
    door_counts: Iterable[DoorCount] | None,
    now: dt.datetime,
    zones: Sequence[str] | None = None,
    doors_available_from: dt.date | None = None,
) -> Report:
    """The report of `period` from its rows (daily rows may also cover the comparison
    periods; rows of other days are ignored). `door_counts` None: the raw crossings of
    the period are not available."""
    selected = select_zones(site, zones)
    today = now.astimezone(site.tz).date()
    by_zone: dict[str, dict[dt.date, DailyRow]] = defaultdict(dict)
    for row in daily:
        by_zone[row.zone][row.day] = row
    hourly_by_zone: dict[str, list[HourlyRow]] = defaultdict(list)
    for h in hourly:
        hourly_by_zone[h.zone].append(h)

    month_before = period.month_before()
    year_before = period.year_before()
    elapsed = (today - period.first).days + 1 if today <= period.last else None

    reports = []
    for zone_id in selected:
        zone = site.zone(zone_id)
        rows = by_zone[zone_id]
        days = _day_figures(site, zone_id, period.days(), rows, today)
        entries, exits, est = _counted(days)
        peak_day = _peak_day(days)
        parent = site.zone(zone.parent) if zone.parent else None
        reports.append(
            ZoneReport(
                zone=zone_id,
                name=zone.name,
                parent=zone.parent,
                parent_name=parent.name if parent else None,
                depth=len(site.lineage(zone_id)) - 1,
                entries=entries,
                exits=exits,
                estimated_hours=est,
                peak=peak_day.peak if peak_day else None,
                peak_at=peak_day.peak_at if peak_day else None,
                peak_estimated=bool(peak_day and peak_day.estimated),
                days_open=sum(d.status in ("open", "no_data") for d in days),
                days_closed=sum(d.status in ("closed", "closed_with_visits") for d in days),
                days_no_data=sum(d.status == "no_data" for d in days),
                days_not_yet=sum(d.status == "not_yet" for d in days),
                closed_with_visits=[d.day for d in days if d.status == "closed_with_visits"],
                days=days,
                months=_month_figures(days),
                month_before=(
                    _comparison(site, zone_id, month_before, rows, entries, elapsed, today)
                    if month_before
                    else None
                ),
                year_before=_comparison(site, zone_id, year_before, rows, entries, elapsed, today),
                profile=_profile(hourly_by_zone[zone_id], rows, period, today),
            )
        )
    return Report(
        site=site.site,
        site_name=site.name,
        timezone=site.timezone,
        period=period,
        generated_at=now.astimezone(site.tz),
        zones=reports,
        doors=_doors(site, period, selected, zones, door_counts, doors_available_from),
    )


def build_statistics(
    site: Site,
    year: int,
    daily: Iterable[DailyRow],
    now: dt.datetime,
    zones: Sequence[str] | None = None,
) -> Statistics:
    selected = select_zones(site, zones)
    today = now.astimezone(site.tz).date()
    by_zone: dict[str, dict[dt.date, DailyRow]] = defaultdict(dict)
    for row in daily:
        by_zone[row.zone][row.day] = row
    days_of_year = [d for m in range(1, 13) for d in month_period(year, m, site.tz).days()]
    units = []
    for zone_id in selected:
        zone = site.zone(zone_id)
        rows = by_zone[zone_id]
        days = _day_figures(site, zone_id, days_of_year, rows, today)
        visits, _, est = _counted(days)
        units.append(
            StatisticsUnit(
                zone=zone_id,
                name=zone.name,
                parent=zone.parent,
                depth=len(site.lineage(zone_id)) - 1,
                visits=visits,
                estimated_hours=est,
                months=_month_figures(days),
            )
        )
    return Statistics(
        site=site.site,
        site_name=site.name,
        year=year,
        generated_at=now.astimezone(site.tz),
        units=units,
    )


# --- rules -----------------------------------------------------------------------------


def _day_figures(
    site: Site,
    zone: str,
    days: Sequence[dt.date],
    rows: dict[dt.date, DailyRow],
    today: dt.date,
) -> list[DayFigure]:
    figures = []
    for day in days:
        hours = site.hours_on(day, zone)
        row = rows.get(day)
        text = _hours_text(hours)
        status: DayStatus
        if row is None:
            # A closed day is closed, data or not; an open one yet to end is "not yet".
            status = "closed" if hours is None else "not_yet" if day >= today else "no_data"
            figures.append(DayFigure(day, status, text, None, None, None, None, 0))
            continue
        if hours is None and row.entries == 0:
            # Closed as planned: shown as closed, not as 0 (the row's estimate too).
            figures.append(DayFigure(day, "closed", text, None, None, None, None, 0))
            continue
        status = "open" if hours is not None else "closed_with_visits"
        figures.append(
            DayFigure(
                day,
                status,
                text,
                row.entries,
                row.exits,
                row.peak,
                _local(row.peak_at_ms, site),
                row.estimated_hours,
            )
        )
    return figures


def _totals(
    rows: dict[dt.date, DailyRow], days: Iterable[dt.date]
) -> tuple[int | None, int | None, int]:
    """(entries, exits, estimated hours) over the rows of `days`; None without any row."""
    found = [rows[d] for d in days if d in rows]
    if not found:
        return None, None, 0
    return (
        sum(r.entries for r in found),
        sum(r.exits for r in found),
        sum(r.estimated_hours for r in found),
    )


def _counted(days: Sequence[DayFigure]) -> tuple[int | None, int | None, int]:
    """(entries, exits, estimated hours) of the days with counted visits (open days with
    data, closed days with visits); None when there is none."""
    counted = [d for d in days if d.entries is not None]
    if not counted:
        return None, None, 0
    return (
        sum(d.entries or 0 for d in counted),
        sum(d.exits or 0 for d in counted),
        sum(d.estimated_hours for d in counted),
    )


def _peak_day(days: Sequence[DayFigure]) -> DayFigure | None:
    """The counted day of the highest peak; the earliest of equal peaks."""
    best: DayFigure | None = None
    for d in days:
        if d.peak is not None and (best is None or best.peak is None or d.peak > best.peak):
            best = d
    return best


def _comparison(
    site: Site,
    zone: str,
    then: Period,
    rows: dict[dt.date, DailyRow],
    now_entries: int | None,
    elapsed: int | None,
    today: dt.date,
) -> Comparison:
    days = then.days()
    if elapsed is not None:
        days = days[: max(elapsed, 0)]
    entries, _, est = _totals(rows, days)
    no_data = sum(d not in rows and site.hours_on(d, zone) is not None and d < today for d in days)
    change = None
    if entries and now_entries is not None:
        change = round((now_entries - entries) / entries * 100, 1)
    return Comparison(then, entries, change, est, no_data, elapsed)


def _month_figures(days: Sequence[DayFigure]) -> list[MonthFigure]:
    grouped: dict[tuple[int, int], list[DayFigure]] = {}
    for d in days:
        grouped.setdefault((d.day.year, d.day.month), []).append(d)
    months = []
    for (year, month), figures in grouped.items():
        counted = [f.entries for f in figures if f.entries is not None]
        months.append(
            MonthFigure(
                year=year,
                month=month,
                entries=sum(counted) if counted else None,
                estimated_hours=sum(f.estimated_hours for f in figures),
                days_open=sum(f.status in ("open", "no_data") for f in figures),
                days_closed=sum(f.status in ("closed", "closed_with_visits") for f in figures),
                days_no_data=sum(f.status == "no_data" for f in figures),
                days_not_yet=sum(f.status == "not_yet" for f in figures),
            )
        )
    return months


def _profile(
    rows: Iterable[HourlyRow], daily: Iterable[dt.date], period: Period, today: dt.date
) -> list[list[ProfileCell]]:
    """Mean entries per (weekday, local hour) over the period's finished days with data.

    `rows` may leave out hours without entries (the source reads only hours with entries
    or an estimate): a day counts as having data when it has a daily row or an hourly
    one, and each of its hours then counts, 0 when it has no row. The autumn DST day's
    repeated hour adds both hours into that day's figure; the spring day's missing hour
    is not counted for that day (no such hour, not 0 visits).
    """
    per_day_hour: dict[tuple[dt.date, int], int] = defaultdict(int)
    estimated: set[tuple[int, int]] = set()
    first, last = period.first, min(period.last, today - dt.timedelta(days=1))
    days = {d for d in daily if first <= d <= last}
    for row in rows:
        if first <= row.day <= last:
            days.add(row.day)
            per_day_hour[(row.day, row.hour)] += row.entries
            if row.estimated:
                estimated.add((row.day.weekday(), row.hour))
    sums = [[0] * 24 for _ in range(7)]
    counts = [[0] * 24 for _ in range(7)]
    for day in days:
        w = day.weekday()
        for hour in _hours_of(day, period.tz):
            counts[w][hour] += 1
    for (day, hour), entries in per_day_hour.items():
        sums[day.weekday()][hour] += entries
    return [
        [
            ProfileCell(
                round(sums[w][h] / counts[w][h], 2) if counts[w][h] else None,
                counts[w][h],
                (w, h) in estimated,
            )
            for h in range(24)
        ]
        for w in range(7)
    ]


_ALL_HOURS: Final = tuple(range(24))


@functools.lru_cache(maxsize=1024)
def _hours_of(day: dt.date, tz: ZoneInfo) -> tuple[int, ...]:
    """The local hours a day has: 0..23, without the skipped one on a spring DST day
    (the autumn day's repeated hour is one hour of the profile)."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    if end.timestamp() - start.timestamp() == 86_400:
        return _ALL_HOURS
    hours = set()
    t = start.timestamp()
    while t < end.timestamp():
        hours.add(dt.datetime.fromtimestamp(t, tz).hour)
        t += 3600
    return tuple(sorted(hours))


def _doors(
    site: Site,
    period: Period,
    selected: list[str],
    zones: Sequence[str] | None,
    counts: Iterable[DoorCount] | None,
    available_from: dt.date | None,
) -> Doors:
    names = {z.id: z.name for z in site.zones}
    scope = set(selected)
    wanted = [d for d in site.doors if not zones or d.inside in scope or (d.outside or "") in scope]
    if counts is None:
        figures = [
            DoorFigure(
                d.id, d.outside, d.inside, _door_label(d.outside, d.inside, names), None, None
            )
            for d in wanted
        ]
        return Doors("not_available", available_from, figures)
    by_door: dict[str, dict[str, int]] = defaultdict(dict)
    for c in counts:
        by_door[c.door][c.direction] = by_door[c.door].get(c.direction, 0) + c.count
    figures = [
        DoorFigure(
            d.id,
            d.outside,
            d.inside,
            _door_label(d.outside, d.inside, names),
            by_door.get(d.id, {}).get("in", 0),
            by_door.get(d.id, {}).get("out", 0),
        )
        for d in wanted
    ]
    if not zones:
        known = {d.id for d in site.doors}
        for door in sorted(set(by_door) - known):
            figures.append(
                DoorFigure(
                    door,
                    None,
                    None,
                    "not in the site file",
                    by_door[door].get("in", 0),
                    by_door[door].get("out", 0),
                )
            )
    partial = available_from is not None and available_from > period.first
    status: DoorStatus = "partial" if partial else "available"
    return Doors(status, available_from, figures)


def _door_label(outside: str | None, inside: str, names: dict[str, str]) -> str:
    return f"{names.get(outside, outside) if outside else 'outside'} → {names.get(inside, inside)}"


@functools.lru_cache(maxsize=64)
def _hours_text(hours: tuple[dt.time, dt.time] | None) -> str | None:
    if hours is None:
        return None
    start, end = hours
    end_text = "24:00" if end == dt.time.max else f"{end:%H:%M}"
    return f"{start:%H:%M}-{end_text}"


def _local(epoch_ms: int | None, site: Site) -> dt.datetime | None:
    return local_datetime(epoch_ms, site.tz) if epoch_ms is not None else None


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when is not None else None


def _period_dict(period: Period) -> dict[str, Any]:
    return {
        "key": period.key,
        "kind": period.kind,
        "label": period.label,
        "first": period.first.isoformat(),
        "last": period.last.isoformat(),
        "start": _iso(period.start),
        "end": _iso(period.end),
        "hours": period.hours,
    }
