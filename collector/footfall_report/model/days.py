"""The rules of a day: closed, open, no data, not yet, or visits counted on a closed day,
and the sums of those days over a period or a month. Pure; `today` is given."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

from footfall_contract.hours import hours_text, local_datetime
from footfall_contract.site import Site

from .figures import DayFigure, DayStatus, MonthFigure
from .rows import DailyRow

__all__ = ["best_peak_day", "counted", "day_figures", "month_figures"]


def day_figures(
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
        text = None if hours is None else _hours_text(hours)
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


def counted(days: Sequence[DayFigure]) -> tuple[int | None, int | None, int]:
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


def best_peak_day(days: Sequence[DayFigure]) -> DayFigure | None:
    """The counted day of the highest peak; the earliest of equal peaks."""
    best: DayFigure | None = None
    for d in days:
        if d.peak is not None and (best is None or best.peak is None or d.peak > best.peak):
            best = d
    return best


def month_figures(days: Sequence[DayFigure]) -> list[MonthFigure]:
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


_hours_text = functools.lru_cache(maxsize=64)(hours_text)


def _local(epoch_ms: int | None, site: Site) -> dt.datetime | None:
    return local_datetime(epoch_ms, site.tz) if epoch_ms is not None else None
