"""From planned crossings to beam traces and back: the physics of a crowd at each door,
and the real detectors counting it. Pure and seeded.

Each true crossing becomes a body walking through the door's two beams
(`doorway.Passage`, speeds and depths as in the doorway simulator). Bodies at one door
take turns, as people do in a doorway one person wide: a body starts once the one before
has cleared the beams, except that someone right behind a person going the same way may
walk as a close follower (tailgating), and a few people step into the beams and turn back
before going through. `doorway.render_door` adds contact chatter and stray glitches.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from footfall_edge.detection import (
    BEAMS,
    Crossing,
    DetectorConfig,
    Direction,
    DoorDetector,
    DoorEvent,
)
from footfall_edge.simulation.doorway import DoorwayProfile, Passage, _speed, render_door
from footfall_edge.trace import TraceRow

from .visitors import Plan

CROWD = DoorwayProfile(p_abort=0.03, p_tailgate=0.3, glitches_per_min=0.2)
"""Default: 3% turn back once before going through; of two people going the same way
within `FOLLOW_S`, 30% walk as a close follower (the detector's hard case)."""
SEPARABLE = DoorwayProfile(p_abort=0.03, p_tailgate=0.0, glitches_per_min=0.2)
"""Nobody closer than a step: what the detector counts exactly (turn-backs included)."""
PROFILES = {"crowd": CROWD, "separable": SEPARABLE}

FOLLOW_S = 1.5
"""Two people at one door this close in time, same direction, may walk as one group."""
CLEAR_GAP_S = 0.3
"""A body starts at least this long after the one before has cleared both beams."""


@dataclass
class DoorTrace:
    door: str
    spacing_m: float
    passages: list[Passage]
    rows: list[TraceRow]


@dataclass
class CrowdTrace:
    """Every door's beam trace for a window; trace time 0 is `start_ms` (epoch ms)."""

    start_ms: int
    duration_s: float
    doors: dict[str, DoorTrace] = field(default_factory=dict)

    def true_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for door, trace in self.doors.items():
            counts = out.setdefault(door, {"in": 0, "out": 0})
            for p in trace.passages:
                if p.counts:
                    counts[p.dir] += 1
        return out

    def rows(self, doors: Iterable[str] | None = None) -> list[TraceRow]:
        """The rows of some doors (default all) in one time-ordered trace."""
        chosen = [self.doors[d].rows for d in (self.doors if doors is None else doors)]
        return list(heapq.merge(*chosen, key=lambda r: r.t_ms))

    @property
    def transitions(self) -> int:
        return sum(len(t.rows) for t in self.doors.values())


def door_passages(
    rng: random.Random,
    times: list[tuple[float, Direction]],
    spacing_m: float,
    profile: DoorwayProfile,
) -> list[Passage]:
    """Bodies for the (trace seconds, direction) crossings of one door, in time order."""
    out: list[Passage] = []
    free_at = 0.0
    prev: Passage | None = None
    for want, dir_ in sorted(times):
        depth = rng.uniform(*profile.depth_m)
        if (
            prev is not None
            and prev.counts
            and prev.dir == dir_
            and want - prev.t0_s < FOLLOW_S
            and rng.random() < profile.p_tailgate
        ):
            # Right behind the one before, at its pace: a gap shorter than the beams' spacing.
            gap = rng.uniform(*profile.tailgate_gap) * spacing_m
            body = Passage(
                prev.t0_s + (prev.depth_m + gap) / prev.speed_mps, dir_, depth, prev.speed_mps
            )
        else:
            speed = _speed(rng, *profile.speed_mps)
            if rng.random() < profile.p_abort:  # hesitates: in, back out, then through
                t0 = max(want - rng.uniform(2.0, 6.0), free_at, 0.5)
                back = Passage(
                    t0,
                    dir_,
                    depth,
                    speed,
                    turn_at_m=rng.uniform(0.02, spacing_m + depth * 0.8),
                    pause_s=rng.uniform(0.2, 1.5),
                    back_speed_mps=speed * rng.uniform(0.7, 1.2),
                )
                out.append(back)
                free_at = max(free_at, back.clear_at(spacing_m) + CLEAR_GAP_S)
            body = Passage(max(want, free_at, 0.5), dir_, depth, speed)
        out.append(body)
        free_at = max(free_at, body.clear_at(spacing_m) + CLEAR_GAP_S)
        prev = body
    return out


def render_crowd(
    plan: Plan,
    doors: Iterable[str],
    rng: random.Random,
    profile: DoorwayProfile = CROWD,
) -> CrowdTrace:
    """Beam traces of every door for the plan's window (doors without traffic included,
    with their stray glitches)."""
    start = plan.start_ms / 1000.0
    duration = (plan.end_ms - plan.start_ms) / 1000.0
    by_door: dict[str, list[tuple[float, Direction]]] = {d: [] for d in doors}
    for c in plan.crossings:
        by_door[c.door].append((c.t_s - start, c.dir))
    crowd = CrowdTrace(plan.start_ms, duration)
    quiet = replace(profile, glitches_per_min=0.0)
    for door, times in by_door.items():
        door_rng = random.Random(rng.getrandbits(64))
        spacing = door_rng.uniform(*profile.spacing_m)
        passages = door_passages(door_rng, times, spacing, profile)
        end = max([duration, *(p.clear_at(spacing) + 1.0 for p in passages[-1:])])
        rows = render_door(door_rng, door, passages, [], spacing, quiet, end)
        rows += _glitches(door_rng, door, rows, spacing, profile, end)
        rows.sort(key=lambda r: (r.t_ms, r.beam))
        crowd.doors[door] = DoorTrace(door, spacing, passages, rows)
    return crowd


def _glitches(
    rng: random.Random,
    door: str,
    bodies: list[TraceRow],
    spacing_m: float,
    profile: DoorwayProfile,
    duration_s: float,
) -> list[TraceRow]:
    """Stray pulses on idle beams. `render_door` looks for a free place for each glitch
    by scanning every blocked interval, which is slow for a day of traffic; here they are
    drawn on an empty door and those near a body's edges are dropped by bisection."""
    pulses = render_door(rng, door, [], [], spacing_m, profile, duration_s)
    db = profile.debounce_ms
    out: list[TraceRow] = []
    for beam in BEAMS:
        starts: list[int] = []
        ends: list[int] = []
        for r in bodies:  # blocked spans (chatter splits some; the margin covers that)
            if r.beam != beam:
                continue
            if r.blocked:
                starts.append(r.t_ms - db)
            elif len(ends) < len(starts):
                ends.append(r.t_ms + db)
        edges = [r for r in pulses if r.beam == beam]  # (blocked, clear) pairs in order
        for on, off in zip(edges[::2], edges[1::2], strict=True):
            i = bisect.bisect_right(starts, off.t_ms) - 1
            if i < 0 or ends[i] < on.t_ms:
                out += (on, off)
    return out


@dataclass(frozen=True)
class Detected:
    """A detector's event with its wall-clock time."""

    wall_ms: int
    event: DoorEvent


def detect_door(rows: Iterable[TraceRow], detector: DoorDetector) -> Iterator[DoorEvent]:
    """One door's trace through its detector in virtual time."""
    last = 0
    for r in rows:
        last = r.t_ms
        yield from detector.feed(r.t_ms, r.beam, r.blocked)
    yield from detector.finish(last + 60_000)  # settle: a minute of quiet after the trace


def detect_crowd(
    crowd: CrowdTrace, configs: Mapping[str, DetectorConfig] | None = None
) -> list[Detected]:
    """Every door through a fresh `DoorDetector`; events in time order."""
    out: list[Detected] = []
    for door, trace in crowd.doors.items():
        det = DoorDetector(door, (configs or {}).get(door))
        out += [Detected(crowd.start_ms + e.t_ms, e) for e in detect_door(trace.rows, det)]
    out.sort(key=lambda d: (d.wall_ms, d.event.door))
    return out


def detected_counts(
    events: Iterable[Detected], doors: Iterable[str] = ()
) -> dict[str, dict[str, int]]:
    out = {d: {"in": 0, "out": 0} for d in doors}
    for d in events:
        if isinstance(d.event, Crossing):
            out.setdefault(d.event.door, {"in": 0, "out": 0})[d.event.dir] += 1
    return out


def accuracy(
    true: Mapping[str, Mapping[str, int]], counted: Mapping[str, Mapping[str, int]]
) -> float:
    """1 - sum |counted - true| / true crossings (the edge benchmark's measure)."""
    total = sum(v for c in true.values() for v in c.values())
    if not total:
        return 1.0
    err = sum(
        abs(counted.get(door, {}).get(k, 0) - true.get(door, {}).get(k, 0))
        for door in set(true) | set(counted)
        for k in ("in", "out")
    )
    return 1.0 - err / total
