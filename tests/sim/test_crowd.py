"""Crowd physics, the detectors counting it, pacing, and the history points of a
backfill: pure, no services."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from pathlib import Path

import pytest

from footfall_collector.occupancy import OccupancyEngine
from footfall_contract.site import Site, load_site
from footfall_edge.detection import Crossing, Direction
from footfall_sim.crowd import CROWD, FOLLOW_S, SEPARABLE, door_passages
from footfall_sim.history import History, reset_instants
from footfall_sim.runner import Pacer, agent_ids
from footfall_sim.scenario import Simulated, day_window, simulate, simulate_day
from footfall_sim.visitors import VisitorModel

SITES = Path(__file__).parents[2] / "deploy" / "sites"
FRIDAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def iso() -> Site:
    return load_site(SITES / "iso-omena.yaml")


@pytest.fixture(scope="module")
def day(iso: Site) -> Simulated:
    return simulate_day(VisitorModel(iso), FRIDAY, seed=1, profile=CROWD)


def test_truth_is_the_plan_and_the_detectors_are_accurate(iso: Site, day: Simulated) -> None:
    doors = [d.id for d in iso.doors]
    assert day.true_counts() == day.plan.true_counts(doors)
    assert sum(n for c in day.true_counts().values() for n in c.values()) > 10_000
    # Close followers are the detector's hard case; measured 98.8% with 30% of them.
    assert day.accuracy() >= 0.98


def test_separable_traffic_is_counted_exactly(iso: Site) -> None:
    model = VisitorModel(iso)
    start, _ = day_window(model, FRIDAY)
    sim = simulate(model, start + 11 * 3600, start + 15 * 3600, seed=2, profile=SEPARABLE)
    assert len(sim.plan.crossings) > 3000
    assert sim.detected_counts() == sim.true_counts()
    turned_back = sum(not p.counts for t in sim.crowd.doors.values() for p in t.passages)
    assert turned_back > 0.01 * len(sim.plan.crossings)


def test_same_seed_same_traces(iso: Site) -> None:
    model = VisitorModel(iso)
    start, _ = day_window(model, FRIDAY)
    a = simulate(model, start + 12 * 3600, start + 13 * 3600, seed=5)
    b = simulate(model, start + 12 * 3600, start + 13 * 3600, seed=5)
    assert a.crowd.rows() == b.crowd.rows() and a.events == b.events


def test_bodies_take_turns_unless_following_close() -> None:
    rng = random.Random(1)
    times: list[tuple[float, Direction]] = [
        (10.0, "in"),
        (10.2, "in"),
        (10.3, "out"),
        (50.0, "out"),
    ]
    for _ in range(50):
        passages = [p for p in door_passages(rng, times, 0.07, CROWD) if p.counts]
        assert [p.dir for p in passages] == ["in", "in", "out", "out"]
        first, second, third = passages[:3]
        assert second.t0_s - first.t0_s < FOLLOW_S  # follower or queued right behind
        assert third.t0_s >= second.clear_at(0.07)  # the other way waits for the doorway


def test_pacer_is_never_ahead_of_the_clock() -> None:
    now, hour = 1_800_000_000_000, 3_600_000
    start = Pacer.window_ending_now(now, hour, 60)
    pacer = Pacer(start, now, 60)
    assert pacer.due_ms(start) == now
    assert pacer.due_ms(start + hour) == start + hour  # the window ends as the run ends
    assert start + hour == now + hour // 60
    for t in range(start, start + hour, 60_000):
        assert pacer.due_ms(t) >= t
        assert pacer.due_ms(t) == pytest.approx(now + (t - start) / 60, abs=1)
    fast = Pacer(now - hour, now, 0)
    assert fast.due_ms(now - 5) == now - 5
    assert Pacer(now, now, 0).due_ms(now + 10_000) == now + 10_000  # a future event waits


def test_agent_ids() -> None:
    ids = agent_ids(["library-main", "x" * 64])
    assert ids["library-main"] == "sim-library-main"
    assert len(ids["x" * 64]) == 64
    assert set(agent_ids(["a", "b"], "single").values()) == {"sim"}


def test_history_points_follow_the_collector_schema(iso: Site, day: Simulated) -> None:
    agent_of = agent_ids([d.id for d in iso.doors])
    history = History(iso, agent_of)
    model = VisitorModel(iso)
    start, end = (round(t * 1000) for t in day_window(model, FRIDAY))
    points = list(history.points(day.events, start, end))
    by = Counter(p.measurement for p in points)
    detected = sum(n for c in day.detected_counts().values() for n in c.values())
    assert by["crossing"] == detected
    assert by["occupancy_reset"] == len(iso.zones)
    # Distinct events never share a point (measurement, tags, time).
    crossings = [p for p in points if p.measurement == "crossing"]
    keys = {(tuple(sorted(p.tags.items())), p.time_ns) for p in crossings}
    assert len(keys) == len(crossings)
    line = crossings[0].line()
    assert line.startswith("crossing,agent=sim-") and " count=1i " in line
    assert all(start * 1_000_000 <= p.time_ns < end * 1_000_000 for p in points)
    engine = OccupancyEngine(iso)  # what the day's detected crossings leave behind
    for e in day.events:
        if isinstance(e.event, Crossing):
            engine.apply(e.event.door, e.event.dir)
    (reset,) = reset_instants(iso, start, end)
    assert dt.datetime.fromtimestamp(reset / 1000, iso.tz).strftime("%H:%M") == "03:00"
    for zone in iso.zones:
        occ = [p for p in points if p.measurement == "occupancy" and p.tags["zone"] == zone.id]
        assert len(occ) >= 24 * 60  # every minute, and on every change
        minutes = {p.time_ns // 60_000_000_000 for p in occ}
        assert len(minutes) == 24 * 60
        last = max(occ, key=lambda p: p.time_ns)
        assert last.fields["count"] == engine.state(zone.id).count  # 0 unless one was missed
        assert last.fields.get("capacity") == zone.capacity
        assert {"count", "capacity", "ratio"} == set(occ[0].fields)
