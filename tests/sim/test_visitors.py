"""The crowd simulator's visitor model, pure: opening hours, daily and weekly shape,
routes through the zone tree, and everyone out by closing."""

from __future__ import annotations

import datetime as dt
import random
import statistics
from collections import Counter
from pathlib import Path

import pytest

from footfall_collector.occupancy import OccupancyEngine
from footfall_contract.site import Site, load_site
from footfall_sim.demand import default_visits, unit_profiles
from footfall_sim.scenario import day_window
from footfall_sim.visitors import ModelParams, Plan, VisitorModel

SITES = Path(__file__).parents[2] / "deploy" / "sites"
MONDAY = dt.date(2026, 11, 23)
WEEKS = 2


@pytest.fixture(scope="module")
def iso() -> Site:
    return load_site(SITES / "iso-omena.yaml")


@pytest.fixture(scope="module")
def model(iso: Site) -> VisitorModel:
    return VisitorModel(iso)


@pytest.fixture(scope="module")
def fortnight(model: VisitorModel) -> dict[dt.date, Plan]:
    days = [MONDAY + dt.timedelta(days=i) for i in range(7 * WEEKS)]
    return {d: model.plan_day(d, random.Random(f"test:{d}")) for d in days}


def test_same_seed_same_day_other_seed_other_day(model: VisitorModel) -> None:
    a = model.plan_day(MONDAY, random.Random(7))
    b = model.plan_day(MONDAY, random.Random(7))
    c = model.plan_day(MONDAY, random.Random(8))
    assert a.crossings == b.crossings and a.visits == b.visits
    assert a.crossings != c.crossings


def test_defaults_from_the_site(iso: Site) -> None:
    assert default_visits(iso) == 3600
    assert default_visits(load_site(SITES / "kalajarvi.yaml")) == 1000
    units = unit_profiles(iso)
    assert max(units, key=lambda u: units[u].weight) == "library"
    assert units["library"].dwell_min == 40 and units["kela"].dwell_min == 20
    assert units["huslab"].dwell_min == 15
    assert units["centre"].dwell_min < 10  # the lobby is passed through


def test_weekly_mean_is_the_target(model: VisitorModel, fortnight: dict[dt.date, Plan]) -> None:
    expected = [model.day_mean(MONDAY + dt.timedelta(days=i)) for i in range(7)]
    assert sum(expected) / 7 == pytest.approx(3600)
    # The model's hours integrate to the day's mean (nobody lost to closing times).
    assert model.expected_arrivals(*day_window(model, MONDAY)) == pytest.approx(expected[0])
    visits = [len(p.visits) for p in fortnight.values()]
    assert statistics.mean(visits) == pytest.approx(3600, rel=0.05)


def test_saturday_lighter_and_sunday_library_only(fortnight: dict[dt.date, Plan]) -> None:
    by_weekday: dict[int, list[int]] = {}
    for day, plan in fortnight.items():
        by_weekday.setdefault(day.weekday(), []).append(len(plan.visits))
    weekday = statistics.mean(n for w in range(5) for n in by_weekday[w])
    saturday = statistics.mean(by_weekday[5])
    assert 0.45 * weekday < saturday < 0.75 * weekday
    for day, plan in fortnight.items():
        if day.weekday() == 6:
            assert plan.visits
            assert {u for v in plan.visits for u in v.units} <= {"library", "kohtaamo"}
            assert {c.door for c in plan.crossings} <= {"library-mall", "kohtaamo-door"}


def test_arrivals_and_every_crossing_inside_opening_hours(
    iso: Site, fortnight: dict[dt.date, Plan]
) -> None:
    """Nobody enters a zone while it is closed (the lobby neither), and everyone is out
    before their zones close."""
    for plan in fortnight.values():
        for c in plan.crossings:
            door = iso.door(c.door)
            entered = door.inside if c.dir == "in" else door.outside
            when = dt.datetime.fromtimestamp(c.t_s, dt.UTC)
            if entered is not None:
                assert iso.is_open(when, entered), (c, entered)
            left = door.outside if c.dir == "in" else door.inside
            if left is not None:
                assert iso.is_open(when, left), (c, left)


def test_everyone_leaves_and_routes_follow_the_doors(
    iso: Site, fortnight: dict[dt.date, Plan]
) -> None:
    for day, plan in fortnight.items():
        engine = OccupancyEngine(iso)
        where: dict[int, str | None] = {}
        for c in plan.crossings:
            door = iso.door(c.door)
            here = where.get(c.visitor)
            frm, to = (door.outside, door.inside) if c.dir == "in" else (door.inside, door.outside)
            assert here == frm, f"visitor {c.visitor} crosses {c.door} {c.dir} from {here}"
            where[c.visitor] = to
            engine.apply(c.door, c.dir)
        assert set(where.values()) == {None}, day
        states = engine.states()
        assert all(s.count == 0 and s.drift == 0 for s in states), (day, states)
        entered: dict[int, set[str | None]] = {}
        for c in plan.crossings:
            door = iso.door(c.door)
            entered.setdefault(c.visitor, set()).add(door.inside if c.dir == "in" else door.outside)
        assert all(set(v.units) <= entered[v.id] for v in plan.visits)


def test_units_dwell_and_second_visits(fortnight: dict[dt.date, Plan]) -> None:
    visits = [v for p in fortnight.values() for v in p.visits]
    first = Counter(v.units[0] for v in visits)
    assert first.most_common(1)[0][0] == "library"
    two = sum(len(v.units) == 2 for v in visits) / len(visits)
    assert 0.05 < two < 0.25

    def stay(unit: str) -> float:
        return statistics.mean(v.leave_s - v.arrive_s for v in visits if v.units == (unit,))

    assert stay("library") > stay("kela") > stay("service-point")


def test_daily_shape_has_lunch_and_after_school_peaks(model: VisitorModel) -> None:
    hours = model.hourly_profile(MONDAY)
    assert hours[:7] == [0.0] * 7 and hours[20:] == [0.0] * 4
    assert hours[12] > hours[10] and hours[12] > hours[13]  # lunch
    assert hours[15] > hours[13] and max(hours) in (hours[15], hours[16])  # after school
    saturday = model.hourly_profile(MONDAY + dt.timedelta(days=5))
    assert saturday[:10] == [0.0] * 10 and saturday[16:] == [0.0] * 8
    assert sum(saturday) < 0.75 * sum(hours)


def test_a_window_starts_empty_and_ends_empty(iso: Site) -> None:
    """Any window, open or not (ignore_hours): arrivals inside it, everyone out by its end."""
    model = VisitorModel(iso, ModelParams(visits_per_day=20_000, ignore_hours=True))
    start = dt.datetime(2026, 11, 22, 2, 10, tzinfo=iso.tz).timestamp()  # Sunday night
    plan = model.plan(start, start + 1800, random.Random(3))
    assert 300 < len(plan.visits) < 450
    assert all(start <= c.t_s < start + 1800 for c in plan.crossings)
    engine = OccupancyEngine(iso)
    for c in plan.crossings:
        engine.apply(c.door, c.dir)
    assert all(s.count == 0 and s.drift == 0 for s in engine.states())


def test_closed_window_has_nobody(model: VisitorModel, iso: Site) -> None:
    night = dt.datetime(2026, 11, 24, 22, 0, tzinfo=iso.tz).timestamp()
    assert model.plan(night, night + 3 * 3600, random.Random(1)).visits == []


def test_kalajarvi_day(iso: Site) -> None:
    site = load_site(SITES / "kalajarvi.yaml")
    model = VisitorModel(site)
    plan = model.plan_day(MONDAY, random.Random(1))
    assert 1000 < len(plan.visits) < 1700
    engine = OccupancyEngine(site)
    for c in plan.crossings:
        engine.apply(c.door, c.dir)
    assert all(s.count == 0 and s.drift == 0 for s in engine.states())
    assert model.plan_day(MONDAY + dt.timedelta(days=6), random.Random(1)).visits == []
