"""Which crossings live occupancy has already applied, in memory that does not grow with
the day's traffic (docs/collector.md, "Exactly-once occupancy").

A crossing's key is `(agent, point time)`. Per agent this keeps the point times applied
since the last reset in a sorted array, but only the newest `keep` to `2 * keep` of them:
older ones are forgotten and the agent's **low-water mark** rises to the newest time
forgotten. The invariant: every applied time above the low-water mark is in the array.
So for a time above the mark the answer is exact (in the array: a duplicate; not: new),
and for a time at or below it the answer is "check": the collector asks InfluxDB whether
the crossing's point is already stored (every applied crossing is written before the
next check is made, docs/collector.md), which is the rare path of a late re-delivery.

An agent's events arrive mostly in order, so an add is an append; 8 bytes a key."""

from __future__ import annotations

import enum
from array import array
from bisect import bisect_left

NO_MARK = -(2**63)
"""The low-water mark of an agent nothing was forgotten of: every key is above it."""


class Verdict(enum.Enum):
    NEW = "new"
    """Not applied before; now recorded."""
    DUPLICATE = "duplicate"
    CHECK = "check"
    """At or below the agent's low-water mark: only InfluxDB can tell."""


class _Agent:
    __slots__ = ("keys", "low")

    def __init__(self) -> None:
        self.keys = array("q")
        self.low = NO_MARK


class RecentKeys:
    def __init__(self, keep: int = 4096) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")
        self.keep = keep
        self._agents: dict[str, _Agent] = {}

    def add(self, agent: str, time_ns: int) -> Verdict:
        """Record one applied key. Never forgets anything itself (see `trim`), so keys
        added since the last trim are always answered exactly."""
        a = self._agents.get(agent)
        if a is None:
            a = self._agents[agent] = _Agent()
        if time_ns <= a.low:
            return Verdict.CHECK
        keys = a.keys
        if not keys or time_ns > keys[-1]:
            keys.append(time_ns)
            return Verdict.NEW
        i = bisect_left(keys, time_ns)
        if keys[i] == time_ns:
            return Verdict.DUPLICATE
        keys.insert(i, time_ns)
        return Verdict.NEW

    def trim(self, agent: str) -> None:
        """Forget an agent's oldest keys once it has more than `2 * keep`: the mark
        rises to the newest forgotten. Called between messages, so a message's own keys
        stay exact while it is applied."""
        a = self._agents.get(agent)
        if a is None or len(a.keys) <= 2 * self.keep:
            return
        cut = len(a.keys) - self.keep
        a.low = a.keys[cut - 1]
        del a.keys[:cut]

    def low_water(self, agent: str) -> int:
        a = self._agents.get(agent)
        return NO_MARK if a is None else a.low

    def held(self, agent: str) -> int:
        """Keys held for one agent: at most `2 * keep` after a trim."""
        a = self._agents.get(agent)
        return 0 if a is None else len(a.keys)

    def clear(self) -> None:
        """The daily reset: nothing of the new window is applied yet."""
        self._agents.clear()

    def __len__(self) -> int:
        return sum(len(a.keys) for a in self._agents.values())

    @property
    def agents(self) -> int:
        return len(self._agents)

    def nbytes(self) -> int:
        """Memory held by the keys (the arrays' buffers, excluding per-agent overhead)."""
        return sum(a.keys.buffer_info()[1] * a.keys.itemsize for a in self._agents.values())
