"""The hourly profile: mean entries per weekday and local hour over a period's finished
days with data, with the DST days' missing and repeated hours taken as they are."""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable
from typing import Final
from zoneinfo import ZoneInfo

from footfall_contract.hours import day_bounds_ms, local_datetime

from ..periods import Period
from .figures import ProfileCell
from .rows import HourlyRow

__all__ = ["profile"]


def profile(
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
    start_ms, end_ms = day_bounds_ms(day, tz)
    if end_ms - start_ms == 86_400_000:
        return _ALL_HOURS
    return tuple(sorted({local_datetime(t, tz).hour for t in range(start_ms, end_ms, 3_600_000)}))
