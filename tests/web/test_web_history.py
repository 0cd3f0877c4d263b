"""The history API on event-time measures against a real InfluxDB: two weeks of known
door events around the autumn DST change (2026-10-25, a 25-hour Sunday in Helsinki),
written as the collector and the history worker would (`zone_flow`, `occupancy_history`
with a count-0 point at each reset), and every interval checked against the truth
computed here from the events: level at the end, highest level, entries."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import httpx
import pytest

from footfall_collector.points import Point
from footfall_collector.schema import OCCUPANCY
from footfall_contract.hours import window_of
from footfall_contract.timefmt import format_ts
from footfall_sim.localservices import Influx, Mosquitto
from tests.support.influxdata import create_database, replay_door, reset_times, write_lines
from tests.support.web import ALWAYS_OPEN, board, site_with_hours

pytestmark = pytest.mark.services

SITE = site_with_hours(ALWAYS_OPEN)
TZ = SITE.tz
ZONE = "library"
DOOR = "library-mall"  # from outside straight into the library (and so the centre)
FIRST, LAST = dt.date(2026, 10, 19), dt.date(2026, 11, 1)  # Monday .. Sunday, two weeks
DST_DAY = dt.date(2026, 10, 25)
HISTORY = "/api/v1/sites/test-site/zones/library/history"


def local_ms(day: dt.date, hour: int = 0, minute: int = 0) -> int:
    return int(dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ).timestamp() * 1000)


def midnight(day: dt.date) -> int:
    return local_ms(day)


@dataclass(frozen=True)
class Truth:
    """The library's occupancy_history points (ns, count) and its entries (ns)."""

    times: list[int]
    counts: list[int]
    entries: list[int]

    def interval(self, start_ms: int, end_ms: int) -> dict[str, Any] | None:
        """What the API must say for [start, end): the level at the end (the last point
        before it), the highest level held in it (the level at its start, from the last
        point at or before it, and every point inside), the entries in it."""
        a, b = start_ms * 1_000_000, end_ms * 1_000_000
        i, j = bisect_right(self.times, a), bisect_left(self.times, b)
        start_level = self.counts[i - 1] if i else None
        end_level = self.counts[j - 1] if j else None
        held = [c for c in [start_level, *self.counts[i:j]] if c is not None]
        visits = bisect_left(self.entries, b) - bisect_left(self.entries, a)
        if end_level is None and not visits:
            return None
        return {
            "t": format_ts(start_ms),
            "count": end_level,
            "max": max(held) if held else None,
            "visits": visits,
        }

    def intervals(self, bounds: list[int]) -> list[dict[str, Any]]:
        out = [self.interval(a, b) for a, b in pairwise(bounds)]
        return [p for p in out if p is not None]


def door_events() -> list[tuple[int, str]]:
    """(ms, "in"/"out") through the library's street door: visits by day, a few night
    visitors who stay past the reset (so the reset shows), exits nobody was counted in for
    (drift), and an entry at 01:30 on the DST Sunday (the 24th in UTC, the 25th here)."""
    rng = random.Random(2026)
    events: list[tuple[int, str]] = []
    day = FIRST
    while day <= LAST:
        for _ in range(rng.randint(15, 35)):
            t_in = local_ms(day, 8) + rng.randrange(12 * 3600 * 1000)
            events.append((t_in, "in"))
            events.append((t_in + rng.randrange(5, 180) * 60_000, "out"))
        if day.day in (21, 25, 29):
            events.append((local_ms(day, 1, 30), "in"))  # stays until the reset
        if day.weekday() == 2:
            events.append((local_ms(day, 6, 45), "out"))  # nobody in: drift
        day += dt.timedelta(days=1)
    return sorted(events)


def write_history(url: str) -> Truth:
    """Writes what the collector (zone_flow) and the history worker (occupancy_history,
    replayed per reset window from 0, never below 0) would; returns the truth."""
    # from 2026-10-19 03:00
    resets = reset_times(
        SITE, midnight(FIRST) + 4 * 3600 * 1000, midnight(LAST + dt.timedelta(days=1))
    )
    replay = replay_door(SITE, DOOR, ZONE, door_events(), resets)
    # the live series says something else (processing time): never read for history
    live = [
        Point(OCCUPANCY, {"site": SITE.site, "zone": ZONE}, {"count": 999}, t).line()
        for t in replay.crossings
    ]
    write_lines(url, replay.lines + live)
    return Truth([t for t, _ in replay.levels], [c for _, c in replay.levels], replay.entries)


@pytest.fixture
def served(mosquitto: Mosquitto, influx: Influx) -> Iterator[tuple[httpx.Client, Truth]]:
    truth = write_history(influx.url)
    with board(mosquitto.port, influx.url, [SITE]) as (_server, http):
        yield http, truth


def get(http: httpx.Client, **params: str) -> dict[str, Any]:
    r = http.get(HISTORY, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def rfc(ms: int) -> str:
    return format_ts(ms)


def days(first: dt.date, last: dt.date) -> list[int]:
    """Local midnights from `first` to the one after `last`."""
    n = (last - first).days + 2
    return [midnight(first + dt.timedelta(days=k)) for k in range(n)]


def test_days_are_helsinki_days_dst_included(served: tuple[httpx.Client, Truth]) -> None:
    http, truth = served
    body = get(
        http, **{"from": rfc(midnight(FIRST)), "to": rfc(midnight(LAST) + 86_400_000)}, every="1d"
    )
    assert body["timezone"] == "Europe/Helsinki" and body["every_s"] == 86400
    bounds = days(FIRST, LAST)
    assert body["points"] == truth.intervals(bounds)
    starts = [p["t"] for p in body["points"]]
    # local midnight: 21:00 UTC in summer time, 22:00 UTC from the DST Sunday on (UTC days,
    # the old behaviour, would say 00:00)
    assert starts[5:8] == [
        "2026-10-23T21:00:00.000Z",
        "2026-10-24T21:00:00.000Z",  # Sunday 25 October, 25 hours
        "2026-10-25T22:00:00.000Z",
    ]
    assert bounds[7] - bounds[6] == 25 * 3_600_000
    sunday = body["points"][6]
    # the 01:30 entry is Sunday's here (it is the 24th in UTC)
    night = local_ms(DST_DAY, 1, 30) * 1_000_000
    assert any(night <= e < night + 1_000_000 for e in truth.entries)
    assert sunday["visits"] == sum(
        bounds[6] * 10**6 <= e < bounds[7] * 10**6 for e in truth.entries
    )
    utc_sunday = truth.interval(
        int(dt.datetime(2026, 10, 25, tzinfo=dt.UTC).timestamp() * 1000),
        int(dt.datetime(2026, 10, 26, tzinfo=dt.UTC).timestamp() * 1000),
    )
    assert utc_sunday is not None and utc_sunday["visits"] != sunday["visits"]
    # every level is the replayed one, never the live series' 999
    assert all(p["count"] is not None and p["count"] < 999 for p in body["points"])
    assert sum(p["visits"] for p in body["points"]) == len(truth.entries)


def test_hours_of_the_dst_day_and_the_level_carried(served: tuple[httpx.Client, Truth]) -> None:
    http, truth = served
    start, end = midnight(DST_DAY), midnight(DST_DAY + dt.timedelta(days=1))
    body = get(http, **{"from": rfc(start), "to": rfc(end)}, every="1h")
    hours = list(range(start, end + 1, 3_600_000))
    assert len(hours) - 1 == 25
    assert body["points"] == truth.intervals(hours)
    assert len(body["points"]) == 25
    by_t = {p["t"]: p for p in body["points"]}
    # the night visitor (01:30) is in until the reset at 03:00 (the first of the two):
    # the 02:00 hour ends with 1, the reset hour holds 0 from its start
    two = by_t[rfc(local_ms(DST_DAY, 2))]
    reset_hour = by_t[rfc(window_of(SITE, local_ms(DST_DAY, 12)).start_ms)]
    assert (two["count"], two["max"]) == (1, 1)
    assert (reset_hour["count"], reset_hour["max"], reset_hour["visits"]) == (0, 0, 0)
    # hours without a point of their own carry the level in
    quiet = [
        (a, p)
        for a, p in zip(hours, body["points"], strict=False)
        if bisect_left(truth.times, a * 10**6) == bisect_left(truth.times, (a + 3_600_000) * 10**6)
    ]
    assert len(quiet) >= 5  # the night
    for a, p in quiet:
        level = truth.counts[bisect_right(truth.times, a * 10**6) - 1]
        assert p["count"] == p["max"] == level and p["visits"] == 0

    # from the middle of a quiet stretch: the level comes from before `from`
    mid = local_ms(DST_DAY, 23, 20)
    body = get(http, **{"from": rfc(mid), "to": rfc(mid + 2 * 3_600_000)}, every="10m")
    expected = truth.intervals(list(range(mid, mid + 2 * 3_600_000 + 1, 600_000)))
    assert body["points"] == expected and expected[0]["count"] is not None


def test_weeks_from_monday_and_groups_of_days(served: tuple[httpx.Client, Truth]) -> None:
    http, truth = served
    end = midnight(LAST + dt.timedelta(days=1))
    body = get(http, **{"from": rfc(midnight(FIRST) + 3_600_000), "to": rfc(end)}, every="1w")
    mondays = [midnight(FIRST), midnight(FIRST + dt.timedelta(days=7)), end]
    assert FIRST.weekday() == 0
    # the first week starts at its Monday, 169 hours long (the DST hour); the data before
    # `from` is not in it
    assert mondays[1] - mondays[0] == 169 * 3_600_000
    first_week = truth.interval(mondays[0] + 3_600_000, mondays[1])
    assert first_week is not None
    first_week["t"] = rfc(mondays[0])
    assert body["points"] == [first_week, *truth.intervals(mondays[1:])]
    assert body["points"][0]["t"] == "2026-10-18T21:00:00.000Z"  # Monday 00:00 EEST

    two = get(http, **{"from": rfc(midnight(dt.date(2026, 10, 24))), "to": rfc(end)}, every="2d")
    # pairs of days from the day of `from`; the last pair has one day of the range
    bounds = [*days(dt.date(2026, 10, 24), LAST)[::2], end]
    assert two["points"] == truth.intervals(bounds)
    assert len(two["points"]) == 5 and two["points"][0]["t"] == "2026-10-23T21:00:00.000Z"


def test_csv_has_the_same_figures(served: tuple[httpx.Client, Truth]) -> None:
    http, truth = served
    params = {"from": rfc(midnight(FIRST)), "to": rfc(midnight(LAST) + 86_400_000), "every": "1d"}
    r = http.get(HISTORY, params={**params, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "test-site-library-history.csv" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["t", "local", "count", "max", "visits"]
    expected = truth.intervals(days(FIRST, LAST))
    assert len(rows) - 1 == len(expected) == 14
    for row, p in zip(rows[1:], expected, strict=True):
        assert row[0] == p["t"]
        assert [int(row[2]), int(row[3]), int(row[4])] == [p["count"], p["max"], p["visits"]]
        local = dt.datetime.fromisoformat(row[1])
        assert (local.hour, local.minute) == (0, 0)  # local midnight, with its offset
    assert rows[7][1] == "2026-10-25T00:00:00+03:00" and rows[8][1] == "2026-10-26T00:00:00+02:00"
    assert http.get(HISTORY, params=params).json()["points"] == expected


def test_bad_parameters_are_400_naming_them(mosquitto: Mosquitto, influx: Influx) -> None:
    create_database(influx.url)
    with board(mosquitto.port, influx.url, [SITE], timeout_s=10) as (_server, http):
        for params, message in [
            ({"from": "0001-01-01T00:00:00+23:59"}, "from is out of range"),
            ({"to": "9999-12-31T23:59:59-23:59"}, "to is out of range"),
            ({"from": "1969-12-31T23:59:59Z"}, "from is out of range"),
            ({"from": "2300-01-01T00:00:00Z"}, "from is out of range"),
            ({"from": "-99999d"}, "from is out of range"),
            ({"from": "2026-02-30T00:00:00Z"}, "from must be an RFC 3339"),
            ({"to": "2026-10-25T00:00:00+25:00"}, "to must be an RFC 3339"),
            ({"from": "-2d", "every": "36h"}, "every of a day or more must be whole days"),
            ({"format": "xml"}, "format must be one of json, csv"),
        ]:
            r = http.get(HISTORY, params=params)
            assert r.status_code == 400, (params, r.text)
            assert message in r.json()["detail"], (params, r.text)
        # no data yet: an empty answer, not an error
        assert http.get(HISTORY).json()["points"] == []
