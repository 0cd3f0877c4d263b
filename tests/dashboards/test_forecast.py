"""The typical-day forecast: the median-of-weekdays arithmetic (DST days, missing data),
the level carried through quiet buckets, and `Forecaster` against a real InfluxDB
holding simulated Iso Omena history (`occupancy_history`, at event time)."""

from __future__ import annotations

import datetime as dt
import statistics
from bisect import bisect_left
from zoneinfo import ZoneInfo

import pytest

from footfall_collector.schema import OCCUPANCY, OCCUPANCY_HISTORY, occupancy_history_point
from footfall_web.forecast import (
    Forecaster,
    Typical,
    carried_levels,
    median_by_slot,
    same_weekdays,
    slot_means,
    typical_of,
)
from tests.dashboards.conftest import History
from tests.support.collector import InfluxQuery

HEL = ZoneInfo("Europe/Helsinki")
D = dt.date


def ts(day: dt.date, hour: int, minute: int = 0, fold: int = 0) -> float:
    return dt.datetime.combine(day, dt.time(hour, minute, fold=fold), tzinfo=HEL).timestamp()


def every_15_min(day: dt.date, value: float) -> list[tuple[float, float]]:
    """Samples every 15 minutes of real time across the local day (23, 24 or 25 hours)."""
    start = ts(day, 0)
    end = ts(day + dt.timedelta(days=1), 0)
    return [(t, value) for t in range(int(start), int(end), 900)]


# --- pure arithmetic -----------------------------------------------------------------


def test_same_weekdays_are_the_last_n_before_today() -> None:
    wed = D(2026, 11, 25)
    assert same_weekdays(wed, 2, 4) == [
        D(2026, 11, 18),
        D(2026, 11, 11),
        D(2026, 11, 4),
        D(2026, 10, 28),
    ]
    assert same_weekdays(wed, 1, 2) == [D(2026, 11, 24), D(2026, 11, 17)]
    assert same_weekdays(wed, 3, 1) == [D(2026, 11, 19)]  # the coming Thursday: last week's
    with pytest.raises(ValueError):
        same_weekdays(wed, 7, 4)


def test_slot_means_average_within_a_slot_on_the_local_clock() -> None:
    day = D(2026, 11, 23)
    samples = [(ts(day, 9, 0), 10.0), (ts(day, 9, 14), 20.0), (ts(day, 9, 15), 7.0)]
    samples.append((ts(day, 23, 59), 1.0))
    per_day = slot_means(samples, HEL, 15)
    assert list(per_day) == [day]
    values = per_day[day]
    assert len(values) == 96
    assert values[36] == 15.0 and values[37] == 7.0 and values[95] == 1.0
    assert sum(v is not None for v in values) == 3
    hourly = slot_means(samples, HEL, 60)[day]
    assert len(hourly) == 24 and hourly[9] == pytest.approx(37 / 3)
    with pytest.raises(ValueError):
        slot_means(samples, HEL, 7)


def test_median_by_slot_skips_missing_values() -> None:
    assert median_by_slot([[1.0, None, 5.0], [3.0, None, None], [2.0, 4.0, 7.0]]) == [2.0, 4.0, 6.0]
    assert median_by_slot([[1.0, None], [4.0, None]]) == [2.5, None]
    assert median_by_slot([]) == []


def test_dst_autumn_the_repeated_hour_falls_into_its_slots() -> None:
    """2026-10-25: 04:00 EEST -> 03:00 EET, a 25-hour Sunday. Its two 03:xx hours share
    the 03:xx slots; the median over four Sundays is still one value a slot."""
    sundays = [D(2026, 10, 25), D(2026, 10, 18), D(2026, 10, 11), D(2026, 10, 4)]
    samples = [s for k, day in enumerate(sundays) for s in every_15_min(day, 10.0 * (k + 1))]
    # on the DST day, the first 03:30 says 100 and the second (fold=1) says 0
    dst = sundays[0]
    samples = [(t, v) for t, v in samples if dt.datetime.fromtimestamp(t, HEL).date() != dst]
    for t, _ in every_15_min(dst, 0):
        local = dt.datetime.fromtimestamp(t, HEL)
        value = 100.0 if (local.hour, local.minute, local.fold) == (3, 30, 0) else 40.0
        samples.append((t, value if local.fold == 0 or local.hour != 3 else 0.0))
    per_day = slot_means(samples, HEL, 15)
    assert len(every_15_min(dst, 0)) == 100  # 25 hours
    assert per_day[dst][14] == 50.0  # (100 + 0) / 2
    assert per_day[dst][13] == 20.0  # (40 + 0) / 2
    values, weeks = typical_of(samples, HEL, D(2026, 11, 1), 6, 4, 15)
    assert weeks == 4 and len(values) == 96
    assert values[0] == 35.0  # median of 40, 20, 30, 40 -> (30 + 40) / 2
    assert values[14] == 35.0  # median of 50, 20, 30, 40


def test_dst_spring_the_missing_hour_comes_from_the_other_weeks() -> None:
    """2026-03-29: 03:00 EET -> 04:00 EEST, a 23-hour Sunday without 03:xx."""
    sundays = [D(2026, 3, 29), D(2026, 3, 22), D(2026, 3, 15)]
    samples = [s for k, day in enumerate(sundays) for s in every_15_min(day, float(k + 1))]
    per_day = slot_means(samples, HEL, 15)
    assert per_day[sundays[0]][12:16] == [None] * 4
    assert per_day[sundays[0]][11] == 1.0 and per_day[sundays[0]][16] == 1.0
    values, weeks = typical_of(samples, HEL, D(2026, 4, 2), 6, 3, 15)
    assert weeks == 3
    assert values[12:16] == [2.5] * 4  # the two other Sundays
    assert values[11] == 2.0 and values[16] == 2.0


def test_missing_days_and_slots() -> None:
    mondays = [D(2026, 11, 23), D(2026, 11, 16), D(2026, 11, 9), D(2026, 11, 2)]
    samples = every_15_min(mondays[0], 10.0) + every_15_min(mondays[2], 30.0)
    samples += [(ts(mondays[3], 12), 50.0)]  # one sample only, one slot
    values, weeks = typical_of(samples, HEL, D(2026, 11, 25), 0, 4, 15)
    assert weeks == 3  # 16 November has nothing
    assert values[48] == 30.0  # median of 10, 30, 50
    assert values[0] == 20.0  # median of 10, 30
    # a Monday outside the last four does not count
    older = every_15_min(D(2026, 10, 26), 1000.0)
    assert typical_of(samples + older, HEL, D(2026, 11, 25), 0, 4, 15) == (values, 3)
    assert typical_of([], HEL, D(2026, 11, 25), 0, 4, 15) == ([None] * 96, 0)


def test_carried_levels_fill_quiet_buckets_of_days_with_data() -> None:
    """Bucket answers (start, last value or None) -> the level of every bucket: a quiet
    bucket has the level carried in, also across midnight; a day with no point of its own
    gives nothing; buckets before the first point give nothing."""
    mon, tue, wed = D(2026, 11, 23), D(2026, 11, 24), D(2026, 11, 25)
    rows: list[tuple[float, float | None]] = [
        (ts(mon, 22, 0), None),
        (ts(mon, 22, 15), 7.0),
        (ts(mon, 22, 30), None),
        (ts(tue, 0, 0), None),
        (ts(tue, 3, 0), 0.0),
        (ts(tue, 3, 15), None),
        (ts(wed, 0, 0), None),  # Wednesday has nothing of its own
        (ts(wed, 0, 15), None),
    ]
    assert carried_levels(rows, HEL, [mon, tue, wed]) == [
        (ts(mon, 22, 15), 7.0),
        (ts(mon, 22, 30), 7.0),
        (ts(tue, 0, 0), 7.0),
        (ts(tue, 3, 0), 0.0),
        (ts(tue, 3, 15), 0.0),
    ]
    # Monday only as the day before: it carries its level into Tuesday, is not a sample
    assert carried_levels(rows, HEL, [tue]) == [
        (ts(tue, 0, 0), 7.0),
        (ts(tue, 3, 0), 0.0),
        (ts(tue, 3, 15), 0.0),
    ]


def test_peak_slot() -> None:
    def typical(values: list[float | None]) -> Typical:
        return Typical("s", "z", 0, 60, values, 1)

    assert typical([None, 1.0, 5.0, 5.0, 2.0] + [None] * 19).peak_slot == 2
    assert typical([0.0] * 24).peak_slot is None  # a closed day has no peak
    assert typical([None] * 24).peak_slot is None
    assert typical([None] * 24).slot_time(23) == dt.time(23, 0)
    assert Typical("s", "z", 0, 15, [None] * 96, 0).slot_time(67) == dt.time(16, 45)


# --- against InfluxDB ----------------------------------------------------------------


def noon(h: History, day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(12), tzinfo=h.site.tz).timestamp()


@pytest.fixture(scope="module")
def event_history(history: History) -> History:
    """`occupancy_history` of the simulated days. The backfill's `occupancy` points are
    at event time (it replays the days in order), so, when the simulator has not written
    `occupancy_history` itself, the same counts at the same times are what the history
    worker would write for them."""
    q = InfluxQuery(history.server.url)
    site = history.site.site
    have = q.rows(f'SELECT count("count") FROM "{OCCUPANCY_HISTORY}" WHERE "site" = \'{site}\'')
    if not have or not have[0]["count"]:
        rows = q.rows(f'SELECT "count", "zone" FROM "{OCCUPANCY}" WHERE "site" = \'{site}\'')
        lines = [
            occupancy_history_point(site, r["zone"], int(r["count"]), 0, int(r["time"])).line()
            for r in rows
        ]
        for i in range(0, len(lines), 5000):
            history.influx.write(lines[i : i + 5000])
        assert len(
            q.rows(f'SELECT "count" FROM "{OCCUPANCY_HISTORY}" WHERE "site" = \'{site}\'')
        ) == len(rows)
    return history


def expected_typical(
    h: History, zone: str, weekday: int, weeks: int, step_min: int
) -> tuple[list[float | None], int]:
    """The truth from the raw points, without InfluxDB's buckets: for each slot of each
    wanted day with points of its own, the level at the slot's end (the last point before
    it, from the day before the oldest day on), the repeated hour of a 25-hour day
    averaged; then the median over the days."""
    tz = h.site.tz
    days = same_weekdays(h.today, weekday, weeks)
    start = dt.datetime.combine(min(days) - dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(max(days) + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    rows = InfluxQuery(h.server.url).rows(
        f'SELECT "count" FROM "{OCCUPANCY_HISTORY}" WHERE "site" = \'{h.site.site}\' '
        f"AND \"zone\" = '{zone}' "
        f"AND time >= {int(start.timestamp())}s AND time < {int(end.timestamp())}s"
    )
    times = [r["time"] for r in rows]  # ns, ascending
    counts = [float(r["count"]) for r in rows]
    n = 1440 // step_min
    per_day: list[list[float | None]] = []
    for day in days:
        day_start = dt.datetime.combine(day, dt.time(0), tzinfo=tz).timestamp()
        day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
        lo, hi = int(day_start * 1e9), int(day_end.timestamp() * 1e9)
        if not any(lo <= t < hi for t in times):
            continue
        slots: list[list[float]] = [[] for _ in range(n)]
        for b in range(int(day_start), int(day_end.timestamp()), step_min * 60):
            i = bisect_left(times, (b + step_min * 60) * 1_000_000_000)
            if i == 0:
                continue
            local = dt.datetime.fromtimestamp(b, tz)
            slots[(local.hour * 60 + local.minute) // step_min].append(counts[i - 1])
        per_day.append([statistics.fmean(v) if v else None for v in slots])
    if not per_day:
        return [None] * n, 0
    return median_by_slot(per_day), len(per_day)


@pytest.mark.services
def test_forecaster_against_influxdb(event_history: History) -> None:
    """Ten simulated days before `today`: yesterday's weekday has two weeks of data,
    today's one. The Forecaster's buckets (GROUP BY time in the site's time zone, the
    level carried through quiet buckets) give what the raw `occupancy_history` points
    give by hand."""
    h = event_history
    clock = [noon(h, h.today)]
    f = Forecaster(h.influx, h.site, cache_s=60.0, now=lambda: clock[0])
    yesterday = (h.today - dt.timedelta(days=1)).weekday()
    t = f.typical("library", yesterday)
    assert (t.site, t.zone, t.weekday, t.step_min, t.weeks) == (
        "iso-omena",
        "library",
        yesterday,
        15,
        2,
    )
    assert len(t.values) == 96

    expected, weeks = expected_typical(h, "library", yesterday, 4, 15)
    assert weeks == 2
    assert t.values == pytest.approx(expected)
    # a time-weighted level: every slot of a day with data has one (none left empty)
    assert all(v is not None and v >= 0 for v in t.values)

    weekday_open = h.site.hours_on(h.today - dt.timedelta(days=1), "library")
    if weekday_open is not None:
        peak = t.peak_slot
        assert peak is not None
        assert weekday_open[0] <= t.slot_time(peak) < weekday_open[1]
        assert max(v or 0 for v in t.values) <= 350 * 1.5

    today = f.typical("centre")
    assert today.weekday == h.today.weekday() and today.weeks == 1
    assert today.values == pytest.approx(expected_typical(h, "centre", today.weekday, 4, 15)[0])

    # cached until cache_s has passed
    assert f.typical("library", yesterday) is t
    clock[0] += 61
    again = f.typical("library", yesterday)
    assert again is not t and again == t

    week_ago = Forecaster(h.influx, h.site, weeks=1, step_min=60, now=lambda: clock[0])
    hourly = week_ago.typical("library", yesterday)
    assert hourly.weeks == 1 and len(hourly.values) == 24
    assert hourly.values == pytest.approx(expected_typical(h, "library", yesterday, 1, 60)[0])
    with pytest.raises(KeyError):
        f.typical("no-such-zone")
    with pytest.raises(ValueError):
        Forecaster(h.influx, h.site, step_min=7)
