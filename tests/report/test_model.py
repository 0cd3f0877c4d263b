"""The report model without I/O: closed days, no-data days, estimates, DST days,
comparisons, the hourly profile, doors and the annual statistics."""

from __future__ import annotations

import datetime as dt

import pytest

from footfall_contract.site import parse_site
from footfall_report.model import (
    DailyRow,
    DoorCount,
    HourlyRow,
    UnknownZoneError,
    build_report,
    build_statistics,
    select_zones,
)
from footfall_report.periods import Period, parse_period

SITE = parse_site(
    """
site: model
name: Model Centre
timezone: Europe/Helsinki
opening_hours: {mon-fri: "08:00-20:00", sat: "10:00-16:00"}
zones:
  - {id: centre, name: Centre}
  - {id: library, name: Library, parent: centre, opening_hours: {sun: "12:00-16:00"}}
  - {id: archive, name: Archive, parent: centre, opening_hours: {mon-sun: closed}}
  - {id: kids, name: Kids' corner, parent: library}
doors:
  - {id: main, outside: null, inside: centre}
  - {id: lib, outside: centre, inside: library}
  - {id: arch, outside: centre, inside: archive}
  - {id: kids-door, outside: library, inside: kids}
""",
    "model.yaml",
)
TZ = SITE.tz
UTC = dt.UTC
AFTER = dt.datetime(2026, 12, 15, 12, tzinfo=UTC)
"""A `now` after every period used here."""


def period(text: str, now: dt.datetime = AFTER) -> Period:
    return parse_period(text, SITE, now)


def local_ms(day: dt.date, hour: int = 0, minute: int = 0) -> int:
    return int(dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ).timestamp() * 1000)


def row(
    zone: str, day: dt.date, entries: int, estimated: int = 0, peak: int | None = None
) -> DailyRow:
    return DailyRow(
        zone,
        day,
        entries,
        entries - 1 if entries else 0,
        peak if peak is not None else entries // 2,
        local_ms(day, 12, 30),
        estimated,
    )


def days(first: dt.date, count: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(count)]


NOV = days(dt.date(2026, 11, 1), 30)  # 1 Nov 2026 is a Sunday


def test_closed_days_are_closed_not_zero() -> None:
    rows = [row("centre", d, 0 if d.weekday() == 6 else 100) for d in NOV]
    rows[7] = row("centre", NOV[7], 12)  # visits counted on Sunday 8 Nov
    report = build_report(SITE, period("2026-11"), rows, [], [], AFTER, zones=["centre"])
    centre = report.zone("centre")
    by_day = {d.day: d for d in centre.days}
    assert by_day[dt.date(2026, 11, 1)].status == "closed"
    assert by_day[dt.date(2026, 11, 1)].entries is None  # the row says 0: still "closed"
    assert by_day[dt.date(2026, 11, 1)].opening_hours is None
    assert by_day[dt.date(2026, 11, 8)].status == "closed_with_visits"
    assert by_day[dt.date(2026, 11, 8)].entries == 12
    assert by_day[dt.date(2026, 11, 2)].status == "open"
    assert by_day[dt.date(2026, 11, 2)].opening_hours == "08:00-20:00"
    assert by_day[dt.date(2026, 11, 7)].opening_hours == "10:00-16:00"
    sundays = [d for d in NOV if d.weekday() == 6]
    assert (centre.days_open, centre.days_closed) == (30 - len(sundays), len(sundays))
    assert centre.closed_with_visits == [dt.date(2026, 11, 8)]
    assert centre.entries == 100 * (30 - len(sundays)) + 12
    assert centre.days_no_data == 0 and centre.status == "counted"


def test_a_closed_day_report_says_closed() -> None:
    sunday = dt.date(2026, 11, 1)
    rows = [row(z, sunday, 0) for z in ("centre", "library", "archive", "kids")]
    rows[1] = row("library", sunday, 40)
    report = build_report(SITE, period("2026-11-01"), rows, [], [], AFTER)
    assert report.zone("centre").status == "closed"
    assert report.zone("centre").entries is None
    assert report.zone("centre").peak is None
    # the library (and its kids' corner, by inheritance) opens on Sundays
    assert report.zone("library").entries == 40
    assert report.zone("library").days_open == 1
    assert report.zone("kids").status == "counted" and report.zone("kids").entries == 0
    assert report.zone("archive").days_closed == 1 and report.zone("archive").status == "closed"


def test_no_data_is_not_zero() -> None:
    rows = [row("library", d, 50) for d in NOV if d != dt.date(2026, 11, 10)]
    report = build_report(SITE, period("2026-11"), rows, [], [], AFTER)
    lib = report.zone("library")
    day10 = next(d for d in lib.days if d.day == dt.date(2026, 11, 10))
    assert day10.status == "no_data" and day10.entries is None
    assert lib.days_no_data == 1 and not lib.complete
    assert lib.entries == 50 * 29
    # no row at all: None, not 0
    centre = report.zone("centre")
    assert centre.entries is None and centre.status == "no_data"
    assert centre.days_no_data == centre.days_open
    assert report.as_dict()["zones"][0]["entries"] is None


def test_days_still_to_come() -> None:
    now = dt.datetime(2026, 11, 10, 10, tzinfo=UTC)
    rows = [row("library", d, 20) for d in NOV if d < dt.date(2026, 11, 10)]
    hourly = [
        HourlyRow.at("library", dt.datetime(2026, 11, 3, 9, tzinfo=TZ), 6, False),
        # today, a Tuesday too, is not over: not in the profile
        HourlyRow.at("library", dt.datetime(2026, 11, 10, 9, tzinfo=TZ), 50, False),
    ]
    report = build_report(SITE, period("this-month", now), rows, hourly, [], now)
    lib = report.zone("library")
    assert (lib.profile[1][9].mean, lib.profile[1][9].days) == (6.0, 1)
    assert report.in_progress
    assert lib.days_no_data == 0
    assert lib.days_not_yet == 21  # today (10th, no row yet) and the 20 after it
    assert lib.entries == 20 * 9


def test_estimated_hours_flag_every_figure_they_are_in() -> None:
    rows = [row("library", d, 30) for d in NOV]
    rows[4] = row("library", NOV[4], 80, estimated=2, peak=70)  # 5 Nov: the peak
    hourly = [
        HourlyRow.at("library", dt.datetime(2026, 11, 5, 10, tzinfo=TZ), 9, True),
        HourlyRow.at("library", dt.datetime(2026, 11, 5, 11, tzinfo=TZ), 8, False),
        HourlyRow.at("library", dt.datetime(2026, 11, 12, 10, tzinfo=TZ), 3, False),
    ]
    report = build_report(SITE, period("2026-11"), rows, hourly, [], AFTER, zones=["library"])
    lib = report.zone("library")
    assert lib.estimated and lib.estimated_hours == 2
    assert lib.peak == 70 and lib.peak_estimated
    assert lib.peak_at == dt.datetime(2026, 11, 5, 12, 30, tzinfo=TZ)
    flagged = [d.day for d in lib.days if d.estimated]
    assert flagged == [dt.date(2026, 11, 5)]
    # four Thursdays with data; an hour without a row on such a day is 0
    thursday = lib.profile[3]
    assert thursday[10].estimated and thursday[10].mean == 3.0 and thursday[10].days == 4
    assert not thursday[11].estimated and thursday[11].mean == 2.0
    assert thursday[3].mean == 0.0 and lib.profile[4][10].mean == 0.0
    assert lib.months[0].estimated and lib.months[0].estimated_hours == 2
    as_dict = lib.as_dict()
    assert as_dict["estimated"] and as_dict["days"][4]["estimated"]
    assert not as_dict["days"][5]["estimated"]


def test_dst_days_in_the_profile_and_the_day_report() -> None:
    autumn = dt.date(2026, 10, 25)  # Sunday, 25 hours: 03:00-04:00 happens twice
    spring = dt.date(2026, 3, 29)  # Sunday, 23 hours: no 03:00
    hourly = []
    for day in (autumn, spring):
        start = dt.datetime.combine(day, dt.time(0), tzinfo=TZ).astimezone(UTC)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=TZ)
        t = start
        while t < end.astimezone(UTC):
            hourly.append(HourlyRow.at("library", t.astimezone(TZ), 1, False))
            t += dt.timedelta(hours=1)
    assert len([h for h in hourly if h.day == autumn]) == 25
    assert len([h for h in hourly if h.day == spring]) == 23
    assert [h.hour for h in hourly if h.day == autumn].count(3) == 2
    assert [h.hour for h in hourly if h.day == spring].count(3) == 0
    dst_day = period("2026-10-25")
    assert dst_day.hours == 25
    rows = [row("library", autumn, 25)]
    report = build_report(SITE, dst_day, rows, hourly, [], AFTER, zones=["library"])
    sunday = report.zone("library").profile[6]
    assert sunday[3].mean == 2.0 and sunday[3].days == 1  # both 03:00 hours of that day
    assert sunday[2].mean == 1.0 and sunday[4].mean == 1.0
    assert report.zone("library").entries == 25
    spring_report = build_report(SITE, period("2026-03-29"), [], hourly, [], AFTER)
    sunday = spring_report.zone("library").profile[6]
    assert sunday[3].mean is None and sunday[3].days == 0  # no such hour: not 0 visits
    assert sunday[2].mean == 1.0 and sunday[4].mean == 1.0
    # a year's profile: two Sundays have hour 02, one has hour 03 (twice)
    year = build_report(SITE, period("2026"), [], hourly, [], AFTER, zones=["library"])
    sunday = year.zone("library").profile[6]
    assert (sunday[2].mean, sunday[2].days) == (1.0, 2)
    assert (sunday[3].mean, sunday[3].days) == (2.0, 1)


def test_comparisons_month_and_year_before() -> None:
    rows = [row("library", d, 100) for d in NOV]
    rows += [row("library", d, 80) for d in days(dt.date(2026, 10, 1), 31)]
    rows += [row("library", d, 0) for d in days(dt.date(2025, 11, 1), 30)]
    rows[40] = row("library", rows[40].day, 80, estimated=1)
    report = build_report(SITE, period("2026-11"), rows, [], [], AFTER, zones=["library"])
    lib = report.zone("library")
    assert lib.entries == 3000
    mb = lib.month_before
    assert mb is not None and mb.period.key == "2026-10"
    assert mb.entries == 80 * 31 and mb.estimated
    assert mb.change_pct == round((3000 - 2480) / 2480 * 100, 1) == 21.0
    yb = lib.year_before
    assert yb is not None and yb.period.key == "2025-11"
    assert yb.entries == 0 and yb.change_pct is None  # from 0: no percentage
    # nothing stored a year before: None, not 0
    other = build_report(SITE, period("2026-11"), rows[:30], [], [], AFTER, zones=["library"])
    assert other.zone("library").year_before.entries is None  # type: ignore[union-attr]
    assert other.zone("library").year_before.change_pct is None  # type: ignore[union-attr]
    assert other.zone("library").month_before.days_no_data == 31  # type: ignore[union-attr]
    # a fall in visits is a negative change
    down = build_report(SITE, period("2026-10"), rows, [], [], AFTER, zones=["library"])
    assert down.zone("library").month_before.entries is None  # type: ignore[union-attr]
    assert down.zone("library").year_before.entries is None  # type: ignore[union-attr]
    y = build_report(SITE, period("2026"), rows, [], [], AFTER, zones=["library"])
    assert y.zone("library").month_before is None
    assert y.zone("library").year_before.entries == 0  # type: ignore[union-attr]


def test_a_period_in_progress_compares_the_same_days() -> None:
    now = dt.datetime(2026, 11, 10, 10, tzinfo=UTC)  # the 10th: 10 days elapsed
    rows = [row("library", d, 10) for d in NOV[:10]]
    rows += [row("library", d, 7) for d in days(dt.date(2026, 10, 1), 31)]
    report = build_report(SITE, period("this-month", now), rows, [], [], now)
    mb = report.zone("library").month_before
    assert mb is not None and mb.truncated_to_days == 10
    assert mb.entries == 70
    assert report.zone("library").entries == 100
    assert mb.change_pct == round((100 - 70) / 70 * 100, 1)


def test_zones_in_tree_order_and_unknown_zones() -> None:
    assert select_zones(SITE) == ["centre", "library", "kids", "archive"]
    assert select_zones(SITE, ["kids", "centre"]) == ["centre", "kids"]
    with pytest.raises(UnknownZoneError) as err:
        select_zones(SITE, ["library", "cafe"])
    assert "unknown zone 'cafe' in site 'model'" in str(err.value)
    assert "centre, library, archive, kids" in str(err.value)
    report = build_report(SITE, period("2026-11-02"), [], [], [], AFTER)
    assert [(z.zone, z.depth, z.parent_name) for z in report.zones] == [
        ("centre", 0, None),
        ("library", 1, "Centre"),
        ("kids", 2, "Library"),
        ("archive", 1, "Centre"),
    ]


def test_doors() -> None:
    counts = [
        DoorCount("main", "in", 10),
        DoorCount("main", "out", 9),
        DoorCount("lib", "in", 4),
        DoorCount("old-door", "in", 2),
    ]
    report = build_report(SITE, period("2026-11"), [], [], counts, AFTER)
    doors = {d.door: d for d in report.doors.doors}
    assert report.doors.status == "available"
    assert (doors["main"].entries, doors["main"].exits) == (10, 9)
    assert (doors["lib"].entries, doors["lib"].exits) == (4, 0)
    assert (doors["arch"].entries, doors["arch"].exits) == (0, 0)
    assert doors["old-door"].label == "not in the site file"
    assert doors["main"].label == "outside → Centre"
    assert doors["kids-door"].label == "Library → Kids' corner"
    only = build_report(SITE, period("2026-11"), [], [], counts, AFTER, zones=["kids"])
    assert [d.door for d in only.doors.doors] == ["kids-door"]
    gone = build_report(
        SITE, period("2024-11"), [], [], None, AFTER, doors_available_from=dt.date(2025, 11, 10)
    )
    assert gone.doors.status == "not_available"
    assert all(d.entries is None and d.exits is None for d in gone.doors.doors)
    part = build_report(
        SITE, period("2025-11"), [], [], counts, AFTER, doors_available_from=dt.date(2025, 11, 10)
    )
    assert part.doors.status == "partial" and part.doors.available_from == dt.date(2025, 11, 10)


def test_statistics() -> None:
    year = 2026
    all_days = days(dt.date(year, 1, 1), 365)
    rows = [row(z, d, 5) for z in ("centre", "library", "archive") for d in all_days]
    # March has an estimated hour for the library; July has no data for it
    rows = [
        row(r.zone, r.day, r.entries, estimated=1)
        if r.zone == "library" and r.day == dt.date(2026, 3, 3)
        else r
        for r in rows
        if not (r.zone == "library" and r.day.month == 7 and r.day.day == 14)
    ]
    stats = build_statistics(SITE, year, rows, AFTER)
    units = {u.zone: u for u in stats.units}
    lib = units["library"]
    assert lib.visits == 5 * 364
    assert lib.estimated_months == [3]
    assert lib.no_data_months == [7]
    assert lib.closed_months == []
    # the centre is closed on Sundays: those days' visits (5) are counted and flagged
    assert units["centre"].visits == 5 * 365
    # the archive never opens: every month closed; its counted visits still add up
    assert units["archive"].closed_months == list(range(1, 13))
    assert units["archive"].visits == 5 * 365
    kids = units["kids"]
    assert kids.visits is None and kids.no_data_months == list(range(1, 13))
    # on 1 December, December is still to come: neither closed nor "no data"
    early = build_statistics(SITE, year, rows, dt.datetime(2026, 12, 1, 6, tzinfo=UTC))
    kids = next(u for u in early.units if u.zone == "kids")
    assert kids.no_data_months == list(range(1, 12)) and kids.closed_months == []
    assert stats.as_dict()["units"][1]["estimated_months"] == [3]
