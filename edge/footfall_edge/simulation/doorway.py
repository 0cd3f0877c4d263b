"""Doorway physics: bodies walking through two IR beams, turned into beam traces with the
true counts. Used by the tests, the accuracy benchmark and the crowd simulator.

Geometry along the walking axis: the beam a body meets first (its *lead* beam: outer when
walking in, inner when walking out) is at 0, the other at `spacing_m`. A body of depth L
whose front is at f covers [f - L, f], so it blocks a beam at p while p <= f <= p + L.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ..detection import Beam, Direction
from ..trace import TraceRow

Interval = tuple[float, float]  # seconds


@dataclass(frozen=True)
class Passage:
    """One body at one door. `t0_s` is when its front reaches its lead beam."""

    t0_s: float
    dir: Direction
    depth_m: float
    speed_mps: float
    turn_at_m: float | None = None  # front depth where it turns back; None: goes through
    pause_s: float = 0.0  # standing still at the turning point
    back_speed_mps: float | None = None

    @property
    def counts(self) -> bool:
        return self.turn_at_m is None

    def front_path(self, spacing_m: float) -> list[tuple[float, float, float, float]]:
        """Piecewise-linear front position: (t_a, f_a, t_b, f_b) segments."""
        v = self.speed_mps
        start = -0.05  # a little before the lead beam
        t_start = self.t0_s + start / v
        if self.turn_at_m is None:
            end = spacing_m + self.depth_m + 0.05
            return [(t_start, start, self.t0_s + end / v, end)]
        d = self.turn_at_m
        t_turn = self.t0_s + d / v
        t_back = t_turn + self.pause_s
        vb = self.back_speed_mps or v
        t_gone = t_back + (d - start) / vb
        return [(t_start, start, t_turn, d), (t_turn, d, t_back, d), (t_back, d, t_gone, start)]

    def clear_at(self, spacing_m: float) -> float:
        return self.front_path(spacing_m)[-1][2]

    def blocked(self, spacing_m: float) -> dict[Beam, list[Interval]]:
        lead: Beam = "outer" if self.dir == "in" else "inner"
        trail: Beam = "inner" if self.dir == "in" else "outer"
        path = self.front_path(spacing_m)
        return {
            lead: _covered(path, 0.0, self.depth_m),
            trail: _covered(path, spacing_m, self.depth_m),
        }


def _covered(
    path: list[tuple[float, float, float, float]], p: float, depth: float
) -> list[Interval]:
    """Times when p <= front <= p + depth along a piecewise-linear path."""
    lo, hi = p, p + depth
    spans: list[Interval] = []
    for ta, fa, tb, fb in path:
        if tb <= ta:
            continue
        if fa == fb:
            if lo <= fa <= hi:
                spans.append((ta, tb))
            continue

        # Solve f(t) = lo and f(t) = hi on the segment; clip to it.
        def at(f: float, ta: float = ta, fa: float = fa, tb: float = tb, fb: float = fb) -> float:
            return ta + (f - fa) * (tb - ta) / (fb - fa)

        t1, t2 = sorted((at(lo), at(hi)))
        s, e = max(t1, ta), min(t2, tb)
        if e > s:
            spans.append((s, e))
    return merge(spans)


def merge(spans: Iterable[Interval], join_s: float = 0.0) -> list[Interval]:
    out: list[Interval] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1] + join_s:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


@dataclass(frozen=True)
class DoorwayProfile:
    """Traffic at one door. Defaults: separable walkers with a few turn-backs."""

    rate_per_min: float = 6.0
    p_out: float = 0.5
    p_abort: float = 0.05
    p_tailgate: float = 0.0  # chance that a body brings a close follower
    tailgate_gap: tuple[float, float] = (0.5, 1.0)  # follower gap as a fraction of spacing
    speed_mps: tuple[float, float] = (0.3, 4.0)
    depth_m: tuple[float, float] = (0.15, 0.45)
    spacing_m: tuple[float, float] = (0.05, 0.10)
    p_bounce: float = 0.3  # chance of contact chatter at an edge
    glitches_per_min: float = 0.5  # lone short pulses on an idle beam
    stuck_per_hour: float = 0.0  # something left in the beam for 35-120 s
    debounce_ms: int = 20


@dataclass
class Truth:
    doors: dict[str, dict[str, int]] = field(default_factory=dict)
    stuck: int = 0

    def add(self, door: str, dir_: Direction) -> None:
        self.doors.setdefault(door, {"in": 0, "out": 0})[dir_] += 1


def _speed(rng: random.Random, lo: float, hi: float) -> float:
    # Mostly walking pace, some slow and some running: log-normal around 1.3 m/s.
    return min(hi, max(lo, math.exp(rng.gauss(math.log(1.3), 0.35))))


def door_passages(
    rng: random.Random, duration_s: float, profile: DoorwayProfile, spacing_m: float
) -> tuple[list[Passage], list[tuple[float, float]]]:
    """Passages (and stuck-beam episodes) at one door, separable unless tailgating."""
    passages: list[Passage] = []
    stuck: list[tuple[float, float]] = []
    t = rng.expovariate(profile.rate_per_min / 60.0) if profile.rate_per_min > 0 else duration_s
    free_at = 0.0
    while t < duration_s:
        t = max(t, free_at)
        if profile.stuck_per_hour and rng.random() < profile.stuck_per_hour / 60 / max(
            profile.rate_per_min, 1e-9
        ):
            length = rng.uniform(35.0, 120.0)
            stuck.append((t, length))
            free_at = t + length + 1.0
            t = free_at + rng.expovariate(profile.rate_per_min / 60.0)
            continue
        group = 2 if rng.random() < profile.p_tailgate else 1
        dir_: Direction = "out" if rng.random() < profile.p_out else "in"
        v = _speed(rng, *profile.speed_mps)
        start = t
        for k in range(group):
            depth = rng.uniform(*profile.depth_m)
            # A body with a follower close behind cannot turn back through it.
            aborted = k + 1 == group and rng.random() < profile.p_abort
            turn = rng.uniform(0.02, spacing_m + depth * 0.8) if aborted else None
            p = Passage(
                t0_s=start,
                dir=dir_,
                depth_m=depth,
                speed_mps=v,
                turn_at_m=turn,
                pause_s=rng.uniform(0.2, 1.5) if aborted else 0.0,
                back_speed_mps=v * rng.uniform(0.7, 1.2) if aborted else None,
            )
            passages.append(p)
            free_at = max(free_at, p.clear_at(spacing_m) + 0.3)
            if k + 1 < group:  # the follower's front is `gap` behind this body's back
                gap = rng.uniform(*profile.tailgate_gap) * spacing_m
                start = start + (depth + gap) / v
        t = t + rng.expovariate(profile.rate_per_min / 60.0) if profile.rate_per_min else duration_s
    return passages, stuck


def render_door(
    rng: random.Random,
    door: str,
    passages: list[Passage],
    stuck: list[tuple[float, float]],
    spacing_m: float,
    profile: DoorwayProfile,
    duration_s: float,
) -> list[TraceRow]:
    """Beam edges at ms resolution, with contact chatter and stray glitches added."""
    spans: dict[Beam, list[Interval]] = {"outer": [], "inner": []}
    for p in passages:
        for beam, ivs in p.blocked(spacing_m).items():
            spans[beam].extend(ivs)
    for t, length in stuck:
        spans["outer" if rng.random() < 0.5 else "inner"].append((t, t + length))
    rows: list[TraceRow] = []
    db = profile.debounce_ms
    for beam in ("outer", "inner"):
        ms = [(round(s * 1000), round(e * 1000)) for s, e in merge(spans[beam])]
        ms = [(s, e) for s, e in ms if e > s]
        for i, (s, e) in enumerate(ms):
            rows.append(TraceRow(s, door, beam, True))
            rows.append(TraceRow(e, door, beam, False))
            nxt = ms[i + 1][0] if i + 1 < len(ms) else s + 10**9
            for edge, level, room in ((s, True, e - s), (e, False, nxt - e)):
                if rng.random() < profile.p_bounce and room > db + 2:
                    w = rng.randint(1, max(1, db // 2 - 1))
                    a = rng.randint(1, max(1, min(room - w - 1, db // 2)))
                    rows.append(TraceRow(edge + a, door, beam, not level))
                    rows.append(TraceRow(edge + a + w, door, beam, level))
        # Lone glitches on an idle beam: shorter than the debounce time.
        n = int(rng.expovariate(1.0) * profile.glitches_per_min * duration_s / 60.0)
        for _ in range(n):
            t = rng.randint(0, max(0, round(duration_s * 1000) - db))
            if any(s - db <= t <= e + db for s, e in ms):
                continue
            w = rng.randint(1, max(1, db - 2))
            rows.append(TraceRow(t, door, beam, True))
            rows.append(TraceRow(t + w, door, beam, False))
    rows.sort(key=lambda r: (r.t_ms, r.beam))
    return rows


Mode = Literal["separable", "tailgating", "dense"]

PROFILES: dict[str, DoorwayProfile] = {
    "separable": DoorwayProfile(),
    "tailgating": DoorwayProfile(p_tailgate=0.3),
    "dense": DoorwayProfile(
        rate_per_min=15.0, p_tailgate=0.6, tailgate_gap=(0.05, 1.0), p_abort=0.08
    ),
}


def simulate(
    doors: Iterable[str],
    duration_s: float,
    profile: DoorwayProfile | None = None,
    seed: int = 0,
) -> tuple[list[TraceRow], Truth]:
    """A seeded, reproducible trace for several doors and the counts that are true."""
    profile = profile or DoorwayProfile()
    rng = random.Random(seed)
    rows: list[TraceRow] = []
    truth = Truth()
    for door in doors:
        truth.doors.setdefault(door, {"in": 0, "out": 0})
        spacing = rng.uniform(*profile.spacing_m)
        passages, stuck = door_passages(rng, duration_s, profile, spacing)
        for p in passages:
            if p.counts:
                truth.add(door, p.dir)
        truth.stuck += len(stuck)
        rows.extend(render_door(rng, door, passages, stuck, spacing, profile, duration_s))
    rows.sort(key=lambda r: r.t_ms)
    return rows, truth
