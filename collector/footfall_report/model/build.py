"""A report from its rows: which zones, in tree order, and each zone's figures put
together from the day rules, the comparisons, the profile and the doors. Pure (no I/O,
`now` given); `source.py` does the reading."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence

from footfall_contract.site import Site

from ..periods import Period
from .compare import comparison
from .days import best_peak_day, counted, day_figures, month_figures
from .doors import door_figures
from .figures import Report, UnknownZoneError, ZoneReport
from .profile import profile
from .rows import DailyRow, DoorCount, HourlyRow

__all__ = ["build_report", "select_zones"]


def select_zones(site: Site, zones: Sequence[str] | None = None) -> list[str]:
    """The zones to report in tree order (each parent before its children, site file
    order among siblings); UnknownZoneError names a zone the site does not have."""
    known = [z.id for z in site.zones]
    if zones:
        unknown = [z for z in zones if z not in known]
        if unknown:
            raise UnknownZoneError(
                f"unknown zone {unknown[0]!r} in site {site.site!r}: its zones are "
                + ", ".join(known),
                unknown,
                known,
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
        days = day_figures(site, zone_id, period.days(), rows, today)
        entries, exits, est = counted(days)
        peak_day = best_peak_day(days)
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
                months=month_figures(days),
                month_before=(
                    comparison(site, zone_id, month_before, rows, entries, elapsed, today)
                    if month_before
                    else None
                ),
                year_before=comparison(site, zone_id, year_before, rows, entries, elapsed, today),
                profile=profile(hourly_by_zone[zone_id], rows, period, today),
            )
        )
    return Report(
        site=site.site,
        site_name=site.name,
        timezone=site.timezone,
        period=period,
        generated_at=now.astimezone(site.tz),
        zones=reports,
        doors=door_figures(site, period, selected, zones, door_counts, doors_available_from),
    )
