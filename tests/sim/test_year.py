"""A simulated year of Iso Omena backfilled into a real InfluxDB: the annual visits per
zone from `rollups.visits_daily` (local calendar days) equal those derived here, by a
door algebra written independently from the zone tree, from the raw `crossing` points;
and the clocks' changes give 23- and 25-hour days.

Which days. A backfilled day costs about 0.3 s whatever the crowd (the minute-by-minute
live occupancy of 11 zones, stray glitches on 13 idle doors, a reset window's history
queries), so 365 days do not fit in a test even with a small crowd: the full year with
the usual crowd is `benchmarks/year.py`. Here the year is four stretches that hold what
can go wrong: both ends of the calendar year with the day before and after it, and a
week around each change of the clocks (2026-03-29, 23 hours; 2026-10-25, 25 hours).
The crowd is small and round the clock (`ignore_hours`), so that there is traffic
across every midnight and every reset (03:00, the hour the clocks change): a day or hour
put on the wrong side of a boundary changes the figures.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from footfall_collector.config import InfluxSettings
from footfall_collector.influx import InfluxV1
from footfall_collector.schema import CROSSING, VISITS_DAILY, VISITS_HOURLY, ZONE_FLOW, rollup_from
from footfall_contract.site import Site, load_site
from footfall_sim.backfill import backfill
from footfall_sim.crowd import CROWD
from footfall_sim.localservices import Influx
from footfall_sim.runner import agent_ids
from footfall_sim.visitors import ModelParams, VisitorModel
from tests.support.collector import InfluxQuery

pytestmark = pytest.mark.services

ISO = Path(__file__).parents[2] / "deploy" / "sites" / "iso-omena.yaml"
YEAR = 2026
SPRING = dt.date(2026, 3, 29)  # 03:00 -> 04:00 in Helsinki
AUTUMN = dt.date(2026, 10, 25)  # 04:00 -> 03:00
STRETCHES = [  # (first day, last day)
    (dt.date(2025, 12, 31), dt.date(2026, 1, 3)),
    (dt.date(2026, 3, 26), dt.date(2026, 4, 1)),
    (dt.date(2026, 10, 22), dt.date(2026, 10, 28)),
    (dt.date(2026, 12, 30), dt.date(2027, 1, 1)),
]
VISITS_PER_DAY = 400.0

Counts = dict[str, list[int]]  # zone -> [entries, exits]


def local_midnight_ms(site: Site, day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(0), tzinfo=site.tz).timestamp() * 1000)


def days_of(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def door_algebra(site: Site) -> dict[tuple[str, str], tuple[set[str], set[str]]]:
    """(door, dir) -> (zones entered, zones left), from the zone tree: through a door
    inwards one enters every zone that holds its inside and not its outside."""
    parent = {z.id: z.parent for z in site.zones}

    def holders(zone: str | None) -> set[str]:
        out: set[str] = set()
        while zone is not None:
            out.add(zone)
            zone = parent[zone]
        return out

    algebra = {}
    for d in site.doors:
        inward = holders(d.inside) - holders(d.outside)
        outward = holders(d.outside) - holders(d.inside)
        algebra[(d.id, "in")] = (inward, outward)
        algebra[(d.id, "out")] = (outward, inward)
    return algebra


def rows_by_zone(rows: list[dict[str, object]], field: str) -> dict[str, int]:
    return {str(r["zone"]): int(str(r[field])) for r in rows}


@pytest.mark.timeout(300)
def test_a_year_of_visits_from_rollups_equals_the_raw_crossings(influx: Influx) -> None:
    site = load_site(ISO)
    tz = site.tz
    # Raw events kept for ever: the test's year stays writable in the years to come.
    db = InfluxV1(InfluxSettings(url=influx.url, database="footfall", retention_duration="INF"))
    model = VisitorModel(site, ModelParams(visits_per_day=VISITS_PER_DAY, ignore_hours=True))
    agent_of = agent_ids([d.id for d in site.doors])
    detected: Counter[tuple[str, str]] = Counter()
    for first, last in STRETCHES:
        days = (last - first).days + 1
        stats = backfill(
            model, db, days, 7, agent_of, CROWD, lambda _m: None, last + dt.timedelta(days=1)
        )
        assert stats.days == days and stats.history_windows == days + 1
        for door, c in stats.detected.items():
            detected.update({(door, k): n for k, n in c.items() if n})
    db.close()
    q = InfluxQuery(influx.url)
    where = f"\"site\" = '{site.site}'"
    stored = q.rows(f'SELECT count("count") FROM "{CROSSING}" WHERE {where} GROUP BY door, dir')
    assert {(r["door"], r["dir"]): r["count"] for r in stored} == dict(detected)

    # The truth: per local day, the stored crossings through the door algebra.
    algebra = door_algebra(site)
    truth: dict[dt.date, Counts] = {}
    for first, last in STRETCHES:
        for day in days_of(first, last):
            a = local_midnight_ms(site, day)
            b = local_midnight_ms(site, day + dt.timedelta(days=1))
            per_door = q.rows(
                f'SELECT count("count") FROM "{CROSSING}" WHERE {where} '
                f"AND time >= {a}ms AND time < {b}ms GROUP BY door, dir"
            )
            counts: Counts = {z.id: [0, 0] for z in site.zones}
            for r in per_door:
                entered, left = algebra[(r["door"], r["dir"])]
                for z in entered:
                    counts[z][0] += r["count"]
                for z in left:
                    counts[z][1] += r["count"]
            truth[day] = counts
    # Traffic on the days just outside the year, so its bounds are tested.
    for outside in (dt.date(YEAR - 1, 12, 31), dt.date(YEAR + 1, 1, 1)):
        assert truth[outside]["centre"][0] > 100

    # Every day of the year that was simulated: its daily row per zone is the truth.
    year_a = local_midnight_ms(site, dt.date(YEAR, 1, 1))
    year_b = local_midnight_ms(site, dt.date(YEAR + 1, 1, 1))
    daily = q.rows(
        f'SELECT "entries", "exits", "zone" FROM {rollup_from(VISITS_DAILY)} WHERE {where} '
        f"AND time >= {year_a}ms AND time < {year_b}ms"
    )
    stored_days: dict[dt.date, Counts] = defaultdict(dict)
    for r in daily:
        at = dt.datetime.fromtimestamp(r["time"] / 1e9, tz)
        assert at.time() == dt.time(0), at  # at local midnight
        stored_days[at.date()][r["zone"]] = [r["entries"], r["exits"]]
    for day, counts in truth.items():
        if day.year == YEAR:
            assert stored_days[day] == counts, day
    # ... and the year's visits per zone: rollups against the raw crossings.
    annual_truth = {z.id: 0 for z in site.zones}
    for day, counts in truth.items():
        if day.year == YEAR:
            for z, (entries, _exits) in counts.items():
                annual_truth[z] += entries
    annual = q.rows(
        f'SELECT sum("entries") FROM {rollup_from(VISITS_DAILY)} WHERE {where} '
        f"AND time >= {year_a}ms AND time < {year_b}ms GROUP BY zone"
    )
    assert rows_by_zone(annual, "sum") == annual_truth
    assert annual_truth["centre"] > 5000 and min(annual_truth.values()) > 0
    flow = q.rows(
        f'SELECT sum("count") FROM "{ZONE_FLOW}" WHERE {where} AND "dir" = \'in\' '
        f"AND time >= {year_a}ms AND time < {year_b}ms GROUP BY zone"
    )
    assert rows_by_zone(flow, "sum") == annual_truth

    # The clocks' changes: 23 and 25 local hours, each an hourly row for every zone, and
    # the hours add up to the day.
    for day, hours in ((SPRING, 23), (AUTUMN, 25), (SPRING - dt.timedelta(days=1), 24)):
        a = local_midnight_ms(site, day)
        b = local_midnight_ms(site, day + dt.timedelta(days=1))
        assert (b - a) // 3_600_000 == hours
        hourly = q.rows(
            f'SELECT count("entries"), sum("entries"), sum("exits") '
            f"FROM {rollup_from(VISITS_HOURLY)} WHERE {where} "
            f"AND time >= {a}ms AND time < {b}ms GROUP BY zone"
        )
        assert rows_by_zone(hourly, "count") == {z.id: hours for z in site.zones}, day
        sums = {str(r["zone"]): [r["sum"], r["sum_1"]] for r in hourly}
        assert sums == truth[day], day
