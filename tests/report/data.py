"""Known data for the report tests: crossings of a month at Iso Omena, the zone visits
they make by the door algebra (counted here by hand, hour by hour on the site's clock),
and the rollup rows the history worker would write for them, into a real InfluxDB.

The truth a test checks against is computed here from the crossings, independently of
footfall_report."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from footfall_collector import schema
from footfall_collector.points import Point
from footfall_contract.site import Site, load_site
from tests.support.influxdata import write_lines

ROOT = Path(__file__).resolve().parents[2]
ISO_OMENA = ROOT / "deploy" / "sites" / "iso-omena.yaml"
UTC = dt.UTC


def ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def local_hours(day: dt.date, site: Site) -> list[int]:
    """Every real hour of a local day (23 or 25 on DST days), as epoch ms of its start
    (not local datetimes: the two 03:00 of an autumn DST day compare equal)."""
    start = ms(dt.datetime.combine(day, dt.time(0), tzinfo=site.tz))
    end = ms(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=site.tz))
    return list(range(start, end, 3_600_000))


def local_day(t_ms: int, site: Site) -> dt.date:
    return dt.datetime.fromtimestamp(t_ms / 1000, site.tz).date()


@dataclass
class Hour:
    entries: int = 0
    exits: int = 0
    estimated: bool = False


@dataclass
class Scenario:
    """Crossings and rollups of `days` for every zone of `site`."""

    site: Site
    days: list[dt.date]
    crossings: list[tuple[int, str, str]] = field(default_factory=list)
    """(time ms, door, dir), inside the days."""
    outside_crossings: list[tuple[int, str, str]] = field(default_factory=list)
    """Just before and just after the days: must not count."""
    hours: dict[str, dict[int, Hour]] = field(default_factory=dict)
    """zone -> local hour start (epoch ms) -> figures."""
    missing: set[tuple[str, dt.date]] = field(default_factory=set)
    """(zone, day) without rollup rows ("no data")."""
    extra_daily: list[tuple[str, dt.date, int, int]] = field(default_factory=list)
    """(zone, day, entries, estimated hours) rows of comparison periods."""

    # -- the truth ---------------------------------------------------------------------

    def visits(self, zone: str, days: list[dt.date] | None = None) -> int:
        wanted = set(days or self.days)
        return sum(
            h.entries
            for start, h in self.hours[zone].items()
            if self.day(start) in wanted and (zone, self.day(start)) not in self.missing
        )

    def day(self, t_ms: int) -> dt.date:
        return local_day(t_ms, self.site)

    def day_visits(self, zone: str, day: dt.date) -> int:
        return sum(h.entries for s, h in self.hours[zone].items() if self.day(s) == day)

    def estimated_hours(self, zone: str) -> int:
        return sum(
            h.estimated
            for s, h in self.hours[zone].items()
            if (zone, self.day(s)) not in self.missing
        )

    def door_counts(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for _, door, direction in self.crossings:
            counts[(door, direction)] += 1
        return dict(counts)

    def peak(self, zone: str) -> tuple[int, int]:
        """(peak, peak_at ms) as written: the hourly row with the most entries."""
        best = (-1, 0)
        for start, h in sorted(self.hours[zone].items()):
            if (zone, self.day(start)) in self.missing:
                continue
            if h.entries > best[0]:
                best = (h.entries, start + 60_000)
        return best

    # -- rollups as the history worker writes them ----------------------------------------

    def hourly_points(self) -> list[Point]:
        points = []
        for zone, hours in self.hours.items():
            for start, h in hours.items():
                if (zone, self.day(start)) in self.missing:
                    continue
                points.append(
                    schema.visits_point(
                        schema.VISITS_HOURLY,
                        self.site.site,
                        zone,
                        start,
                        entries=h.entries,
                        exits=h.exits,
                        peak=h.entries,
                        peak_at_ms=start + 60_000,
                        estimated=int(h.estimated),
                    )
                )
        return points

    def daily_points(self) -> list[Point]:
        points = []
        for zone, hours in self.hours.items():
            by_day: dict[dt.date, list[tuple[int, Hour]]] = defaultdict(list)
            for start, h in hours.items():
                by_day[self.day(start)].append((start, h))
            for day, items in by_day.items():
                if (zone, day) in self.missing:
                    continue
                top = max(items, key=lambda item: (item[1].entries, -item[0]))
                points.append(
                    schema.visits_point(
                        schema.VISITS_DAILY,
                        self.site.site,
                        zone,
                        ms(dt.datetime.combine(day, dt.time(0), tzinfo=self.site.tz)),
                        entries=sum(h.entries for _, h in items),
                        exits=sum(h.exits for _, h in items),
                        peak=top[1].entries,
                        peak_at_ms=top[0] + 60_000,
                        estimated=sum(h.estimated for _, h in items),
                    )
                )
        for zone, day, entries, estimated in self.extra_daily:
            points.append(
                schema.visits_point(
                    schema.VISITS_DAILY,
                    self.site.site,
                    zone,
                    ms(dt.datetime.combine(day, dt.time(0), tzinfo=self.site.tz)),
                    entries=entries,
                    exits=entries,
                    peak=entries // 10,
                    peak_at_ms=ms(dt.datetime.combine(day, dt.time(12), tzinfo=self.site.tz)),
                    estimated=estimated,
                )
            )
        return points

    def crossing_points(self) -> list[Point]:
        return [
            schema.crossing_point(self.site.site, door, direction, "agent-1", t * 1_000_000 + i)
            for i, (t, door, direction) in enumerate(self.crossings + self.outside_crossings)
        ]


def build_month(
    site: Site,
    year: int,
    month: int,
    per_open_hour: int = 6,
    seed: int = 7,
    extra: list[tuple[int, str, str]] | None = None,
) -> Scenario:
    """Random crossings in the open hours of every door's inside zone, one through Kela's
    door on the first Sunday (closed) and `extra` ones; the zones' hourly entries and
    exits by the door algebra."""
    rng = random.Random(seed)
    first = dt.date(year, month, 1)
    days = []
    d = first
    while d.month == month:
        days.append(d)
        d += dt.timedelta(days=1)
    sc = Scenario(site, days)
    for zone in site.zones:
        sc.hours[zone.id] = {h: Hour() for day in days for h in local_hours(day, site)}
    for day in days:
        for hour_start in local_hours(day, site):
            when = dt.datetime.fromtimestamp(hour_start / 1000, UTC)
            for door in site.doors:
                if not site.is_open(when, door.inside):
                    continue
                for _ in range(rng.randint(0, per_open_hour)):
                    direction = rng.choice(("in", "in", "out"))
                    t = hour_start + rng.randrange(3_600_000)
                    sc.crossings.append((t, door.id, direction))
    # counted on a closed day: someone let into Kela on a Sunday
    sunday = next(d for d in days if d.weekday() == 6)
    noon = dt.datetime.combine(sunday, dt.time(12, 5), tzinfo=site.tz)
    sc.crossings.append((ms(noon), "kela-door", "in"))
    sc.crossings += extra or []
    for t, door_id, direction in sc.crossings:
        entered, left = site.door_effects(door_id)
        if direction == "out":
            entered, left = left, entered
        hour_start = t - t % 3_600_000  # Helsinki's offsets are whole hours
        for z in entered:
            sc.hours[z][hour_start].entries += 1
        for z in left:
            sc.hours[z][hour_start].exits += 1
    # one crossing a millisecond before the month and one at its end: not in the month
    start = dt.datetime.combine(first, dt.time(0), tzinfo=site.tz)
    end = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(0), tzinfo=site.tz)
    sc.outside_crossings = [(ms(start) - 1, "library-mall", "in"), (ms(end), "library-mall", "in")]
    return sc


def iso_omena() -> Site:
    return load_site(ISO_OMENA)


def admin(url: str, q: str) -> None:
    import json

    import urllib3

    r = urllib3.PoolManager().request("POST", f"{url}/query", fields={"q": q})
    assert r.status == 200, r.data
    body = json.loads(r.data)
    assert "error" not in body["results"][0], body


def prepare_database(url: str) -> None:
    admin(url, 'CREATE DATABASE "footfall"')
    admin(
        url,
        f'CREATE RETENTION POLICY "{schema.ROLLUP_RP}" ON "footfall" DURATION INF REPLICATION 1',
    )


def load(url: str, *scenarios: Scenario) -> None:
    """The database (rollups kept for ever), then each scenario's rollups and crossings."""
    prepare_database(url)
    for sc in scenarios:
        rollups = sc.hourly_points() + sc.daily_points()
        write_lines(url, [p.line() for p in rollups], rp=schema.ROLLUP_RP, create=False)
        write_lines(url, [p.line() for p in sc.crossing_points()], create=False)
