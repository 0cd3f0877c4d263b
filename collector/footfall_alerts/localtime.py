"""Times in alert texts: the site's wall clock, labelled with its time zone.

Facilities staff read an alert where the building is, so "since 2026-11-30T22:18:59Z"
is a sum to do; "since Tue 1 Dec 2026 00:18 (Europe/Helsinki)" is not, and in the rules
file's language: "ti 1.12.2026 klo 0.18", "tis 1.12.2026 kl. 00.18" (the forms are
wording.py's). Only the texts
use this: the MQTT payload and InfluxDB keep RFC 3339 UTC (docs/spec.md §2). Texts name
the zone by its IANA name (an outbox entry outlives the site object), so this works from
the name; the site's hours and resets are footfall_contract.hours'."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from footfall_contract.timefmt import parse_ts

from .wording import DEFAULT, Lang, say, words


def zone_of(name: str | None) -> tuple[dt.tzinfo, str]:
    """The zone to show times in and its label; UTC for an unknown or missing name (an
    outbox entry written before the site's zone was part of it)."""
    if name:
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return dt.UTC, "UTC"


def _day(local: dt.datetime, lang: Lang) -> str:
    return say(
        lang,
        "time.date",
        weekday=words(lang, "weekdays")[local.weekday()],
        day=local.day,
        month=words(lang, "months")[local.month - 1],
        year=local.year,
    )


def _clock(local: dt.datetime, lang: Lang) -> str:
    return say(lang, "time.clock", hour=local.hour, minute=local.minute)


def _moment(local: dt.datetime, lang: Lang) -> str:
    return say(lang, "time.moment", date=_day(local, lang), clock=_clock(local, lang))


def local_time(ms: int, tz_name: str | None, lang: Lang = DEFAULT) -> str:
    """`Tue 1 Dec 2026 00:18 (Europe/Helsinki)`: 24-hour, the site's zone, in `lang`."""
    tz, label = zone_of(tz_name)
    local = dt.datetime.fromtimestamp(ms / 1000, tz)
    return f"{_moment(local, lang)} ({label})"


def local_span(start_ms: int, end_ms: int, tz_name: str | None, lang: Lang = DEFAULT) -> str:
    """`Tue 1 Dec 2026 00:18–00:30 (Europe/Helsinki)`; both dates when the days differ."""
    tz, label = zone_of(tz_name)
    a = dt.datetime.fromtimestamp(start_ms / 1000, tz)
    b = dt.datetime.fromtimestamp(end_ms / 1000, tz)
    if a.date() == b.date():
        span = say(
            lang, "time.span", date=_day(a, lang), start=_clock(a, lang), end=_clock(b, lang)
        )
        return f"{span} ({label})"
    return f"{_moment(a, lang)} – {_moment(b, lang)} ({label})"


def local_ts(ts: str, tz_name: str | None, lang: Lang = DEFAULT) -> str:
    """`local_time` of an RFC 3339 timestamp (the alert payload's `started`, `ts`)."""
    return local_time(parse_ts(ts), tz_name, lang)
