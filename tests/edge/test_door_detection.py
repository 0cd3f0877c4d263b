"""docs/spec.md §1 door semantics, table-driven, plus properties over simulated doorways."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall_edge.detection import Beam, Crossing, DetectorConfig, Direction, DoorDetector, Fault
from footfall_edge.simulation.doorway import DoorwayProfile, Passage, render_door
from footfall_edge.trace import replay

O: Beam = "outer"  # noqa: E741
I: Beam = "inner"  # noqa: E741


def run(
    seq: list[tuple[int, Beam, int]], config: DetectorConfig | None = None, end: int | None = None
) -> tuple[list[Direction], list[Fault]]:
    det = DoorDetector("d", config)
    events = []
    for t, beam, level in seq:
        events += det.feed(t, beam, bool(level))
    events += det.finish(end if end is not None else seq[-1][0] + 1000)
    dirs = [e.dir for e in events if isinstance(e, Crossing)]
    faults = [e for e in events if isinstance(e, Fault)]
    return dirs, faults


SCENARIOS: dict[str, tuple[list[tuple[int, Beam, int]], list[str]]] = {
    "walk in": ([(0, O, 1), (100, I, 1), (300, O, 0), (400, I, 0)], ["in"]),
    "walk out": ([(0, I, 1), (100, O, 1), (300, I, 0), (400, O, 0)], ["out"]),
    "body shallower than the beam spacing": (
        [(0, O, 1), (50, O, 0), (100, I, 1), (150, I, 0)],
        ["in"],
    ),
    "turns back at the outer beam": ([(0, O, 1), (300, O, 0)], []),
    "turns back after reaching the inner beam": (
        [(0, O, 1), (100, I, 1), (200, I, 0), (300, O, 0)],
        [],
    ),
    "turns back from the inner beam only": (
        [(0, O, 1), (100, I, 1), (300, O, 0), (350, O, 1), (400, I, 0), (650, O, 0)],
        [],
    ),
    "out, turning back at the inner beam": ([(0, I, 1), (300, I, 0)], []),
    "tailgating in": (
        [
            (0, O, 1),
            (100, I, 1),
            (300, O, 0),
            (350, O, 1),
            (400, I, 0),
            (450, I, 1),
            (650, O, 0),
            (750, I, 0),
        ],
        ["in", "in"],
    ),
    "tailgating out": (
        [
            (0, I, 1),
            (100, O, 1),
            (300, I, 0),
            (350, I, 1),
            (400, O, 0),
            (450, O, 1),
            (650, I, 0),
            (750, O, 0),
        ],
        ["out", "out"],
    ),
    "tailgater hidden on the inner beam": (  # inner never clears between the two
        [(0, O, 1), (100, I, 1), (300, O, 0), (330, O, 1), (500, O, 0), (600, I, 0)],
        ["in", "in"],
    ),
    "tailgater hidden on the outer beam": (  # outer never clears between the two
        [(0, O, 1), (100, I, 1), (300, I, 0), (340, I, 1), (500, O, 0), (600, I, 0)],
        ["in", "in"],
    ),
    "one in then one out": (
        [
            (0, O, 1),
            (100, I, 1),
            (300, O, 0),
            (400, I, 0),
            (2000, I, 1),
            (2100, O, 1),
            (2300, I, 0),
            (2400, O, 0),
        ],
        ["in", "out"],
    ),
    "chatter shorter than the debounce time": (
        [(0, O, 1), (5, O, 0), (9, O, 1), (12, O, 0), (500, I, 1), (515, I, 0)],
        [],
    ),
    "bouncy edges still count once": (
        [
            (0, O, 1),
            (4, O, 0),
            (6, O, 1),
            (100, I, 1),
            (103, I, 0),
            (105, I, 1),
            (300, O, 0),
            (305, O, 1),
            (308, O, 0),
            (400, I, 0),
            (402, I, 1),
            (404, I, 0),
        ],
        ["in"],
    ),
    "repeated readings of the same level": (
        [(0, O, 1), (10, O, 1), (100, I, 1), (150, I, 1), (300, O, 0), (400, I, 0), (410, I, 0)],
        ["in"],
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    seq, expected = SCENARIOS[name]
    dirs, faults = run(seq)
    assert dirs == expected
    assert faults == []


def test_invert_swaps_directions() -> None:
    seq, _ = SCENARIOS["walk in"]
    assert run(seq, DetectorConfig(invert=True))[0] == ["out"]


def test_debounce_is_configurable() -> None:
    pulse = [(0, O, 1), (30, O, 0), (40, I, 1), (70, I, 0)]  # 30 ms beams, a gap between
    assert run(pulse)[0] == ["in"]
    assert run(pulse, DetectorConfig(debounce_ms=50))[0] == []


def test_stuck_beam_raises_and_clears_and_counts_nothing() -> None:
    seq = [(0, O, 1)]
    # Visitors keep walking past the other beam while the outer one is stuck.
    for k in range(5):
        t = 2000 + k * 5000
        seq += [(t, I, 1), (t + 300, I, 0)]
    seq += [(40_000, O, 0)]
    seq += [(41_000, O, 1), (41_100, I, 1), (41_300, O, 0), (41_400, I, 0)]
    dirs, faults = run(seq)
    assert dirs == ["in"]  # only the one after the beam cleared
    assert [(f.t_ms, f.fault, f.active, f.source) for f in faults] == [
        (30_000, "beam_blocked", True, "d/outer"),
        (40_000, "beam_blocked", False, "d/outer"),
    ]


def test_stuck_limit_is_configurable_and_needs_time_to_pass() -> None:
    det = DoorDetector("d", DetectorConfig(blocked_ms=5000))
    assert det.feed(0, O, True) == []
    assert det.advance(4999) == []
    assert det.advance(5000) == [Fault(5000, "d", "d/outer", "beam_blocked", True)]
    assert det.advance(60_000) == []  # raised once


def test_flapping_beam_raises_once_and_clears_when_quiet() -> None:
    cfg = DetectorConfig(flap_changes=20, flap_window_ms=2000)
    det = DoorDetector("d", cfg)
    events = []
    for k in range(60):  # a 3 ms flicker every 50 ms for 3 s
        t = k * 50
        events += det.feed(t, I, True) + det.feed(t + 3, I, False)
    events += det.advance(20_000)
    faults = [(f.fault, f.active) for f in events if isinstance(f, Fault)]
    assert faults == [("beam_flapping", True), ("beam_flapping", False)]
    cleared = next(f for f in events if isinstance(f, Fault) and not f.active)
    assert 3000 < cleared.t_ms <= 3000 + 2000
    assert [e for e in events if isinstance(e, Crossing)] == []


def test_busy_door_is_not_flapping() -> None:
    seq = []
    for k in range(40):  # a crossing every 600 ms for 24 s
        t = k * 600
        seq += [(t, O, 1), (t + 100, I, 1), (t + 300, O, 0), (t + 400, I, 0)]
    dirs, faults = run(seq)
    assert dirs == ["in"] * 40
    assert faults == []


def test_time_never_runs_backwards() -> None:
    det = DoorDetector("d")
    det.feed(1000, O, True)
    det.feed(900, I, True)  # late reading: treated as happening now
    det.feed(1300, O, False)
    assert [
        e.dir for e in det.feed(1400, I, False) + det.finish(3000) if isinstance(e, Crossing)
    ] == ["in"]


def test_bad_beam_name_is_refused() -> None:
    with pytest.raises(ValueError, match="beam must be 'outer' or 'inner'"):
        DoorDetector("d").feed(0, "middle", True)  # type: ignore[arg-type]


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="blocked_ms"):
        DetectorConfig(debounce_ms=50, blocked_ms=40)


# -- properties over simulated bodies ------------------------------------------------

passages = st.builds(
    lambda d, depth, speed, turn, pause: (d, depth, speed, turn, pause),
    st.sampled_from(["in", "out"]),
    st.floats(0.15, 0.45),
    st.floats(0.3, 4.0),
    st.one_of(st.none(), st.floats(0.0, 1.0)),
    st.floats(0.1, 2.0),
)


@settings(max_examples=200, deadline=None)
@given(
    bodies=st.lists(passages, min_size=1, max_size=12),
    spacing=st.floats(0.05, 0.10),
    bounce=st.floats(0.0, 0.6),
    seed=st.integers(0, 2**32 - 1),
)
def test_separable_bodies_are_counted_exactly(
    bodies: list[tuple[str, float, float, float | None, float]],
    spacing: float,
    bounce: float,
    seed: int,
) -> None:
    """Whatever their speed, depth, direction or turn-back point, bodies one at a time are
    counted exactly, with contact chatter at their edges."""
    t = 1.0
    ps = []
    for dir_, depth, speed, turn, pause in bodies:
        turn_at = None if turn is None else 0.01 + turn * (spacing + depth * 0.8)
        p = Passage(t, dir_, depth, speed, turn_at, pause if turn_at else 0.0)  # type: ignore[arg-type]
        ps.append(p)
        t = p.clear_at(spacing) + 0.5
    profile = DoorwayProfile(p_bounce=bounce, glitches_per_min=2.0)
    rows = render_door(random.Random(seed), "d", ps, [], spacing, profile, t + 1)
    got = replay(rows).doors.get("d", {"in": 0, "out": 0})
    assert got == {
        "in": sum(1 for p in ps if p.counts and p.dir == "in"),
        "out": sum(1 for p in ps if p.counts and p.dir == "out"),
    }


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 400), st.sampled_from([O, I]), st.booleans()), max_size=200)
)
def test_any_reading_sequence_is_safe(steps: list[tuple[int, str, bool]]) -> None:
    """Garbage in: no crash, faults alternate raised/cleared per source, no negative time."""
    det = DoorDetector("d", DetectorConfig(blocked_ms=2000, flap_changes=10, flap_window_ms=1000))
    t = 0
    events = []
    for dt, beam, level in steps:
        t += dt
        events += det.feed(t, beam, level)  # type: ignore[arg-type]
    events += det.finish(t + 5000)
    state: dict[tuple[str, str], bool] = {}
    for e in events:
        if isinstance(e, Fault):
            key = (e.source, e.fault)
            assert state.get(key, False) != e.active
            state[key] = e.active
        assert e.t_ms >= 0
