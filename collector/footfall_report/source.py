"""The InfluxQL reads behind a report: one query for the daily rollups of the period and
its comparison periods, one for the period's hourly rollups, one for the raw crossings
per door (and the retention policy, to know whether those are still kept).

Rollup points are stored at their local bucket starts (local midnight, local hour
start), so the queries need no `tz()`: the period's bounds are local midnights turned
into epoch milliseconds, and each row's date is its time read on the site's clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from footfall_collector import schema
from footfall_collector.influx import Influx, PermanentWriteError, RetryableWriteError
from footfall_collector.influxql import all_of, tag_in, tag_is, time_range
from footfall_contract.hours import local_date, local_datetime, local_day_bounds
from footfall_contract.site import Site

from .model import (
    DailyRow,
    DoorCount,
    HourlyRow,
    Report,
    Statistics,
    build_report,
    build_statistics,
    select_zones,
)
from .periods import Period, year_period

__all__ = ["SourceError", "load_report", "load_statistics", "raw_kept_from"]


class SourceError(Exception):
    """InfluxDB could not answer (unreachable, or the query was refused)."""


def load_report(
    influx: Influx,
    site: Site,
    period: Period,
    zones: list[str] | None = None,
    *,
    now: dt.datetime | None = None,
) -> Report:
    """Read and build the report of `period` (all zones, or `zones`)."""
    now = now or dt.datetime.now(dt.UTC)
    selected = select_zones(site, zones)  # unknown zones fail before any query
    compared = [p for p in (period, period.month_before(), period.year_before()) if p]
    daily = read_daily(
        influx,
        site,
        selected,
        min(p.start_ms for p in compared),
        max(p.end_ms for p in compared),
    )
    hourly = read_hourly(influx, site, selected, period.start_ms, period.end_ms)
    kept_from = raw_kept_from(influx, site, now)
    counts: list[DoorCount] | None = None
    if kept_from is None or kept_from <= period.last:
        start_ms = period.start_ms
        if kept_from is not None and kept_from > period.first:
            start_ms = max(start_ms, local_day_bounds(site, kept_from)[0])
        counts = read_doors(influx, site, start_ms, period.end_ms)
    return build_report(
        site,
        period,
        daily,
        hourly,
        counts,
        now,
        zones=zones,
        doors_available_from=kept_from,
    )


def load_statistics(
    influx: Influx,
    site: Site,
    year: int,
    zones: list[str] | None = None,
    *,
    now: dt.datetime | None = None,
) -> Statistics:
    """Annual visits per unit for `year` from the daily rollups."""
    now = now or dt.datetime.now(dt.UTC)
    selected = select_zones(site, zones)
    period = year_period(year, site.tz)
    daily = read_daily(influx, site, selected, period.start_ms, period.end_ms)
    return build_statistics(site, year, daily, now, zones=zones)


# --- queries ---------------------------------------------------------------------------


def read_daily(
    influx: Influx, site: Site, zones: Sequence[str], start_ms: int, end_ms: int
) -> list[DailyRow]:
    q = (
        'SELECT "entries", "exits", "peak", "peak_at", "estimated_hours" '
        f"FROM {schema.rollup_from(schema.VISITS_DAILY)} "
        f'WHERE {_where(site, zones, start_ms, end_ms)} GROUP BY "zone"'
    )
    rows = []
    for zone, row in _rows(_query(influx, q)):
        rows.append(
            DailyRow(
                zone=zone,
                day=local_date(site, int(row["time"])),
                entries=_int(row.get("entries")),
                exits=_int(row.get("exits")),
                peak=_int(row.get("peak")),
                peak_at_ms=_opt_int(row.get("peak_at")),
                estimated_hours=_int(row.get("estimated_hours")),
            )
        )
    return rows


def read_hourly(
    influx: Influx, site: Site, zones: Sequence[str], start_ms: int, end_ms: int
) -> list[HourlyRow]:
    """The hourly rows with entries or an estimate (the others are 0 and not needed)."""
    # Only hours with entries or an estimate: a year is 8,760 hours per zone, most of
    # them closed; the model counts the others as 0 on the days that have data.
    q = (
        'SELECT "entries", "estimated" '
        f"FROM {schema.rollup_from(schema.VISITS_HOURLY)} "
        f"WHERE {_where(site, zones, start_ms, end_ms)} "
        'AND ("entries" > 0 OR "estimated" = true) GROUP BY "zone"'
    )
    series_list = _query(influx, q)
    # A year has 8,760 hours per zone: their local (date, hour) computed once, not per row.
    local_hours = {
        t: (when.date(), when.hour)
        for t in range(start_ms, end_ms, 3_600_000)
        for when in (local_datetime(t, site.tz),)
    }
    rows = []
    for series in series_list:
        zone = str((series.get("tags") or {}).get("zone", ""))
        columns = series.get("columns") or []
        i_time, i_entries = columns.index("time"), columns.index("entries")
        i_estimated = columns.index("estimated")
        for values in series.get("values") or []:
            t = int(values[i_time])
            local = local_hours.get(t)
            if local is None:  # not on a whole hour from the start (odd offsets)
                when = local_datetime(t, site.tz)
                local = (when.date(), when.hour)
            entries = values[i_entries]
            rows.append(
                HourlyRow(
                    zone,
                    local[0],
                    local[1],
                    int(entries) if entries is not None else 0,
                    bool(values[i_estimated]),
                )
            )
    return rows


def read_doors(influx: Influx, site: Site, start_ms: int, end_ms: int) -> list[DoorCount]:
    q = (
        f'SELECT count("count") FROM "{schema.CROSSING}" '
        f'WHERE {_where(site, (), start_ms, end_ms)} GROUP BY "door", "dir"'
    )
    counts = []
    for series in _query(influx, q):
        tags = series.get("tags") or {}
        for values in series.get("values") or []:
            counts.append(
                DoorCount(str(tags.get("door", "")), str(tags.get("dir", "")), _int(values[1]))
            )
    return counts


def raw_kept_from(influx: Influx, site: Site, now: dt.datetime) -> dt.date | None:
    """The first whole local day whose raw points (crossings) the default retention
    policy still keeps; None when it keeps them for ever."""
    duration = None
    for series in _query(influx, "SHOW RETENTION POLICIES"):
        columns = series.get("columns") or []
        for values in series.get("values") or []:
            policy = dict(zip(columns, values, strict=False))
            if policy.get("default"):
                duration = _duration_s(str(policy.get("duration", "0s")))
    if not duration:
        return None
    cutoff = now - dt.timedelta(seconds=duration)
    day = cutoff.astimezone(site.tz).date()
    if local_day_bounds(site, day)[0] < int(cutoff.timestamp() * 1000):
        day += dt.timedelta(days=1)
    return day


# --- helpers ---------------------------------------------------------------------------


def _query(influx: Influx, q: str) -> list[dict[str, Any]]:
    try:
        return influx.query(q, epoch="ms")
    except RetryableWriteError as exc:
        raise SourceError(f"cannot read from InfluxDB: {exc}") from None
    except PermanentWriteError as exc:
        raise SourceError(f"InfluxDB refused the report's query: {exc}") from None


def _rows(series_list: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(zone tag, {column: value}) of every row of GROUP BY "zone" series."""
    out = []
    for series in series_list:
        zone = str((series.get("tags") or {}).get("zone", ""))
        columns = series.get("columns") or []
        for values in series.get("values") or []:
            out.append((zone, dict(zip(columns, values, strict=False))))
    return out


def _where(site: Site, zones: Sequence[str], start_ms: int, end_ms: int) -> str:
    """The site's points in [start_ms, end_ms), of `zones` when given."""
    conditions = [tag_is("site", site.site), time_range(start_ms, end_ms)]
    if zones:
        conditions.append(tag_in("zone", zones))
    return all_of(*conditions)


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None


_DURATION = re.compile(r"(\d+)(w|d|h|m|s)")
_UNIT_S = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def _duration_s(text: str) -> int:
    """InfluxDB's "9600h0m0s" in seconds (0: infinite)."""
    return sum(int(n) * _UNIT_S[unit] for n, unit in _DURATION.findall(text))
