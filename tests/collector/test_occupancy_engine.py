"""The docs/spec.md §3 door rule over a zone tree, clamping at 0, drift, reset."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from footfall_collector.occupancy import OccupancyEngine
from tests.support.collector import small_site


def counts(engine: OccupancyEngine) -> dict[str, int]:
    return {s.zone: s.count for s in engine.states()}


def test_door_rule_over_nested_zones() -> None:
    e = OccupancyEngine(small_site())
    e.apply("centre-main", "in")  # street -> centre
    assert counts(e) == {"centre": 1, "library": 0, "kela": 0, "youth": 0}
    e.apply("library-main", "in")  # centre -> library: centre keeps the person
    assert counts(e) == {"centre": 1, "library": 1, "kela": 0, "youth": 0}
    e.apply("library-mall", "in")  # mall -> library: both library and centre gain
    assert counts(e) == {"centre": 2, "library": 2, "kela": 0, "youth": 0}
    e.apply("youth-door", "in")  # library -> youth (inside library)
    assert counts(e) == {"centre": 2, "library": 2, "kela": 0, "youth": 1}
    e.apply("kela-door", "in")  # centre -> kela
    assert counts(e) == {"centre": 2, "library": 2, "kela": 1, "youth": 1}
    e.apply("library-mall", "out")
    assert counts(e) == {"centre": 1, "library": 1, "kela": 1, "youth": 1}


def test_never_below_zero_and_the_drift_is_recorded() -> None:
    e = OccupancyEngine(small_site())
    changed = e.apply("library-main", "out")  # nobody was counted in
    assert changed == ["library"]  # library -> centre: the centre holds the person still
    assert e.state("library").count == 0 and e.state("library").drift == 1
    assert e.state("centre").count == 0 and e.state("centre").drift == 0
    assert e.state("library").ratio == 0.0 and e.state("youth").ratio is None


def test_reset_returns_what_was_left() -> None:
    e = OccupancyEngine(small_site())
    e.apply("centre-main", "in")
    e.apply("kela-door", "out")
    assert e.reset() == {"centre": 1, "library": 0, "kela": 0, "youth": 0}
    assert counts(e) == {"centre": 0, "library": 0, "kela": 0, "youth": 0}
    assert e.state("kela").drift == 0


def test_unknown_door_and_direction_are_refused() -> None:
    e = OccupancyEngine(small_site())
    with pytest.raises(KeyError, match="unknown door 'side-door'"):
        e.apply("side-door", "in")
    with pytest.raises(ValueError, match="direction must be"):
        e.apply("centre-main", "sideways")


DOORS = ["centre-main", "library-main", "library-mall", "kela-door", "youth-door"]


@given(st.lists(st.tuples(st.sampled_from(DOORS), st.sampled_from(["in", "out"])), max_size=300))
def test_counts_match_an_unclamped_model_whenever_nothing_was_clamped(
    steps: list[tuple[str, str]],
) -> None:
    """Without clamping the count is exactly ins minus outs per zone; with clamping a
    count is never negative and count - drift equals the unclamped figure."""
    e = OccupancyEngine(small_site())
    raw = {z: 0 for z in counts(e)}
    site = small_site()
    for door, direction in steps:
        e.apply(door, direction)
        d = site.door(door)
        sign = 1 if direction == "in" else -1
        for z in raw:
            if site.contains(z, d.inside) and not site.contains(z, d.outside):
                raw[z] += sign
            elif site.contains(z, d.outside) and not site.contains(z, d.inside):
                raw[z] -= sign
    for s in e.states():
        assert s.count >= 0
        assert s.count - s.drift == raw[s.zone]
