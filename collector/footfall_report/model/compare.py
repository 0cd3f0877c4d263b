"""A zone's visits against the same period a month or a year before; while the period is
in progress, against the same number of its first days."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from footfall_contract.site import Site

from ..periods import Period
from .figures import Comparison
from .rows import DailyRow

__all__ = ["comparison"]


def comparison(
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
