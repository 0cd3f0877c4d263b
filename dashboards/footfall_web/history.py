"""History from InfluxDB: parameter checks, the InfluxQL and the interval arithmetic
(pure), for `/api/v1/sites/{site}/zones/{zone}/history`.

Levels come from `occupancy_history` (event time, docs/history.md): one point per change
of the count plus a count-0 point at each reset window's start, so an interval without a
point is not "no data" but "no change". Per interval (fill(previous) semantics, done here
so that `max` is right too):

- `count`: the level at the interval's end: its last point, or the level carried in;
- `max`: the highest level in the interval: its highest point, or the level carried in if
  that level held for part of the interval (not when the interval starts at a window
  start, where the count restarts at 0);
- `visits`: entries of the zone (`zone_flow`, `dir = 'in'`, sum of `count`).

The level carried into the first interval is the last point since the reset before
`from`. Intervals before any known level and without visits are left out; intervals that
start after now are not made up.

Intervals of a day or more are calendar days of the site's time zone: InfluxDB buckets
days with `tz()` (local midnight, 23- and 25-hour days included), and weeks (multiples
of 7 days) are summed here from those days, Monday first, because InfluxDB 1.6 puts the
boundary of a week that contains a DST change an hour off.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from footfall_collector.influxql import all_of, influxql_string, tag_is, time_range
from footfall_collector.schema import OCCUPANCY_HISTORY, ZONE_FLOW
from footfall_contract.hours import (
    date_at,
    last_reset_before,
    local_midnight_ms,
    next_reset_after,
)
from footfall_contract.site import Site
from footfall_contract.timefmt import format_ts, parse_ts

_DURATION = re.compile(r"^(\d{1,7})(s|m|h|d|w)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NICE_S = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
DAY_S = 86400
WEEK_DAYS = 7
_MONDAY = dt.date(1970, 1, 5).toordinal()
MIN_MS = 0
"""1970-01-01T00:00:00Z: the earliest time a request may name."""
MAX_MS = int(dt.datetime(2262, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
"""2262-01-01T00:00:00Z: InfluxDB's nanosecond times end in April 2262."""
FORMATS = ("json", "csv")
CSV_COLUMNS = ("t", "local", "count", "max", "visits")


class BadParameter(ValueError):
    """A request parameter that cannot be used; the message says which and why."""


def parse_duration(text: str, what: str) -> int:
    """ "30s", "5m", "1h", "1d", "1w" -> seconds."""
    match = _DURATION.match(text.strip())
    if not match or int(match[1]) == 0:
        raise BadParameter(
            f"{what} must be a positive duration like 30s, 5m, 1h, 1d or 1w, not {text!r}"
        )
    return int(match[1]) * _UNIT_S[match[2]]


def parse_time(text: str, what: str, now_ms: int) -> int:
    """RFC 3339 with a zone ("2026-11-23T10:00:00Z") or relative to now ("-6h", "now"),
    within 1970 .. 2261 (what InfluxDB can store)."""
    raw = text
    text = text.strip()
    if text == "now":
        value = now_ms
    elif text.startswith("-"):
        value = now_ms - parse_duration(text[1:], what) * 1000
    else:
        try:
            value = parse_ts(text)
        except ValueError:
            raise BadParameter(
                f"{what} must be an RFC 3339 time with a zone (2026-11-23T10:00:00Z), "
                f"'now' or relative like -6h, not {raw!r}"
            ) from None
        except OverflowError:  # a valid date whose UTC time is outside year 1 .. 9999
            value = MIN_MS - 1
    if not MIN_MS <= value < MAX_MS:
        raise BadParameter(
            f"{what} is out of range: {raw!r} (times from 1970-01-01 to 2261-12-31 UTC)"
        )
    return value


def auto_every(span_s: int, target_points: int = 300) -> int:
    for step in _NICE_S:
        if span_s / step <= target_points:
            return step
    return math.ceil(span_s / target_points / 86400) * 86400


def parse_format(text: str | None, allowed: Sequence[str] = FORMATS) -> str:
    """`?format=` (any case, json when absent), one of `allowed`."""
    fmt = (text or "json").strip().lower()
    if fmt not in allowed:
        raise BadParameter(f"format must be one of {', '.join(allowed)}, not {text!r}")
    return fmt


@dataclass(frozen=True)
class HistoryRequest:
    site: str
    zone: str
    start_ms: int
    end_ms: int
    every_s: int
    timezone: str = "UTC"

    @property
    def points(self) -> int:
        return math.ceil((self.end_ms - self.start_ms) / 1000 / self.every_s)

    @property
    def days(self) -> int:
        """Calendar days an interval spans (0: shorter than a day)."""
        return self.every_s // DAY_S

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def history_request(
    site: str,
    zone: str,
    start: str | None,
    end: str | None,
    every: str | None,
    now_ms: int,
    max_points: int,
    default_span_s: int = 6 * 3600,
    *,
    timezone: str = "UTC",
) -> HistoryRequest:
    end_ms = parse_time(end, "to", now_ms) if end else now_ms
    start_ms = parse_time(start, "from", now_ms) if start else end_ms - default_span_s * 1000
    if start_ms < MIN_MS:
        raise BadParameter(
            f"from ({format_ts(start_ms)}, {default_span_s} s before to) is before 1970"
        )
    if start_ms >= end_ms:
        raise BadParameter(f"from ({format_ts(start_ms)}) must be before to ({format_ts(end_ms)})")
    span_s = max(1, (end_ms - start_ms) // 1000)
    every_s = parse_duration(every, "every") if every else auto_every(span_s)
    if every_s >= DAY_S and every_s % DAY_S:
        raise BadParameter(
            f"every of a day or more must be whole days (1d, 7d, 1w), not {every!r}: "
            "such intervals are calendar days of the site"
        )
    req = HistoryRequest(site, zone, start_ms, end_ms, every_s, timezone)
    if req.points > max_points:
        raise BadParameter(
            f"{req.points} points asked (from {format_ts(start_ms)} to {format_ts(end_ms)} "
            f"every {every_s} s), at most {max_points}: use a larger every or a shorter range"
        )
    return req


# -- InfluxQL (ids are checked against the site file before they get here) -------------


def _where(req: HistoryRequest, start_ms: int, end_ms: int, *tags: str) -> str:
    """The zone's points in [start_ms, end_ms) (and `tags`' conditions)."""
    conditions = (tag_is("site", req.site), tag_is("zone", req.zone), *tags)
    return f"WHERE {all_of(*conditions, time_range(start_ms, end_ms))} "


def group_by(req: HistoryRequest) -> str:
    """InfluxDB's buckets: the interval itself below a day, else local calendar days."""
    if req.days:
        return f"GROUP BY time(1d) fill(null) tz({influxql_string(req.timezone)})"
    return f"GROUP BY time({req.every_s}s) fill(null)"


def history_query(req: HistoryRequest) -> str:
    """Per bucket the last level and the highest (each minute's `peak`: the history
    keeps a point a minute); empty buckets as nulls."""
    return (
        f'SELECT last("count") AS "count", max("peak") AS "max" FROM "{OCCUPANCY_HISTORY}" '
        + _where(req, req.start_ms, req.end_ms)
        + group_by(req)
    )


def seed_query(req: HistoryRequest, window_start_ms: int) -> str | None:
    """The level carried into `from`: the last point since the reset before it (None when
    `from` is that reset itself)."""
    if window_start_ms >= req.start_ms:
        return None
    return (
        f'SELECT last("count") AS "count" FROM "{OCCUPANCY_HISTORY}" '
        + _where(req, window_start_ms, req.start_ms)
    ).rstrip()


def visits_query(req: HistoryRequest) -> str:
    """Per bucket the zone's entries."""
    return (
        f'SELECT sum("count") AS "visits" FROM "{ZONE_FLOW}" '
        + _where(req, req.start_ms, req.end_ms, tag_is("dir", "in"))
        + group_by(req)
    )


# -- intervals ---------------------------------------------------------------------------


def buckets(req: HistoryRequest, now_ms: int) -> list[tuple[int, int]]:
    """InfluxDB's buckets [start, end) of the request as epoch ms, up to now: the
    interval's own below a day (aligned to the epoch, as InfluxDB does), else the local
    calendar days."""
    stop = min(req.end_ms, now_ms + 1)
    out: list[tuple[int, int]] = []
    if not req.days:
        step = req.every_s * 1000
        t = req.start_ms - req.start_ms % step
        while t < stop:
            out.append((t, t + step))
            t += step
        return out
    tz = req.tz
    day = date_at(req.start_ms, tz)
    t = local_midnight_ms(day, tz)
    while t < stop:
        day += dt.timedelta(days=1)
        nxt = local_midnight_ms(day, tz)
        out.append((t, nxt))
        t = nxt
    return out


def interval_start(req: HistoryRequest, bucket_ms: int) -> int:
    """The interval a bucket belongs to: itself, or its group of days (weeks from
    Monday; other counts of days from the local date of `from`)."""
    if req.days <= 1:
        return bucket_ms
    tz = req.tz
    ordinal = date_at(bucket_ms, tz).toordinal()
    weeks = req.days % WEEK_DAYS == 0
    anchor = _MONDAY if weeks else date_at(req.start_ms, tz).toordinal()
    first = anchor + (ordinal - anchor) // req.days * req.days
    return local_midnight_ms(dt.date.fromordinal(first), tz)


def window_starts(site: Site, start_ms: int, end_ms: int) -> list[int]:
    """The site's reset instants in [start_ms, end_ms), ascending."""
    out: list[int] = []
    t = last_reset_before(site, start_ms)
    while t < end_ms:
        if t >= start_ms:
            out.append(t)
        t = next_reset_after(site, t)
    return out


def _values(series: list[dict[str, Any]], *names: str) -> dict[int, tuple[Any, ...]]:
    """An epoch=ms answer as {time: (value of each name, ...)}."""
    out: dict[int, tuple[Any, ...]] = {}
    for s in series:
        cols = s["columns"]
        idx = [cols.index(n) for n in names]
        ti = cols.index("time")
        for row in s["values"]:
            out[int(row[ti])] = tuple(row[i] for i in idx)
    return out


def seed_level(series: list[dict[str, Any]]) -> int | None:
    for values in _values(series, "count").values():
        if values[0] is not None:
            return int(values[0])
    return None


def merge_history(
    req: HistoryRequest,
    spans: Sequence[tuple[int, int]],
    levels: list[dict[str, Any]],
    visits: list[dict[str, Any]],
    seed: int | None,
    resets: Sequence[int],
) -> list[dict[str, Any]]:
    """The intervals as [{"t": RFC 3339, "count", "max", "visits"}], from InfluxDB's
    bucket answers (epoch=ms), the level carried into `from` and the window starts."""
    level_at = _values(levels, "count", "max")
    visits_at = _values(visits, "visits")
    out: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    level = seed
    for start, end in spans:
        last, high = level_at.get(start, (None, None))
        i = bisect_left(resets, start)
        reset = resets[i] if i < len(resets) and resets[i] < end else None
        carried = level
        if reset is not None and level is not None:
            if reset == start:
                carried = None  # the count restarts at 0 at the window start
            level = 0
        if last is not None:
            level = int(last)
        candidates = [v for v in (carried, high, level) if v is not None]
        top = max(int(v) for v in candidates) if candidates else None
        entries = int(visits_at.get(start, (None,))[0] or 0)
        t = interval_start(req, start)
        if current is None or current["_t"] != t:
            current = {"_t": t, "count": None, "max": None, "visits": 0}
            out.append(current)
        current["count"] = level
        if top is not None:
            current["max"] = top if current["max"] is None else max(current["max"], top)
        current["visits"] += entries
    return [
        {"t": format_ts(p["_t"]), "count": p["count"], "max": p["max"], "visits": p["visits"]}
        for p in out
        if p["count"] is not None or p["visits"]
    ]


def history_csv(points: Iterable[dict[str, Any]], tz: ZoneInfo) -> str:
    """One row per interval under a header row: t (start, UTC), local (start in the
    site's time zone, with its offset), count, max, visits; empty cells for unknown."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for p in points:
        local = dt.datetime.fromtimestamp(parse_ts(p["t"]) / 1000, tz).isoformat()
        w.writerow(
            [
                p["t"],
                local,
                "" if p["count"] is None else p["count"],
                "" if p["max"] is None else p["max"],
                p["visits"],
            ]
        )
    return buf.getvalue()
