"""The visitor model of the crowd simulator: who comes to a site, when, where they go
and when they leave. Pure and seeded: it knows the site model and a `random.Random`,
nothing else, so a day of traffic is the same on every run with the same seed.

A visitor arrives at a door from the street or the mall (`outside: null`), visits one
unit (sometimes two), stays a unit-specific time and leaves; the doors on the way follow
the zone tree (into a unit through its parents, between sibling units up to the common
parent and down) and avoid zones that are closed at that time. Arrivals follow the
opening hours (`Site.hours_on`, per zone) with a daily shape (lunch and after-school
peaks on weekdays, a broad midday on weekends) and a weekly one (Saturday about 60% of a
weekday). Everyone is out before their unit closes, so every zone is empty after
closing: the true occupancy returns to 0 each day.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from footfall_contract.hours import local_day_bounds, opening_span
from footfall_contract.site import Site
from footfall_edge.detection import Direction

from .demand import UnitProfile, default_visits, hourly_shape, unit_profiles
from .routes import Node, Routes, Step


@dataclass(frozen=True)
class ModelParams:
    visits_per_day: float | None = None
    """Mean over the days of a week (closed days included); None: from the site size."""
    day_weights: tuple[float, float, float, float, float, float, float] = (
        1.05,
        1.0,
        1.0,
        1.0,
        0.9,
        0.6,
        0.35,
    )
    """Relative visits Monday..Sunday (Saturday about 60% of a weekday)."""
    day_noise: float = 0.05
    """Day-to-day variation of the total (log-normal sigma)."""
    p_second_unit: float = 0.15
    walk_s: tuple[float, float] = (10.0, 45.0)
    """Walking time between two doors inside a zone."""
    min_stay_s: float = 120.0
    leave_buffer_s: float = 30.0
    """The last door is crossed this long before closing (the doors' physics may shift a
    crossing by a second or two when people queue)."""
    dwell_sigma: float = 0.5
    dwell_scale: float = 1.0
    ignore_hours: bool = False
    """Every zone open all the time, arrivals flat over the day: demos and tests at night."""
    units: Mapping[str, UnitProfile] | None = None


@dataclass(frozen=True)
class TrueCrossing:
    t_s: float  # epoch seconds
    door: str
    dir: Direction
    visitor: int


@dataclass(frozen=True)
class Visit:
    id: int
    arrive_s: float
    leave_s: float
    units: tuple[str, ...]


@dataclass
class Plan:
    """A window of simulated traffic: every visit and the true crossings, time-ordered."""

    site: str
    start_ms: int
    end_ms: int
    visits: list[Visit] = field(default_factory=list)
    crossings: list[TrueCrossing] = field(default_factory=list)

    def true_counts(self, doors: list[str] | None = None) -> dict[str, dict[str, int]]:
        out = {d: {"in": 0, "out": 0} for d in doors or []}
        for c in self.crossings:
            out.setdefault(c.door, {"in": 0, "out": 0})[c.dir] += 1
        return out


class VisitorModel:
    """Plans visits for a site over any window of time (a day, the last hour, ...)."""

    def __init__(self, site: Site, params: ModelParams | None = None) -> None:
        self.site = site
        self.params = params or ModelParams()
        self.units = unit_profiles(site, self.params.units)
        self.visits_per_day = self.params.visits_per_day or default_visits(site)
        self._zones = [z.id for z in site.zones]
        self.routes = Routes(site)
        self._reach_cache: dict[tuple[Node, frozenset[str]], list[tuple[str, int, int]]] = {}
        open_days = [
            w for w in range(7) if self._any_open(dt.date(2024, 1, 1) + dt.timedelta(days=w))
        ]
        weights = self.params.day_weights
        total = 7.0 if self.params.ignore_hours else sum(weights[w] for w in open_days)
        self._day_scale = self.visits_per_day * 7.0 / total if total else 0.0

    # -- calendar ----------------------------------------------------------------------

    def _any_open(self, day: dt.date) -> bool:
        return self.params.ignore_hours or any(
            self.site.hours_on(day, z) is not None for z in self._zones
        )

    def day_mean(self, day: dt.date) -> float:
        """Expected visits on a date (before the day-to-day noise)."""
        if not self._any_open(day):
            return 0.0
        if self.params.ignore_hours:
            return self.visits_per_day
        return self._day_scale * self.params.day_weights[day.weekday()]

    def day_window(self, day: dt.date) -> tuple[float, float]:
        """A local day, midnight to midnight, in epoch seconds."""
        a, b = local_day_bounds(self.site, day)
        return a / 1000, b / 1000

    def _local_date(self, t_s: float) -> dt.date:
        return dt.datetime.fromtimestamp(t_s, self.site.tz).date()

    def open_intervals(self, start_s: float, end_s: float) -> dict[str, list[tuple[float, float]]]:
        """When each zone is open inside the window, in epoch seconds."""
        if self.params.ignore_hours:
            return {z: [(start_s, end_s)] for z in self._zones}
        out: dict[str, list[tuple[float, float]]] = {z: [] for z in self._zones}
        day = self._local_date(start_s) - dt.timedelta(days=1)
        last = self._local_date(end_s)
        while day <= last:
            for z in self._zones:
                span = opening_span(self.site, day, z)
                if span is None:
                    continue
                a, b = max(span[0].timestamp(), start_s), min(span[1].timestamp(), end_s)
                if b > a:
                    out[z].append((a, b))
            day += dt.timedelta(days=1)
        return out

    def route(
        self, src: Node, dst: Node, allowed: frozenset[str], rng: random.Random
    ) -> list[Step] | None:
        """Doors from `src` to `dst` through allowed zones (`Routes.route`)."""
        return self.routes.route(src, dst, allowed, rng)

    # -- time ------------------------------------------------------------------------

    def _state(
        self, intervals: Mapping[str, list[tuple[float, float]]], t: float
    ) -> dict[str, float]:
        """Zones open at t, each with its closing time."""
        out = {}
        for z, ivs in intervals.items():
            for a, b in ivs:
                if a <= t < b:
                    out[z] = b
                    break
        return out

    def _reach(self, here: Node, allowed: frozenset[str]) -> list[tuple[str, int, int]]:
        """(unit, doors to walk through to it, at most doors out of it) for every unit
        reachable from `here` through allowed zones; cached per open set."""
        key = (here, allowed)
        cached = self._reach_cache.get(key)
        if cached is not None:
            return cached
        out = []
        for u, profile in self.units.items():
            if u not in allowed or u == here or profile.weight <= 0:
                continue
            hops = self.routes.hops(here, u, allowed)
            if hops is not None:
                out.append((u, hops, self.routes.exit_hops(u, allowed)))
        self._reach_cache[key] = out
        return out

    def _candidates(
        self,
        t: float,
        here: Node,
        intervals: Mapping[str, list[tuple[float, float]]],
        exclude: tuple[str, ...] = (),
    ) -> list[tuple[str, float]]:
        """Units worth going to at t from `here`: open, reachable, with time for a visit
        and the way out before they close. (unit, latest time to leave it)."""
        p = self.params
        walk = p.walk_s[1]
        state = self._state(intervals, t)
        out = []
        for u, hops, exit_hops in self._reach(here, frozenset(state)):
            if u in exclude:
                continue
            latest = state[u] - (exit_hops - 1) * walk - p.leave_buffer_s
            if t + (hops - 1) * walk + p.min_stay_s <= latest:
                out.append((u, latest))
        return out

    def _availability(self, intervals: Mapping[str, list[tuple[float, float]]], t: float) -> float:
        return sum(self.units[u].weight for u, _ in self._candidates(t, None, intervals))

    # -- arrivals --------------------------------------------------------------------

    def _minute_weights(self, start_s: float, end_s: float) -> Iterator[tuple[float, float, float]]:
        """(from, to, expected arrivals) for each local minute, clipped to the window. A
        day's total is spread by shape x availability, normalised over the whole day
        (hours not clipped to the window), so a window gets its share of the day."""
        first = self._local_date(start_s)
        last = self._local_date(end_s - 1e-6)
        window = self.open_intervals(start_s, end_s)
        day = first
        while day <= last:
            mean = self.day_mean(day)
            a, b = self.day_window(day)
            minutes = [a + 60.0 * i for i in range(round((b - a) / 60.0))] if mean > 0 else []
            if self.params.ignore_hours:
                shape = [1.0] * len(minutes)
                norm = float(len(minutes))
            else:
                full = self.open_intervals(a, b)
                shape = [hourly_shape(day.weekday(), (m - a) / 3600.0) for m in minutes]
                norm = sum(
                    s * self._availability(full, m) for s, m in zip(shape, minutes, strict=True)
                )
            for s, m in zip(shape, minutes, strict=True):
                lo, hi = max(m, start_s), min(m + 60.0, end_s)
                if hi > lo and norm > 0:
                    avail = self._availability(window, lo)
                    if self.params.ignore_hours:
                        avail = 1.0 if avail > 0 else 0.0
                    if avail > 0:
                        yield lo, hi, mean * s * avail / norm * (hi - lo) / 60.0
            day += dt.timedelta(days=1)

    def expected_arrivals(self, start_s: float, end_s: float) -> float:
        return sum(w for *_, w in self._minute_weights(start_s, end_s))

    def hourly_profile(self, day: dt.date) -> list[float]:
        """Expected arrivals in each local hour of a date (0..23; DST days approximate)."""
        a, b = self.day_window(day)
        hours = [0.0] * 24
        for m, _, w in self._minute_weights(a, b):
            hours[min(23, int((m - a) // 3600))] += w
        return hours

    # -- planning ----------------------------------------------------------------------

    def plan_day(self, day: dt.date, rng: random.Random) -> Plan:
        """A whole local day (midnight to midnight)."""
        a, b = self.day_window(day)
        return self.plan(a, b, rng)

    def plan(self, start_s: float, end_s: float, rng: random.Random) -> Plan:
        """Visits arriving in [start, end); everyone leaves before `end` and before
        their unit closes. The window starts empty."""
        p = self.params
        plan = Plan(self.site.site, round(start_s * 1000), round(end_s * 1000))
        weights = list(self._minute_weights(start_s, end_s))
        if not weights:
            return plan
        noise: dict[dt.date, float] = {}
        cum: list[float] = []
        acc = 0.0
        for m, _, w in weights:  # one factor per day: busy and quiet days
            day = self._local_date(m)
            if day not in noise:
                noise[day] = math.exp(rng.gauss(0.0, p.day_noise) - p.day_noise**2 / 2)
            acc += w * noise[day]
            cum.append(acc)
        n = _poisson(rng, acc)
        arrivals = sorted(
            rng.uniform(lo, hi) for lo, hi, _ in rng.choices(weights, cum_weights=cum, k=n)
        )
        intervals = self.open_intervals(start_s, end_s)
        for t in arrivals:
            if not start_s <= t < end_s:
                continue
            visit = self._visit(len(plan.visits), t, intervals, rng, plan.crossings)
            if visit is not None:
                plan.visits.append(visit)
        plan.crossings.sort(key=lambda c: (c.t_s, c.door))
        return plan

    def _dwell(self, unit: str, rng: random.Random) -> float:
        p = self.params
        mean = self.units[unit].dwell_min * 60.0 * p.dwell_scale
        sigma = p.dwell_sigma
        return max(p.min_stay_s, math.exp(rng.gauss(math.log(mean) - sigma**2 / 2, sigma)))

    def _visit(
        self,
        vid: int,
        t: float,
        intervals: Mapping[str, list[tuple[float, float]]],
        rng: random.Random,
        out: list[TrueCrossing],
    ) -> Visit | None:
        """One visitor's crossings, appended to `out`; None when nothing is worth it."""
        p = self.params
        walk_lo, walk_hi = p.walk_s
        here: Node = None
        units: list[str] = []
        crossings: list[TrueCrossing] = []
        arrive = t
        while len(units) < 2:
            if units and rng.random() >= p.p_second_unit:
                break
            cands = self._candidates(t, here, intervals, tuple(units))
            if not cands:
                break
            unit, latest = rng.choices(cands, weights=[self.units[u].weight for u, _ in cands])[0]
            allowed = frozenset(self._state(intervals, t))
            steps = self.route(here, unit, allowed, rng)
            if steps is None:
                break
            for i, (door, direction) in enumerate(steps):
                if i > 0:  # the first door is where the visitor is at t
                    t += rng.uniform(walk_lo, walk_hi)
                crossings.append(TrueCrossing(t, door, direction, vid))
            t += max(p.min_stay_s, min(self._dwell(unit, rng), latest - t))
            here = unit
            units.append(unit)
        if here is None:
            return None
        allowed = frozenset(self._state(intervals, t))
        steps = self.route(here, None, allowed, rng) or self.route(
            here, None, frozenset(self._zones), rng
        )
        assert steps is not None, f"no way out of {here!r}"  # check_site: doors reach out
        for i, (door, direction) in enumerate(steps):
            if i > 0:
                t += rng.uniform(walk_lo, walk_hi)
            crossings.append(TrueCrossing(t, door, direction, vid))
        out.extend(crossings)
        return Visit(vid, arrive, t, tuple(units))


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, prod = math.exp(-mean), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k
