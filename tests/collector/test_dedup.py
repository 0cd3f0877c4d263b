"""The recent-keys structure behind exactly-once occupancy, against a plain set of every
key (the structure it replaces): exact above each agent's low-water mark, "check" at or
below it, and never more than twice `keep` keys an agent."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall_collector.dedup import NO_MARK, RecentKeys, Verdict

# Arrivals: (agent, time) of messages; times from a small range so that duplicates and
# out-of-order arrivals are common.
messages = st.lists(
    st.tuples(
        st.sampled_from(["pi-1", "pi-2", "pi-3"]),
        st.lists(st.integers(0, 400), min_size=1, max_size=12),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(messages, st.integers(1, 8))
def test_answers_match_a_set_of_every_key(arrivals: list[tuple[str, list[int]]], keep: int) -> None:
    recent = RecentKeys(keep)
    applied: set[tuple[str, int]] = set()
    for agent, times in arrivals:
        for t in times:
            mark = recent.low_water(agent)
            verdict = recent.add(agent, t)
            if t <= mark:
                assert verdict is Verdict.CHECK
                # the caller asks InfluxDB, which holds every applied key
                applied.add((agent, t))
            elif (agent, t) in applied:
                assert verdict is Verdict.DUPLICATE
            else:
                assert verdict is Verdict.NEW
                applied.add((agent, t))
        recent.trim(agent)
        assert recent.held(agent) <= 2 * keep
    # every applied key above its agent's mark is held
    for agent, t in applied:
        if t > recent.low_water(agent):
            assert recent.add(agent, t) is Verdict.DUPLICATE


def test_in_order_arrivals_keep_a_bounded_window() -> None:
    recent = RecentKeys(keep=100)
    for t in range(100_000):
        assert recent.add("pi-1", t * 1_000_000) is Verdict.NEW
        recent.trim("pi-1")
    assert 100 <= len(recent) <= 200
    assert recent.nbytes() <= 200 * 8
    assert recent.add("pi-1", 99_999 * 1_000_000) is Verdict.DUPLICATE
    assert recent.add("pi-1", 5) is Verdict.CHECK
    recent.clear()
    assert recent.low_water("pi-1") == NO_MARK and len(recent) == 0
    assert recent.add("pi-1", 5) is Verdict.NEW


def test_keep_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keep must be at least 1, not 0"):
        RecentKeys(0)
