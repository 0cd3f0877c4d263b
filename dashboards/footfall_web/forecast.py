"""Typical occupancy per zone by weekday and time of day, from history.

The typical value of a slot (default 15 minutes) of a site-local day is the median, over
the last N (default 4) same weekdays before today that have data, of the zone's level in
that slot. Medians shrug off the odd unusual day (an event, an outage) that a mean would
carry into every forecast.

The level comes from `occupancy_history` (docs/history.md): the count recomputed at
event time, one point per change plus a count-0 point at each reset. (The live
`occupancy` series is at the collector's processing time, so a late backlog would land
in the wrong slots.) A slot's level is the last point in it, or, when nothing changed in
it, the level carried in from before (fill(previous)), so a quiet hour counts for as
long as it lasted: a time-weighted level, not a mean over events. A day "has data" when
it has at least one point of its own.

Two layers, so the arithmetic is testable without a database:

- pure: `same_weekdays` (which past days), `slot_means` (samples -> per-day, per-slot
  means on the site's wall clock, DST days included), `carried_levels` (bucket answers
  -> the level of every bucket of the days with data), `median_by_slot` and
  `typical_of`;
- `Forecaster`: one InfluxQL query per (zone, weekday), `GROUP BY time(step)` in the
  site's time zone from the day before the oldest wanted day (to carry the level into
  its first slots), cached for `cache_s` seconds.

Days of a DST change: a 23-hour day has no buckets in the skipped hour (those slots are
left out of that day, the other weeks fill them); a 25-hour day has two buckets for the
repeated hour, which fall into the same slot and are averaged.
"""

from __future__ import annotations

import datetime as dt
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from footfall_collector.influx import Influx
from footfall_collector.influxql import all_of, influxql_string, tag_is, time_range
from footfall_collector.schema import OCCUPANCY_HISTORY
from footfall_contract.hours import local_day_bounds
from footfall_contract.site import Site

__all__ = [
    "Forecaster",
    "Typical",
    "carried_levels",
    "median_by_slot",
    "same_weekdays",
    "slot_means",
    "typical_of",
]

Sample = tuple[float, float]
"""(epoch seconds, value): a point or a time bucket's start and its mean."""


@dataclass(frozen=True)
class Typical:
    site: str
    zone: str
    weekday: int  # 0 = Monday, site-local
    step_min: int
    values: list[float | None]  # typical occupancy for each slot of the local day
    weeks: int  # how many past same weekdays had data

    @property
    def peak_slot(self) -> int | None:
        """The slot with the highest typical value (the first of equals); None when no
        slot has a value above 0 (no data, or a closed day)."""
        best: int | None = None
        for i, v in enumerate(self.values):
            if v is not None and v > 0 and (best is None or v > (self.values[best] or 0)):
                best = i
        return best

    def slot_time(self, slot: int) -> dt.time:
        """Local wall-clock start of a slot."""
        minutes = slot * self.step_min
        return dt.time(minutes // 60, minutes % 60)


# --- pure arithmetic ---------------------------------------------------------------


def check_step(step_min: int) -> None:
    aligned = step_min > 0 and (60 % step_min == 0 or step_min % 60 == 0)
    if not aligned or 1440 % step_min:
        raise ValueError(
            f"step_min must divide the day into whole slots aligned to hours, not {step_min}"
        )


def same_weekdays(today: dt.date, weekday: int, weeks: int) -> list[dt.date]:
    """The last `weeks` dates with `weekday` strictly before `today`, newest first."""
    if not 0 <= weekday <= 6:
        raise ValueError(f"weekday is 0 (Monday) .. 6 (Sunday), not {weekday}")
    back = (today.weekday() - weekday) % 7 or 7
    latest = today - dt.timedelta(days=back)
    return [latest - dt.timedelta(weeks=k) for k in range(weeks)]


def slot_means(
    samples: Iterable[Sample], tz: ZoneInfo, step_min: int
) -> dict[dt.date, list[float | None]]:
    """Per local date, the mean of the samples in each slot of the local day (None where
    there is none). Samples whose value is None are skipped."""
    check_step(step_min)
    n = 1440 // step_min
    sums: dict[dt.date, list[float]] = {}
    counts: dict[dt.date, list[int]] = {}
    for t, value in samples:
        if value is None:
            continue
        local = dt.datetime.fromtimestamp(t, tz)
        slot = (local.hour * 60 + local.minute) // step_min
        day = local.date()
        if day not in sums:
            sums[day], counts[day] = [0.0] * n, [0] * n
        sums[day][slot] += value
        counts[day][slot] += 1
    return {
        day: [s / c if c else None for s, c in zip(sums[day], counts[day], strict=True)]
        for day in sums
    }


def carried_levels(
    rows: Iterable[tuple[float, float | None]], tz: ZoneInfo, days: Iterable[dt.date]
) -> list[Sample]:
    """Buckets (start in epoch seconds, last value or None when nothing changed in it),
    in time order, as (start, level) with the level carried through empty buckets; only
    the buckets of the wanted local days that have a value of their own."""
    wanted = set(days)
    level: float | None = None
    carried: list[tuple[float, float, dt.date]] = []
    with_data: set[dt.date] = set()
    for t, value in rows:
        day = dt.datetime.fromtimestamp(t, tz).date()
        if value is not None:
            level = float(value)
            with_data.add(day)
        if level is not None and day in wanted:
            carried.append((t, level, day))
    return [(t, v) for t, v, day in carried if day in with_data]


def median_by_slot(days: Sequence[Sequence[float | None]]) -> list[float | None]:
    """Slot by slot, the median of the days that have a value there (None if none)."""
    if not days:
        return []
    n = len(days[0])
    out: list[float | None] = []
    for i in range(n):
        present = [v for d in days if (v := d[i]) is not None]
        out.append(float(statistics.median(present)) if present else None)
    return out


def typical_of(
    samples: Iterable[Sample],
    tz: ZoneInfo,
    today: dt.date,
    weekday: int,
    weeks: int,
    step_min: int,
) -> tuple[list[float | None], int]:
    """(typical values per slot, weeks with data) from samples covering the past days."""
    wanted = same_weekdays(today, weekday, weeks)
    per_day = slot_means(samples, tz, step_min)
    days = [per_day[d] for d in wanted if d in per_day]
    if not days:
        return [None] * (1440 // step_min), 0
    return median_by_slot(days), len(days)


# --- InfluxDB ----------------------------------------------------------------------


class Forecaster:
    """Typical occupancy of a site's zones, from the `occupancy_history` measurement."""

    def __init__(
        self,
        influx: Influx,
        site: Site,
        *,
        weeks: int = 4,
        step_min: int = 15,
        cache_s: float = 300.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        check_step(step_min)
        if weeks < 1:
            raise ValueError("weeks must be at least 1")
        self.influx = influx
        self.site = site
        self.weeks = weeks
        self.step_min = step_min
        self.cache_s = cache_s
        self.now = now
        self._cache: dict[tuple[str, int, dt.date], tuple[float, Typical]] = {}
        self._lock = threading.Lock()

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.now(), self.site.tz).date()

    def typical(self, zone: str, weekday: int | None = None) -> Typical:
        """Typical occupancy of `zone` on `weekday` (None: today's, site-local)."""
        self.site.zone(zone)  # KeyError for a zone the site does not have
        now = self.now()
        today = dt.datetime.fromtimestamp(now, self.site.tz).date()
        if weekday is None:
            weekday = today.weekday()
        key = (zone, weekday, today)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        samples = self.samples(zone, same_weekdays(today, weekday, self.weeks))
        values, weeks = typical_of(samples, self.site.tz, today, weekday, self.weeks, self.step_min)
        result = Typical(self.site.site, zone, weekday, self.step_min, values, weeks)
        with self._lock:
            # drop what has expired, so the cache stays as small as the zones x weekdays
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            self._cache[key] = (now + self.cache_s, result)
        return result

    def query(self, zone: str, start_ms: int, end_ms: int) -> str:
        where = all_of(
            tag_is("site", self.site.site), tag_is("zone", zone), time_range(start_ms, end_ms)
        )
        return (
            f'SELECT last("count") AS "count" FROM "{OCCUPANCY_HISTORY}" '
            f"WHERE {where} GROUP BY time({self.step_min}m) fill(null) "
            f"tz({influxql_string(self.site.timezone)})"
        )

    def samples(self, zone: str, days: Sequence[dt.date]) -> list[Sample]:
        """The zone's level per bucket on the given local days that have data (one
        query, from the day before the oldest, so its first slots get the level
        carried in)."""
        if not days:
            return []
        start_ms = local_day_bounds(self.site, min(days) - dt.timedelta(days=1))[0]
        end_ms = local_day_bounds(self.site, max(days))[1]
        rows: list[tuple[float, float | None]] = []
        for series in self.influx.query(self.query(zone, start_ms, end_ms), epoch="s"):
            cols = series["columns"]
            ti, vi = cols.index("time"), cols.index("count")
            rows += [(float(row[ti]), row[vi]) for row in series["values"]]
        rows.sort(key=lambda r: r[0])
        return carried_levels(rows, self.site.tz, days)
