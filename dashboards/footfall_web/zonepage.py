"""The agency page (`/zones/{site}/{zone}`): today so far and this week, worked out from
the history intervals (`history.merge_history`'s, at event time) on the site's calendar.
Pure, so that the page's figures are checked without a browser."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from footfall_contract.hours import local_date, local_day_bounds
from footfall_contract.site import Site
from footfall_contract.timefmt import parse_ts

from . import i18n

WEEKDAYS: dict[i18n.Lang, tuple[str, ...]] = {
    "fi": ("ma", "ti", "ke", "to", "pe", "la", "su"),
    "sv": ("mån", "tis", "ons", "tors", "fre", "lör", "sön"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def today_start_ms(site: Site, now_ms: int) -> int:
    """Local midnight of the site's today (what "today" means on the page)."""
    return local_day_bounds(site, local_date(site, now_ms))[0]


def today_end_ms(site: Site, now_ms: int) -> int:
    """The next local midnight (23 or 25 hours away on a DST day)."""
    return local_day_bounds(site, local_date(site, now_ms))[1]


def week_start_ms(site: Site, now_ms: int) -> int:
    """Monday 00:00 of the site's current week (weeks from Monday, as the history API)."""
    today = local_date(site, now_ms)
    return local_day_bounds(site, today - dt.timedelta(days=today.weekday()))[0]


def hhmm(site: Site, ms: int, lang: i18n.Lang) -> str:
    """A site-local time as the language writes it (14.00, 14:00)."""
    return i18n.format_time(dt.datetime.fromtimestamp(ms / 1000, site.tz).strftime("%H:%M"), lang)


def day_label(day: dt.date, lang: i18n.Lang) -> str:
    """Short ("ke 25.11.", "ons 25.11.", "Wed 25/11"), unambiguous within a week."""
    name = WEEKDAYS[lang][day.weekday()]
    return f"{name} {day.day}/{day.month}" if lang == "en" else f"{name} {day.day}.{day.month}."


def hour_rows(
    site: Site, points: Sequence[dict[str, Any]], lang: i18n.Lang
) -> list[dict[str, Any]]:
    """Today's hourly intervals for the table and the chart: the start (site time), the
    level at the end, the highest level and the entries."""
    return [
        {
            "t": p["t"],
            "ms": parse_ts(p["t"]),
            "time": hhmm(site, parse_ts(p["t"]), lang),
            "count": p["count"],
            "max": p["max"],
            "visits": p["visits"],
        }
        for p in points
    ]


def today_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Visits so far, and the highest level with the first hour it was reached (None
    when nothing is known yet)."""
    peak: int | None = None
    peak_time: str | None = None
    for r in rows:
        if r["max"] is not None and (peak is None or r["max"] > peak):
            peak, peak_time = r["max"], r["time"]
    return {
        "visits": sum(r["visits"] for r in rows),
        "peak": peak,
        "peak_time": peak_time,
        "known": bool(rows),
    }


def week_rows(
    site: Site, points: Sequence[dict[str, Any]], now_ms: int, lang: i18n.Lang
) -> list[dict[str, Any]]:
    """Monday to Sunday of the current week: the visits of each day from its interval
    (None for a day without data, and for the days still to come)."""
    by_date = {local_date(site, parse_ts(p["t"])): p for p in points}
    today = local_date(site, now_ms)
    monday = today - dt.timedelta(days=today.weekday())
    rows = []
    for k in range(7):
        day = monday + dt.timedelta(days=k)
        p = by_date.get(day)
        rows.append(
            {
                "date": day.isoformat(),
                "label": day_label(day, lang),
                "visits": None if p is None or day > today else p["visits"],
                "today": day == today,
                "future": day > today,
            }
        )
    return rows


def bar_width(value: int | None, values: Sequence[int | None]) -> int:
    """A bar's length in % of the longest (for the week table's bars)."""
    top = max((v for v in values if v is not None), default=0)
    return 0 if value is None or top <= 0 else round(value / top * 100)
