"""Report periods: a day, an ISO week, a month or a year of the site's calendar.

A period is a span of whole local days; its bounds are local midnights in the site's
time zone, so a day is 23 or 25 hours long on DST change days and every instant belongs to
exactly one day. Pure: no I/O, `now` is always given.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Final, Literal
from zoneinfo import ZoneInfo

from footfall_contract.hours import local_midnight, local_midnight_ms
from footfall_contract.site import Site

__all__ = ["ACCEPTED", "Period", "PeriodError", "parse_period", "period_of"]

Kind = Literal["day", "week", "month", "year"]

ACCEPTED: Final = (
    "a day 2026-11-23, an ISO week 2026-W47, a month 2026-11, a year 2026, "
    "or today, yesterday, this-week, last-week, this-month, last-month, this-year, last-year"
)
MIN_YEAR: Final = 2000
MAX_YEAR: Final = 2261  # InfluxDB stores nanoseconds since 1970 in 64 bits: up to 2262-04

_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-[Ww](\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")


class PeriodError(ValueError):
    """A period text that names no period; the message says what is accepted, `reason`
    ("form", "year", "month", "day", "week") and `details` say it again for a caller that
    words it in another language (footfall-web's reports page)."""

    def __init__(self, message: str, reason: str = "form", **details: object) -> None:
        super().__init__(message)
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class Period:
    """Whole local days [first, last] of the site's calendar."""

    kind: Kind
    first: dt.date
    last: dt.date
    tz: ZoneInfo

    # -- bounds ------------------------------------------------------------------------

    @property
    def start(self) -> dt.datetime:
        """Local midnight starting the first day (aware, site time zone)."""
        return local_midnight(self.first, self.tz)

    @property
    def end(self) -> dt.datetime:
        """Local midnight after the last day (exclusive end)."""
        return local_midnight(self.last + dt.timedelta(days=1), self.tz)

    @property
    def start_ms(self) -> int:
        return local_midnight_ms(self.first, self.tz)

    @property
    def end_ms(self) -> int:
        return local_midnight_ms(self.last + dt.timedelta(days=1), self.tz)

    @property
    def hours(self) -> int:
        """Real hours in the period (a DST change day has 23 or 25)."""
        return (self.end_ms - self.start_ms) // 3_600_000

    def days(self) -> list[dt.date]:
        count = (self.last - self.first).days + 1
        return [self.first + dt.timedelta(days=i) for i in range(count)]

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.first <= day <= self.last

    # -- names -------------------------------------------------------------------------

    @property
    def key(self) -> str:
        """The canonical text that parses back to this period: 2026-11-23, 2026-W47,
        2026-11 or 2026."""
        if self.kind == "day":
            return self.first.isoformat()
        if self.kind == "week":
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "month":
            return f"{self.first.year}-{self.first.month:02d}"
        return str(self.first.year)

    @property
    def label(self) -> str:
        """For people: "Mon 23 Nov 2026", "Week 47 of 2026 (16–22 Nov)", "November 2026"."""
        f = self.first
        if self.kind == "day":
            return f"{f:%a} {f.day} {f:%b %Y}"
        if self.kind == "week":
            year, week, _ = f.isocalendar()
            last = self.last
            span = (
                f"{f.day}–{last.day} {last:%b}"
                if f.month == last.month
                else f"{f.day} {f:%b} – {last.day} {last:%b}"
            )
            return f"Week {week} of {year} ({span})"
        if self.kind == "month":
            return f"{f:%B %Y}"
        return str(f.year)

    def __str__(self) -> str:
        return self.key

    # -- neighbours --------------------------------------------------------------------

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        if self.kind == "day":
            return self._day(self.first - dt.timedelta(days=1))
        if self.kind == "week":
            return self._week(self.first - dt.timedelta(days=7))
        if self.kind == "month":
            return self._month(*_add_months(self.first.year, self.first.month, -1))
        return self._year(self.first.year - 1)

    def month_before(self) -> Period | None:
        """The same period a month earlier: the same date (clamped to the month's end)
        for a day, four weeks earlier for a week (same weekdays), the previous month for
        a month; None for a year (no such comparison)."""
        if self.kind == "day":
            year, month = _add_months(self.first.year, self.first.month, -1)
            return self._day(_clamped(year, month, self.first.day))
        if self.kind == "week":
            return self._week(self.first - dt.timedelta(days=28))
        if self.kind == "month":
            return self.previous()
        return None

    def year_before(self) -> Period:
        """The same period a year earlier: the same date (29 Feb -> 28 Feb), the same ISO
        week number (week 53 -> 52 when that year has none), month or year."""
        year = self.first.year - 1
        if self.kind == "day":
            return self._day(_clamped(year, self.first.month, self.first.day))
        if self.kind == "week":
            iso_year, week, _ = self.first.isocalendar()
            week = min(week, _iso_weeks(iso_year - 1))
            return self._week(dt.date.fromisocalendar(iso_year - 1, week, 1))
        if self.kind == "month":
            return self._month(year, self.first.month)
        return self._year(year)

    def _day(self, day: dt.date) -> Period:
        return Period("day", day, day, self.tz)

    def _week(self, monday: dt.date) -> Period:
        return Period("week", monday, monday + dt.timedelta(days=6), self.tz)

    def _month(self, year: int, month: int) -> Period:
        return month_period(year, month, self.tz)

    def _year(self, year: int) -> Period:
        return year_period(year, self.tz)


def month_period(year: int, month: int, tz: ZoneInfo) -> Period:
    last = calendar.monthrange(year, month)[1]
    return Period("month", dt.date(year, month, 1), dt.date(year, month, last), tz)


def year_period(year: int, tz: ZoneInfo) -> Period:
    return Period("year", dt.date(year, 1, 1), dt.date(year, 12, 31), tz)


def period_of(kind: Kind, day: dt.date, tz: ZoneInfo) -> Period:
    """The period of `kind` that contains `day`."""
    if kind == "day":
        return Period("day", day, day, tz)
    if kind == "week":
        monday = day - dt.timedelta(days=day.weekday())
        return Period("week", monday, monday + dt.timedelta(days=6), tz)
    if kind == "month":
        return month_period(day.year, day.month, tz)
    return year_period(day.year, tz)


def parse_period(text: str, site: Site, now: dt.datetime) -> Period:
    """A period of `site`'s calendar from its text; relative names ("yesterday",
    "last-month") are taken on the site's wall clock at `now` (timezone-aware)."""
    tz = site.tz
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("parse_period needs a timezone-aware now")
    if not isinstance(text, str):
        raise PeriodError(f"a period must be text: {ACCEPTED}", raw=str(text))
    raw = text
    text = text.strip().lower()
    today = now.astimezone(tz).date()
    relative: dict[str, tuple[Kind, dt.date]] = {
        "today": ("day", today),
        "yesterday": ("day", today - dt.timedelta(days=1)),
        "this-week": ("week", today),
        "last-week": ("week", today - dt.timedelta(days=7)),
        "this-month": ("month", today),
        "last-month": ("month", today.replace(day=1) - dt.timedelta(days=1)),
        "this-year": ("year", today),
        "last-year": ("year", dt.date(today.year - 1, 1, 1)),
    }
    if text in relative:
        kind, day = relative[text]
        return period_of(kind, day, tz)
    if m := _DAY.match(text):
        year, month, day_ = (int(g) for g in m.groups())
        _check_year(raw, year)
        _check_month(raw, month)
        days_in = calendar.monthrange(year, month)[1]
        if not 1 <= day_ <= days_in:
            raise PeriodError(
                f"bad period {raw!r}: {calendar.month_name[month]} {year} has days 1 to {days_in}",
                "day",
                raw=raw,
                year=year,
                month=month,
                days=days_in,
            )
        return period_of("day", dt.date(year, month, day_), tz)
    if m := _WEEK.match(text):
        year, week = int(m[1]), int(m[2])
        _check_year(raw, year)
        weeks = _iso_weeks(year)
        if not 1 <= week <= weeks:
            raise PeriodError(
                f"bad period {raw!r}: ISO year {year} has weeks 01 to {weeks}",
                "week",
                raw=raw,
                year=year,
                weeks=weeks,
            )
        return period_of("week", dt.date.fromisocalendar(year, week, 1), tz)
    if m := _MONTH.match(text):
        year, month = int(m[1]), int(m[2])
        _check_year(raw, year)
        _check_month(raw, month)
        return month_period(year, month, tz)
    if m := _YEAR.match(text):
        year = int(m[1])
        _check_year(raw, year)
        return year_period(year, tz)
    raise PeriodError(f"bad period {raw!r}: use {ACCEPTED}", raw=raw)


def _check_year(raw: str, year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise PeriodError(
            f"bad period {raw!r}: the year must be {MIN_YEAR} to {MAX_YEAR} "
            "(the latest InfluxDB can store)",
            "year",
            raw=raw,
            min=MIN_YEAR,
            max=MAX_YEAR,
        )


def _check_month(raw: str, month: int) -> None:
    if not 1 <= month <= 12:
        raise PeriodError(f"bad period {raw!r}: the month must be 01 to 12", "month", raw=raw)


def _iso_weeks(year: int) -> int:
    return dt.date(year, 12, 28).isocalendar()[1]


def _add_months(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _clamped(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))
