"""Times in alert texts: the site's wall clock, labelled with its time zone.

Facilities staff read an alert where the building is, so "since 2026-11-30T22:18:59Z"
is a sum to do; "since Tue 1 Dec 2026 00:18 (Europe/Helsinki)" is not. Only the texts
use this: the MQTT payload and InfluxDB keep RFC 3339 UTC (docs/spec.md §2). Texts name
the zone by its IANA name (an outbox entry outlives the site object), so this works from
the name; the site's hours and resets are footfall_contract.hours'."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from footfall_contract.hours import DAYS
from footfall_contract.timefmt import parse_ts

_DAYS = tuple(day.capitalize() for day in DAYS)  # the site file's day names, as words
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def zone_of(name: str | None) -> tuple[dt.tzinfo, str]:
    """The zone to show times in and its label; UTC for an unknown or missing name (an
    outbox entry written before the site's zone was part of it)."""
    if name:
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return dt.UTC, "UTC"


def _day(local: dt.datetime) -> str:
    return f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}"


def local_time(ms: int, tz_name: str | None) -> str:
    """`Tue 1 Dec 2026 00:18 (Europe/Helsinki)`: English, 24-hour, the site's zone."""
    tz, label = zone_of(tz_name)
    local = dt.datetime.fromtimestamp(ms / 1000, tz)
    return f"{_day(local)} {local:%H:%M} ({label})"


def local_span(start_ms: int, end_ms: int, tz_name: str | None) -> str:
    """`Tue 1 Dec 2026 00:18–00:30 (Europe/Helsinki)`; both dates when the days differ."""
    tz, label = zone_of(tz_name)
    a = dt.datetime.fromtimestamp(start_ms / 1000, tz)
    b = dt.datetime.fromtimestamp(end_ms / 1000, tz)
    if a.date() == b.date():
        return f"{_day(a)} {a:%H:%M}–{b:%H:%M} ({label})"
    return f"{_day(a)} {a:%H:%M} – {_day(b)} {b:%H:%M} ({label})"


def local_ts(ts: str, tz_name: str | None) -> str:
    """`local_time` of an RFC 3339 timestamp (the alert payload's `started`, `ts`)."""
    return local_time(parse_ts(ts), tz_name)
