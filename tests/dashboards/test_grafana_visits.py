"""The dashboards' visit panels against a known set of crossings.

Crossings of Iso Omena (routes through its doors, a burst, two agents in one
nanosecond, crossings on an hour and a midnight, at night before the reset, in the hour
that repeats when the clocks go back) are written as the collector writes them: the
`crossing` and its `zone_flow` points (`Site.door_effects`) in one request. The history
worker's own rebuild then writes `occupancy_history` and the rollups; the days before
October get daily rollups written directly. The same data goes to three databases
"published" differently: live one by one in order; per agent in backlog batches, newest
batch first and one day a week late, with the worker run midway too; shuffled in random
batches with re-deliveries. Every panel query of every dashboard, with Grafana's macros
and variables substituted, must give the same rows in all three, and the visit panels
exactly the numbers counted here from the crossings by hand (door rule of docs/spec.md
§3, not the door algebra the points were made with)."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from footfall_collector.config import InfluxSettings
from footfall_collector.history import HistoryWorker
from footfall_collector.influx import InfluxV1
from footfall_collector.points import FieldValue, Point
from footfall_collector.schema import (
    AGENT_STATUS,
    FAULT,
    ROLLUP_RP,
    VISITS_DAILY,
    crossing_point,
    visits_point,
    zone_flow_points,
)
from footfall_contract.site import Site, load_site
from footfall_sim.localservices import Influx
from tests.support.collector import InfluxQuery
from tests.support.grafana import dashboards, ms, panel_queries

pytestmark = pytest.mark.services

SITES = Path(__file__).parents[2] / "deploy" / "sites"
ISO = load_site(SITES / "iso-omena.yaml")
KALA = load_site(SITES / "kalajarvi.yaml")
TZ = ISO.tz
NOW = dt.datetime(2025, 10, 29, 16, 30, tzinfo=TZ)
"""A Wednesday. Sunday 26 October 2025 has 25 hours (04:00 summer time is 03:00 again)."""
DAYS = [dt.date(2025, 10, d) for d in (1, 15, 22, 26, 28, 29)]
"""Days with crossings: today, the same weekday 1, 2 and 4 weeks before (not 3), the
day the clocks go back, yesterday."""
BURST_HOUR = dt.datetime(2025, 10, 29, 15, tzinfo=TZ)
"""60 more library visitors from the mall: this month's busiest library hour."""
YEAR_FROM = dt.date(2025, 1, 1)
SYNTHETIC_TO = dt.date(2025, 9, 29)
"""Daily rollups written directly from 1 January to here; the worker does from 30 Sep."""
HOUR_NS = 3_600_000_000_000
ZONES = [z.id for z in ISO.zones]
BOARDS = ["service-centre-overview.json", "library-crowding.json", "visits-per-agency.json"]
VARIANTS = ["live", "backlog", "shuffled"]


@dataclass(frozen=True)
class Crossing:
    door: str
    dir: str
    t: int  # ns

    @property
    def agent(self) -> str:
        return f"sim-{self.door}"


def at(day: dt.date, h: int, m: int = 0, s: float = 0, fold: int = 0) -> int:
    """ns of a local wall-clock time (whole milliseconds)."""
    local = dt.datetime.combine(day, dt.time(h, m), tzinfo=TZ).replace(fold=fold)
    return (round(local.timestamp() * 1000) + round(s * 1000)) * 1_000_000


# --- the crossings --------------------------------------------------------------------

AGENCY_DOORS = [d.id for d in ISO.doors if d.outside == "centre" and d.id != "library-main"]
MALL = ["centre-mall-east", "centre-mall-west"]


def route(rng: random.Random, sunday: bool) -> list[tuple[str, str]]:
    """The doors of one visit in: leaving is the same doors out, in reverse order."""
    if sunday or rng.random() < 0.3:
        path = [("library-mall", "in")]
        if rng.random() < 0.3:
            path.append(("kohtaamo-door", "in"))
        return path
    path = [(rng.choice(MALL), "in")]
    path.append(("library-main", "in") if rng.random() < 0.3 else (rng.choice(AGENCY_DOORS), "in"))
    return path


def crossings() -> list[Crossing]:
    rng = random.Random(2789)
    out: list[Crossing] = []
    used: set[tuple[str, int]] = set()
    end = at(NOW.date(), NOW.hour, NOW.minute)

    def add(door: str, direction: str, t: int) -> None:
        while (door, t) in used:  # one agent never has two crossings in one ns
            t += 1_000_000
        if t < end:
            used.add((door, t))
            out.append(Crossing(door, direction, t))

    def visit(t: int, path: list[tuple[str, str]], stay_min: tuple[int, int]) -> None:
        for door, _ in path:
            add(door, "in", t)
            t += rng.randrange(20_000, 300_000) * 1_000_000
        t += rng.randrange(*stay_min) * 60 * 1_000_000_000
        for door, _ in reversed(path):
            add(door, "out", t)
            t += rng.randrange(20_000, 300_000) * 1_000_000

    for day in DAYS:
        sunday = day.weekday() == 6
        opens, closes = (11, 17) if sunday else (8, 19)
        for _ in range(60 if sunday else 110):
            start = at(day, opens) + rng.randrange((closes - opens) * 3_600_000) * 1_000_000
            visit(start, route(rng, sunday), (5, 90))
        add("kela-door", "out", at(day, 7, 30))  # nobody in: drift, not a visit
    for _ in range(60):
        t = ms(BURST_HOUR) * 1_000_000 + rng.randrange(3_600_000) * 1_000_000
        visit(t, [("library-mall", "in")], (10, 120))
    twelve = at(dt.date(2025, 10, 28), 12)  # on the hour, two agents in one nanosecond
    add("centre-mall-east", "in", twelve)
    add("centre-mall-west", "in", twelve)
    add("centre-mall-east", "out", twelve + 1_800 * 10**9)
    add("centre-mall-west", "out", twelve + 1_800 * 10**9)
    add("centre-mall-west", "in", at(dt.date(2025, 10, 28), 23, 50))  # out at midnight
    add("centre-mall-east", "out", at(dt.date(2025, 10, 29), 0))
    add("centre-mall-east", "in", at(dt.date(2025, 10, 1), 1, 30))  # before the 03:00 reset
    add("centre-mall-east", "out", at(dt.date(2025, 10, 1), 1, 40))
    clocks_back = dt.date(2025, 10, 26)  # 03:xx summer time, and 03:xx again an hour later
    add("library-mall", "in", at(clocks_back, 3, 30, fold=0))
    add("library-mall", "out", at(clocks_back, 3, 20, fold=1))
    return sorted(out, key=lambda c: (c.t, c.door))


CROSSINGS = crossings()


# --- the truth, by hand -----------------------------------------------------------------


def enters(zone: str, c: Crossing, site: Site = ISO) -> bool:
    """docs/spec.md §3: in through a door into the zone from outside it, or out through a
    door out of a zone inside it."""
    door = site.door(c.door)
    inside, outside = site.contains(zone, door.inside), site.contains(zone, door.outside)
    return (c.dir == "in" and inside and not outside) or (c.dir == "out" and outside and not inside)


def leaves(zone: str, c: Crossing) -> bool:
    flipped = Crossing(c.door, "out" if c.dir == "in" else "in", c.t)
    return enters(zone, flipped)


def entries(zone: str, start_ns: int, end_ns: int) -> int:
    return sum(1 for c in CROSSINGS if start_ns <= c.t <= end_ns and enters(zone, c))


def hourly(zone: str) -> dict[int, int]:
    """Entries per hour start (ns): Helsinki's offsets are whole hours, so UTC hours are
    its local hours, the repeated 03:00 included."""
    out: dict[int, int] = defaultdict(int)
    for c in CROSSINGS:
        if enters(zone, c):
            out[c.t // HOUR_NS * HOUR_NS] += 1
    return dict(out)


def daily(zone: str) -> dict[dt.date, int]:
    out: dict[dt.date, int] = defaultdict(int)
    for c in CROSSINGS:
        if enters(zone, c):
            out[dt.datetime.fromtimestamp(c.t / 1e9, TZ).date()] += 1
    return dict(out)


def reset_before(t: int) -> int:
    local = dt.datetime.fromtimestamp(t / 1e9, TZ)
    day = local.date() if local.time() >= dt.time(3) else local.date() - dt.timedelta(days=1)
    if dt.datetime.combine(day, dt.time(3), tzinfo=TZ).timestamp() * 1e9 > t:
        day -= dt.timedelta(days=1)  # the repeated 03:xx of 26 October
    return round(dt.datetime.combine(day, dt.time(3), tzinfo=TZ).timestamp()) * 10**9


def levels(zone: str) -> list[tuple[int, int]]:
    """(ns, people in) after each event, from 0 at each daily reset at 03:00, never below
    0; a reset point at the start of every window with events."""
    out: list[tuple[int, int]] = []
    count, window = 0, -1
    for c in CROSSINGS:  # sorted by time; at one instant here only entries coincide
        if not (enters(zone, c) or leaves(zone, c)):
            continue
        w = reset_before(c.t)
        if w != window:
            window, count = w, 0
            out.append((w, 0))
        count = count + 1 if enters(zone, c) else max(count - 1, 0)
        out.append((c.t, count))
    return out


def peak_in_hour(zone: str, hour_ns: int) -> int:
    """Highest count in the hour, counting who was already in at its start."""
    lv = levels(zone)
    before = [n for t, n in lv if t < hour_ns and reset_before(t) == reset_before(hour_ns)]
    inside = [n for t, n in lv if hour_ns <= t < hour_ns + HOUR_NS]
    return max([before[-1] if before else 0, *inside])


def interval_max(zone: str, start_ns: int, end_ns: int, step_ns: int) -> dict[int, int]:
    """The highest occupancy in each GROUP BY time(step) bucket with events, counting who
    was already in at its first event; 0 in the buckets of the daily resets. The history
    has a point a minute, at the minute's start: that time is what the range selects."""
    minute = 60 * 10**9
    out: dict[int, int] = {}
    day = local(start_ns).date() - dt.timedelta(days=1)
    while day <= local(end_ns).date():
        reset = at(day, 3)
        if start_ns <= reset <= end_ns:
            out[reset // step_ns * step_ns] = 0
        day += dt.timedelta(days=1)
    before, window = 0, -1
    for t, n in levels(zone):
        w = reset_before(t)
        carried = before if w == window else 0
        before, window = n, w
        m = t // minute * minute
        if start_ns <= m <= end_ns:
            b = m // step_ns * step_ns
            out[b] = max(out.get(b, 0), carried, n)
    return out


ESTIMATED = {
    ("kela", at(dt.date(2025, 10, 28), 10)): "sim-kela-door offline 10:05-10:25",
    ("library", ms(BURST_HOUR) * 1_000_000): "library-main beam blocked 15:10-15:20",
}


@dataclass(frozen=True)
class Synthetic:
    entries: dict[tuple[str, dt.date], int]
    estimated: dict[tuple[str, dt.date], int]
    peak: dict[tuple[str, dt.date], int]


def synthetic() -> Synthetic:
    rng = random.Random(1)
    e: dict[tuple[str, dt.date], int] = {}
    est: dict[tuple[str, dt.date], int] = {}
    pk: dict[tuple[str, dt.date], int] = {}
    day = YEAR_FROM
    while day <= SYNTHETIC_TO:
        for zone in ZONES:
            e[(zone, day)] = rng.randrange(0, 400)
            est[(zone, day)] = rng.choice([0] * 30 + [1, 3])
            pk[(zone, day)] = rng.randrange(0, 90)
        day += dt.timedelta(days=1)
    return Synthetic(e, est, pk)


SYNTH = synthetic()


# --- writing, three ways ----------------------------------------------------------------


def lines_of(c: Crossing, site: Site = ISO) -> list[str]:
    """What the collector writes for one crossing, in one request."""
    entered, left = site.door_effects(c.door)
    if c.dir == "out":
        entered, left = left, entered
    points = [crossing_point(site.site, c.door, c.dir, c.agent, c.t)]
    points += zone_flow_points(site.site, entered, left, c.agent, c.t)
    return [p.line() for p in points]


def status_and_faults() -> list[str]:
    def point(m: str, tags: dict[str, str], fields: dict[str, FieldValue], t: int) -> str:
        return Point(m, {"site": ISO.site, **tags}, fields, t).line()

    kela = {"agent": "sim-kela-door"}
    offline: dict[str, FieldValue] = {"online": False, "value": 0, "reason": "silent"}
    online: dict[str, FieldValue] = {"online": True, "value": 1, "reason": "online"}
    beam = {"agent": "sim-library-main", "source": "library-main", "fault": "beam_blocked"}
    oct28, oct29 = dt.date(2025, 10, 28), dt.date(2025, 10, 29)
    return [
        point(AGENT_STATUS, kela, offline, at(oct28, 10, 5)),
        point(AGENT_STATUS, kela, online, at(oct28, 10, 25)),
        point(FAULT, beam, {"active": True, "value": 1}, at(oct29, 15, 10)),
        point(FAULT, beam, {"active": False, "value": 0}, at(oct29, 15, 20)),
    ]


def other_site() -> list[str]:
    """Kalajärvi shares zone ids (centre, library) with Iso Omena: never counted here."""
    oct29 = dt.date(2025, 10, 29)
    lines = []
    for i in range(50):
        lines += lines_of(Crossing("library-street", "in", at(oct29, 12, i)), KALA)
    return lines


def synthetic_rollups() -> list[str]:
    def midnight_ms(day: dt.date) -> int:
        return ms(dt.datetime.combine(day, dt.time(0), tzinfo=TZ))

    lines = []
    for (zone, day), n in SYNTH.entries.items():
        p = visits_point(
            VISITS_DAILY,
            ISO.site,
            zone,
            midnight_ms(day),
            entries=n,
            exits=n,
            peak=SYNTH.peak[(zone, day)],
            peak_at_ms=midnight_ms(day) + 12 * 3_600_000,
            estimated=SYNTH.estimated[(zone, day)],
        )
        lines.append(p.line())
    last_year = dt.date(2024, 12, 31)  # before this year: never in it
    for site, zone, day in ((ISO.site, "library", last_year), (KALA.site, "library", DAYS[-1])):
        big = dict(entries=10**6, exits=0, peak=1, peak_at_ms=midnight_ms(day), estimated=0)
        lines.append(visits_point(VISITS_DAILY, site, zone, midnight_ms(day), **big).line())
    return lines


def batches_live(rng: random.Random) -> Iterator[list[str]]:
    for c in CROSSINGS:
        yield lines_of(c)


def batches_backlog(rng: random.Random) -> Iterator[list[str]]:
    """Per agent, outbox batches of 50 oldest first, the newest batch sent first; the
    agents in reverse order; 22 October a week late, after everything else."""
    late = [c for c in CROSSINGS if local(c.t).date() == DAYS[2]]
    rest = [c for c in CROSSINGS if local(c.t).date() != DAYS[2]]
    for group in (rest, late):
        by_agent: dict[str, list[Crossing]] = defaultdict(list)
        for c in group:
            by_agent[c.agent].append(c)
        for agent in sorted(by_agent, reverse=True):
            cs = by_agent[agent]
            chunks = [cs[i : i + 50] for i in range(0, len(cs), 50)]
            for chunk in reversed(chunks):
                yield [line for c in chunk for line in lines_of(c)]


def batches_shuffled(rng: random.Random) -> Iterator[list[str]]:
    """Random order and batch sizes; one crossing in ten delivered twice."""
    cs = CROSSINGS + rng.sample(CROSSINGS, len(CROSSINGS) // 10)
    rng.shuffle(cs)
    i = 0
    while i < len(cs):
        n = rng.randint(1, 400)
        yield [line for c in cs[i : i + n] for line in lines_of(c)]
        i += n


PUBLISH: dict[str, Callable[[random.Random], Iterator[list[str]]]] = {
    "live": batches_live,
    "backlog": batches_backlog,
    "shuffled": batches_shuffled,
}


def fill(url: str, variant: str) -> None:
    influx = InfluxV1(InfluxSettings(url=url, database=variant, retention_duration=None))
    influx.ensure_database()
    influx.write(status_and_faults())
    worker = HistoryWorker(influx, ISO)
    now_ms = ms(NOW)
    batches = list(PUBLISH[variant](random.Random(variant)))
    for i, batch in enumerate(batches):
        influx.write(batch)
        if variant == "backlog" and i == len(batches) // 2:  # a worker run midway
            worker.rebuild(DAYS[0], NOW.date(), now_ms)
    influx.write(other_site())
    worker.rebuild(DAYS[0], NOW.date(), now_ms)
    influx.write(synthetic_rollups(), rp=ROLLUP_RP)
    influx.close()


# --- the panels -------------------------------------------------------------------------

Rows = list[dict[str, Any]]
Key = tuple[str, str, str]  # board, panel title, refId


@dataclass(frozen=True)
class Published:
    server: Influx
    results: dict[str, dict[Key, Rows]]  # variant -> every panel query's rows
    panels: dict[Key, dict[str, Any]]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    server = Influx(tmp_path_factory.mktemp("visits") / "influxdb")
    server.start()
    try:
        results: dict[str, dict[Key, Rows]] = {}
        panels: dict[Key, dict[str, Any]] = {}
        for variant in VARIANTS:
            fill(server.url, variant)
            query = InfluxQuery(server.url, variant)
            out: dict[Key, Rows] = {}
            for name in BOARDS:
                board = dashboards()[name]
                for panel, ref, q in panel_queries(board, NOW, TZ, ISO.site, ZONES, "library"):
                    out[(name, panel["title"], ref)] = query.rows(q)
                    panels[(name, panel["title"], ref)] = panel
            results[variant] = out
        yield Published(server, results, panels)
    finally:
        server.kill()


@pytest.fixture(scope="module")
def rows(published: Published) -> dict[Key, Rows]:
    return published.results["live"]


OVERVIEW, LIBRARY, VISITS = BOARDS


def local(t_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(t_ns / 1e9, TZ)


def midnight(day: dt.date) -> int:
    return ms(dt.datetime.combine(day, dt.time(0), tzinfo=TZ)) * 1_000_000


def test_the_data_has_what_the_panels_must_survive() -> None:
    """The crossings include what broke the old occupancy-difference query."""
    same_ns = defaultdict(set)
    for c in CROSSINGS:
        same_ns[c.t].add(c.agent)
    assert any(len(agents) > 1 for agents in same_ns.values())
    assert sum(1 for c in CROSSINGS if local(c.t).date() == NOW.date()) > 200
    assert max(c.t for c in CROSSINGS) < ms(NOW) * 1_000_000
    assert {local(c.t).date() for c in CROSSINGS} == {*DAYS}
    # the hour after 03:00 summer time on 26 October is 03:00 again
    assert at(DAYS[3], 3, 20, fold=1) - at(DAYS[3], 3, 30) == 50 * 60 * 10**9


def test_every_query_gives_the_same_rows_however_the_data_came(published: Published) -> None:
    live = published.results["live"]
    visit_keys = [k for k in live if k[1] not in NOT_VISITS]
    assert all(live[k] for k in visit_keys if k not in MAY_BE_EMPTY), [
        k for k in visit_keys if not live[k] and k not in MAY_BE_EMPTY
    ]
    for variant in VARIANTS[1:]:
        other = published.results[variant]
        assert other.keys() == live.keys()
        for key in live:
            assert other[key] == live[key], (variant, key)


NOT_VISITS = {
    "Occupancy now",
    "% of capacity now",
    "% of capacity",
    "Crowding",
    "People in now",
    "Study and group rooms",
}
"""Panels of the live series or presence: nothing of them is written here."""
MAY_BE_EMPTY = {
    (OVERVIEW, "Visitors so far: today against the same weekday", "D"),
    (LIBRARY, "Visitors so far: today against the same weekday", "D"),
    (LIBRARY, "Occupancy today", "B"),  # the capacity: live series
}


def test_visitors_today(rows: dict[Key, Rows]) -> None:
    start, end = midnight(NOW.date()), ms(NOW) * 1_000_000
    got = {r["zone"]: r["entries"] for r in rows[(OVERVIEW, "Visitors today", "A")]}
    truth = {z: entries(z, start, end) for z in ZONES}
    assert got == {z: n for z, n in truth.items() if n}
    assert truth["library"] > 60 and truth["centre"] > 60
    (lib,) = rows[(LIBRARY, "Visitors today", "A")]
    assert lib["entries"] == truth["library"]


def test_visitors_per_hour(rows: dict[Key, Rows]) -> None:
    start, end = midnight(NOW.date()), ms(NOW) * 1_000_000
    got: dict[tuple[str, int], int] = {}
    for r in rows[(OVERVIEW, "Visitors per hour", "A")]:
        assert local(r["time"]).minute == 0
        got[(r["zone"], r["time"])] = r["entries"]
    for zone in ZONES:
        truth = {t: n for t, n in hourly(zone).items() if start <= t <= end}
        mine = {t: n for (z, t), n in got.items() if z == zone}
        assert {t: n for t, n in mine.items() if n} == truth, zone
    # the burst: the busiest hour of the library today, at 15:00 local
    lib = {t: n for (z, t), n in got.items() if z == "library"}
    assert max(lib, key=lambda t: lib[t]) == ms(BURST_HOUR) * 1_000_000


def test_same_weekday_bars(rows: dict[Key, Rows]) -> None:
    """Today so far, and the same span 1-4 weeks (7 x 24 h) before: 26 October is between
    today and a week ago, so that span is an hour later on the clock (docs/dashboards.md)."""
    start, end = midnight(NOW.date()), ms(NOW) * 1_000_000
    week = 7 * 24 * HOUR_NS
    for board in (OVERVIEW, LIBRARY):
        for k, ref in enumerate("ABCDE"):
            got = rows[(board, "Visitors so far: today against the same weekday", ref)]
            truth = entries("library", start - k * week, end - k * week)
            assert got == ([{"time": start - k * week, "entries": truth}] if truth else [])
            assert (truth == 0) == (k == 3), k  # nothing 3 weeks before


def test_occupancy_history_curves(rows: dict[Key, Rows]) -> None:
    """Today so far, and (panel time shift: Grafana moves the wall clock) the same hours a
    week before, from the occupancy history at event time."""
    step = 5 * 60 * 10**9  # the emulated $__interval
    week_before = NOW - dt.timedelta(days=7)  # aware: same wall-clock time
    today = midnight(NOW.date()), ms(NOW) * 1_000_000
    last_week = midnight(week_before.date()), ms(week_before) * 1_000_000
    assert today[0] - last_week[0] == 7 * 24 * HOUR_NS + HOUR_NS  # 26 October has 25 h
    for board, title, (start, end), zones in (
        (OVERVIEW, "Occupancy", today, ZONES),
        (OVERVIEW, "Occupancy on the same weekday last week", last_week, ZONES),
        (LIBRARY, "Occupancy today", today, ["library"]),
        (LIBRARY, "Occupancy on the same weekday last week", last_week, ["library"]),
    ):
        got: dict[tuple[str, int], int] = {}
        for r in rows[(board, title, "A")]:
            got[(r["zone"], r["time"])] = r["peak"]
        truth = {(z, t): n for z in zones for t, n in interval_max(z, start, end, step).items()}
        assert got == truth, title
        assert max(n for (z, _), n in got.items() if z == "library") >= 5  # not all 0


def test_busiest_hours(rows: dict[Key, Rows]) -> None:
    month = midnight(NOW.date().replace(day=1))
    truth = {t: n for t, n in hourly("library").items() if month <= t}
    for board in (OVERVIEW, LIBRARY):
        got = rows[(board, "Busiest hours this month", "A")]
        assert len(got) == 10
        assert sorted(r["entries"] for r in got) == sorted(truth.values())[-10:]
        for r in got:
            assert r["entries"] == truth[r["time"]]
            assert r["peak"] == peak_in_hour("library", r["time"])
            assert r["estimated"] == (("library", r["time"]) in ESTIMATED)
        top = max(got, key=lambda r: r["entries"])
        assert top["time"] == ms(BURST_HOUR) * 1_000_000 and top["estimated"] is True


def test_heatmap(rows: dict[Key, Rows]) -> None:
    """Rows 00-23, one value a day at local midnight = the entries in that local hour.
    26 October (25 hours) is left out: InfluxDB starts that day's offset buckets by the
    absolute hour, so after the change its rows show the hour before (docs/dashboards.md)."""
    first = NOW.date() - dt.timedelta(days=27)
    truth = hourly("library")
    for board in (OVERVIEW, LIBRARY):
        heat = {ref: rs for (b, title, ref), rs in rows.items() if b == board and "Hourly" in title}
        assert len(heat) == 24
        for h, ref in enumerate(sorted(heat, key=lambda r: (len(r), r))):  # A..X: 00-23
            by_day = {local(r["time"]).date(): r["entries"] for r in heat[ref]}
            assert all(local(r["time"]).time() == dt.time(0) for r in heat[ref])
            day = first
            while day <= NOW.date():
                if day != DAYS[3] and (day < NOW.date() or h <= NOW.hour):
                    hour_ns = at(day, h)
                    assert by_day.get(day) == truth.get(hour_ns, 0), (day, h)
                day += dt.timedelta(days=1)


def months(panel: dict[str, Any], rs: Rows) -> dict[tuple[str, str], int]:
    """Grafana's transformations of "Visits per month": the rows' local month (the
    dashboard's time zone is the site's), summed per month and zone."""
    ids = [t["id"] for t in panel["transformations"]]
    assert ids == ["formatTime", "groupBy", "groupingToMatrix"]
    assert panel["transformations"][0]["options"]["outputFormat"] == "YYYY-MM"
    out: dict[tuple[str, str], int] = defaultdict(int)
    for r in rs:
        out[(local(r["time"]).strftime("%Y-%m"), r["zone"])] += r["visits"]
    return dict(out)


def test_visits_per_agency_month(rows: dict[Key, Rows]) -> None:
    oct1 = NOW.date().replace(day=1)
    got = {
        (r["zone"], local(r["time"]).date()): r["visits"]
        for r in rows[(VISITS, "Visits per day", "A")]
    }
    assert all(local(r["time"]).time() == dt.time(0) for r in rows[(VISITS, "Visits per day", "A")])
    truth = {}
    for zone in ZONES:
        d = daily(zone)
        day = oct1
        while day <= NOW.date():  # every day of the month: 0 is a figure too
            truth[(zone, day)] = d.get(day, 0)
            day += dt.timedelta(days=1)
    assert got == truth
    assert got[("centre", oct1)] >= 1  # 01:30, before the reset: the calendar day counts
    table = {r["zone"]: r for r in rows[(VISITS, "Visits in the range per agency", "A")]}
    for zone in ZONES:
        row = table[zone]
        assert row["visits"] == entries(zone, midnight(oct1), ms(NOW) * 1_000_000)
        assert row["estimated_hours"] == sum(1 for z, _ in ESTIMATED if z == zone)
        assert row["peak"] == max((n for _, n in levels(zone)), default=0)


def test_visits_per_agency_year(published: Published, rows: dict[Key, Rows]) -> None:
    panel = published.panels[(VISITS, "Visits per month", "A")]
    got = months(panel, rows[(VISITS, "Visits per month", "A")])
    truth: dict[tuple[str, str], int] = defaultdict(int)
    for (zone, day), n in SYNTH.entries.items():
        truth[(day.strftime("%Y-%m"), zone)] += n
    for zone in ZONES:
        for day, n in daily(zone).items():
            truth[(day.strftime("%Y-%m"), zone)] += n
    assert got == dict(truth)
    assert {m for m, _ in got} == {f"2025-{m:02d}" for m in range(1, 11)}

    table = {r["zone"]: r for r in rows[(VISITS, "Visits this year per agency", "A")]}
    assert set(table) == set(ZONES)
    for zone in ZONES:
        synth = [(z, d) for z, d in SYNTH.entries if z == zone]
        row = table[zone]
        assert row["visits"] == sum(SYNTH.entries[k] for k in synth) + entries(
            zone, midnight(YEAR_FROM), ms(NOW) * 1_000_000
        )
        assert row["estimated_hours"] == sum(SYNTH.estimated[k] for k in synth) + sum(
            1 for z, _ in ESTIMATED if z == zone
        )
        peaks = [SYNTH.peak[k] for k in synth] + [n for _, n in levels(zone)]
        assert row["peak"] == max(peaks)


def test_visits_variables(published: Published) -> None:
    board = dashboards()[VISITS]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    query = InfluxQuery(published.server.url, "live")
    sites = sorted(r["value"] for r in query.rows(variables["site"]["query"]))
    assert sites == sorted([ISO.site, KALA.site])
    zones = query.rows(variables["zone"]["query"].replace("$site", ISO.site))
    assert sorted(r["value"] for r in zones) == sorted(ZONES)
