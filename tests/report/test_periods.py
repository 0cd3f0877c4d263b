"""Report periods: parsing, local bounds on DST days, neighbours, and bad input."""

from __future__ import annotations

import datetime as dt

import pytest

from footfall_contract.hours import local_date
from footfall_report.periods import PeriodError, parse_period
from tests.support.collector import small_site

SITE = small_site()  # Europe/Helsinki
UTC = dt.UTC
NOW = dt.datetime(2026, 12, 1, 6, 30, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_day_is_local_midnight_to_midnight() -> None:
    p = parse_period("2026-11-23", SITE, NOW)
    assert (p.kind, p.first, p.last) == ("day", dt.date(2026, 11, 23), dt.date(2026, 11, 23))
    assert p.start == utc(2026, 11, 22, 22)  # 00:00 EET = 22:00 UTC the day before
    assert p.end == utc(2026, 11, 23, 22)
    assert p.start_ms == int(utc(2026, 11, 22, 22).timestamp() * 1000)
    assert p.hours == 24
    assert p.key == "2026-11-23"
    assert p.label == "Mon 23 Nov 2026"


@pytest.mark.parametrize(
    ("text", "hours", "start", "end"),
    [
        # spring forward: 03:00 EET -> 04:00 EEST
        ("2026-03-29", 23, utc(2026, 3, 28, 22), utc(2026, 3, 29, 21)),
        # fall back: 04:00 EEST -> 03:00 EET
        ("2026-10-25", 25, utc(2026, 10, 24, 21), utc(2026, 10, 25, 22)),
        ("2026-03", 31 * 24 - 1, utc(2026, 2, 28, 22), utc(2026, 3, 31, 21)),
        ("2026-10", 31 * 24 + 1, utc(2026, 9, 30, 21), utc(2026, 10, 31, 22)),
        ("2026-W13", 7 * 24 - 1, utc(2026, 3, 22, 22), utc(2026, 3, 29, 21)),
        ("2026", 365 * 24, utc(2025, 12, 31, 22), utc(2026, 12, 31, 22)),
    ],
)
def test_dst_days_have_23_and_25_hours(
    text: str, hours: int, start: dt.datetime, end: dt.datetime
) -> None:
    p = parse_period(text, SITE, NOW)
    assert p.hours == hours
    assert p.start == start and p.end == end
    # the bounds are the site's wall-clock midnights
    assert p.start.astimezone(SITE.tz).time() == dt.time(0)
    assert p.end.astimezone(SITE.tz).time() == dt.time(0)


def test_local_date_of_midnight_rows_on_dst_days() -> None:
    for day in (dt.date(2026, 3, 29), dt.date(2026, 3, 30), dt.date(2026, 10, 25)):
        midnight = dt.datetime.combine(day, dt.time(0), tzinfo=SITE.tz)
        assert local_date(SITE, int(midnight.timestamp() * 1000)) == day


def test_week_month_year() -> None:
    w = parse_period("2026-W47", SITE, NOW)
    assert (w.first, w.last) == (dt.date(2026, 11, 16), dt.date(2026, 11, 22))
    assert w.label == "Week 47 of 2026 (16–22 Nov)"
    assert parse_period("2026-w47", SITE, NOW) == w
    m = parse_period("2026-02", SITE, NOW)
    assert (m.first, m.last, len(m.days())) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28), 28)
    assert m.label == "February 2026"
    y = parse_period("2028", SITE, NOW)
    assert len(y.days()) == 366 and y.label == "2028"
    # ISO week 1 of 2026 starts in 2025; 2026 has a week 53
    w1 = parse_period("2026-W01", SITE, NOW)
    assert w1.first == dt.date(2025, 12, 29) and w1.key == "2026-W01"
    assert parse_period("2026-W53", SITE, NOW).last == dt.date(2027, 1, 3)


def test_keys_parse_back() -> None:
    for text in ("2026-11-23", "2026-W47", "2026-11", "2026", "2026-W01", "2024-02-29"):
        p = parse_period(text, SITE, NOW)
        assert p.key == text
        assert parse_period(p.key, SITE, NOW) == p


def test_relative_names_on_the_site_clock() -> None:
    # 2026-11-30 22:30 UTC is already 1 December 00:30 in Helsinki
    now = utc(2026, 11, 30, 22, 30)
    keys = {
        name: parse_period(name, SITE, now).key
        for name in (
            "today",
            "yesterday",
            "this-week",
            "last-week",
            "this-month",
            "last-month",
            "this-year",
            "last-year",
        )
    }
    assert keys == {
        "today": "2026-12-01",
        "yesterday": "2026-11-30",
        "this-week": "2026-W49",
        "last-week": "2026-W48",
        "this-month": "2026-12",
        "last-month": "2026-11",
        "this-year": "2026",
        "last-year": "2025",
    }
    assert parse_period(" Last-Month ", SITE, utc(2026, 1, 15)).key == "2025-12"
    assert parse_period("yesterday", SITE, utc(2026, 3, 1, 12)).key == "2026-02-28"


def test_neighbours() -> None:
    day = parse_period("2026-03-31", SITE, NOW)
    assert day.previous().key == "2026-03-30"
    assert day.month_before() is not None and day.month_before().key == "2026-02-28"  # type: ignore[union-attr]
    assert day.year_before().key == "2025-03-31"
    assert parse_period("2028-02-29", SITE, NOW).year_before().key == "2027-02-28"
    week = parse_period("2026-W47", SITE, NOW)
    assert week.previous().key == "2026-W46"
    assert week.month_before() is not None and week.month_before().key == "2026-W43"  # type: ignore[union-attr]
    assert week.year_before().key == "2025-W47"
    assert parse_period("2026-W53", SITE, NOW).year_before().key == "2025-W52"
    month = parse_period("2026-01", SITE, NOW)
    assert month.previous().key == "2025-12"
    assert month.month_before() == month.previous()
    assert month.year_before().key == "2025-01"
    year = parse_period("2026", SITE, NOW)
    assert year.previous().key == "2025" and year.year_before().key == "2025"
    assert year.month_before() is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "use a day 2026-11-23, an ISO week 2026-W47, a month 2026-11, a year 2026"),
        ("next-month", "use a day 2026-11-23"),
        ("2026/11", "use a day 2026-11-23"),
        ("26-11", "use a day 2026-11-23"),
        ("2026-11-23T10:00", "use a day 2026-11-23"),
        ("2026-13", "the month must be 01 to 12"),
        ("2026-00", "the month must be 01 to 12"),
        ("2026-02-29", "February 2026 has days 1 to 28"),
        ("2026-04-31", "April 2026 has days 1 to 30"),
        ("2026-W00", "ISO year 2026 has weeks 01 to 53"),
        ("2025-W53", "ISO year 2025 has weeks 01 to 52"),
        ("1999", "the year must be 2000 to 2261"),
        ("2262-01", "the year must be 2000 to 2261"),
    ],
)
def test_bad_periods_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(PeriodError) as err:
        parse_period(text, SITE, NOW)
    assert reason in str(err.value)
    assert repr(text) in str(err.value)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_period("today", SITE, dt.datetime(2026, 12, 1))
