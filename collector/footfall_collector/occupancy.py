"""Live occupancy per zone (docs/spec.md §3), pure: no clock, no I/O.

A crossing `in` through a door adds one to every zone that contains the door's inside
but not its outside, and subtracts one from every zone that contains the outside but not
the inside; `out` does the reverse. A count never goes below 0: the people it would have
gone below are added up as the zone's drift (a sign a sensor misses people)."""

from __future__ import annotations

from dataclasses import dataclass

from footfall_contract.site import Site


@dataclass(frozen=True)
class ZoneState:
    zone: str
    count: int
    capacity: int | None
    drift: int  # people not subtracted because the count was already 0, since the reset

    @property
    def ratio(self) -> float | None:
        return None if not self.capacity else self.count / self.capacity


class OccupancyEngine:
    def __init__(self, site: Site) -> None:
        self.site = site
        self._counts = {z.id: 0 for z in site.zones}
        self._drift = {z.id: 0 for z in site.zones}
        # door -> (zones that gain on `in`, zones that lose on `in`)
        self._effects = {door.id: site.door_effects(door.id) for door in site.doors}

    def knows(self, door: str) -> bool:
        return door in self._effects

    def apply(self, door: str, direction: str) -> list[str]:
        """One crossing; returns the zones whose count or drift changed."""
        try:
            gain, lose = self._effects[door]
        except KeyError:
            raise KeyError(f"unknown door {door!r} for site {self.site.site!r}") from None
        if direction == "out":
            gain, lose = lose, gain
        elif direction != "in":
            raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
        for z in gain:
            self._counts[z] += 1
        for z in lose:
            if self._counts[z] > 0:
                self._counts[z] -= 1
            else:
                self._drift[z] += 1
        return [*gain, *lose]

    def reset(self) -> dict[str, int]:
        """Every count back to 0 (the daily reset); returns the counts it found."""
        before = dict(self._counts)
        for z in self._counts:
            self._counts[z] = 0
            self._drift[z] = 0
        return before

    def state(self, zone: str) -> ZoneState:
        return ZoneState(zone, self._counts[zone], self.site.zone(zone).capacity, self._drift[zone])

    def states(self) -> list[ZoneState]:
        return [self.state(z) for z in self._counts]
