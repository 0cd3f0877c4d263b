"""Points a collector would have written for simulated days, for backfilling InfluxDB
with months of history without a broker or a running collector (the collector itself
accepts events as old as the raw retention, 400 days, but would need both running).
Pure: detected events in, `points.Point`s out, in the schema of docs/spec.md §4 and
with the collector's own builders (`footfall_collector.schema`) —

- `crossing` (site, door, dir, agent; count=1) at `event_time_ns(ts, seq)`, and with it
  its `zone_flow` points (site, zone, dir, agent; count=1), one per zone it enters or
  leaves by the door algebra (`Site.door_effects`), at the same time;
- `fault` (site, agent, source, fault; active, value) likewise;
- `occupancy` (site, zone; count, capacity, ratio) on every change (one point per zone
  and millisecond, the last value of it) and at every whole minute, from the same
  `OccupancyEngine` the collector uses;
- `occupancy_drift` (clamped) when it changes, `occupancy_reset` (count_before,
  clamped_before) at the site's daily `reset_at`.

`occupancy_history` and the visit rollups are not computed here: the backfill runs the
collector's own history worker over the days written (`backfill.backfill`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final

from footfall_collector.occupancy import OccupancyEngine, ZoneState
from footfall_collector.points import Point, event_time_ns
from footfall_collector.schema import (
    crossing_point,
    fault_point,
    occupancy_drift_point,
    occupancy_point,
    occupancy_reset_point,
    zone_flow_points,
)
from footfall_contract.hours import last_reset_before, next_reset_after
from footfall_contract.site import Site
from footfall_edge.detection import Crossing, Fault

from .crowd import Detected

HEARTBEAT_MS: Final = 60_000
_RESET, _BEAT = 0, 1  # at the same instant the reset comes first


def reset_instants(site: Site, start_ms: int, end_ms: int) -> list[int]:
    """The site's daily reset times (local `reset_at`) in [start_ms, end_ms)."""
    t = last_reset_before(site, start_ms)
    if t < start_ms:
        t = next_reset_after(site, start_ms)
    out = []
    while t < end_ms:
        out.append(t)
        t = next_reset_after(site, t)
    return out


class History:
    """Replays detected events of consecutive windows into points, keeping occupancy
    (and its drift) across windows as the collector would."""

    def __init__(self, site: Site, agent_of: Mapping[str, str]) -> None:
        self.site = site
        self.agent_of = agent_of
        self.engine = OccupancyEngine(site)
        self._drift_written: dict[str, int] = {}
        self.counts = {"crossing": 0, "zone_flow": 0, "fault": 0, "occupancy": 0, "other": 0}
        self._effects = {d.id: site.door_effects(d.id) for d in site.doors}

    def points(self, events: list[Detected], start_ms: int, end_ms: int) -> Iterator[Point]:
        """Points of one window; `events` in time order, within [start_ms, end_ms)."""
        marks = [(t, _RESET) for t in reset_instants(self.site, start_ms, end_ms)]
        first_beat = -(-start_ms // HEARTBEAT_MS) * HEARTBEAT_MS
        marks += [(t, _BEAT) for t in range(first_beat, end_ms, HEARTBEAT_MS)]
        marks.sort()
        seqs: dict[str, int] = {}
        k = 0
        i, n = 0, len(events)
        while i < n:
            t = events[i].wall_ms
            # Resets at or before t come first (a crossing at the reset instant belongs to
            # the new day); a minute mark at t waits until t's crossings are applied.
            while k < len(marks) and (marks[k][0] < t or (marks[k] == (t, _RESET))):
                yield from self._mark(*marks[k])
                k += 1
            changed: set[str] = set()
            while i < n and events[i].wall_ms == t:
                e = events[i].event
                agent = self.agent_of[e.door]
                seq = seqs.get(agent, 0)
                seqs[agent] = seq + 1
                yield from self._event_points(e, agent, t, seq)
                if isinstance(e, Crossing):
                    changed.update(self.engine.apply(e.door, e.dir))
                i += 1
            yield from self._state_points(sorted(changed), t)
        for mark in marks[k:]:
            yield from self._mark(*mark)

    def _event_points(self, e: Crossing | Fault, agent: str, t: int, seq: int) -> Iterator[Point]:
        site = self.site.site
        time_ns = event_time_ns(t, seq)
        if isinstance(e, Crossing):
            self.counts["crossing"] += 1
            yield crossing_point(site, e.door, e.dir, agent, time_ns)
            entered, left = self._effects[e.door]
            if e.dir == "out":
                entered, left = left, entered
            flows = zone_flow_points(site, entered, left, agent, time_ns)
            self.counts["zone_flow"] += len(flows)
            yield from flows
            return
        self.counts["fault"] += 1
        yield fault_point(site, agent, e.source, e.fault, e.active, time_ns)

    def _mark(self, t: int, kind: int) -> Iterator[Point]:
        zones = [z.id for z in self.site.zones]
        if kind == _RESET:
            drift = {s.zone: s.drift for s in self.engine.states()}
            for z, count in self.engine.reset().items():
                self.counts["other"] += 1
                yield occupancy_reset_point(self.site.site, z, count, drift[z], t * 1_000_000)
        yield from self._state_points(zones, t)

    def _state_points(self, zones: list[str], t: int) -> Iterator[Point]:
        for z in zones:
            s: ZoneState = self.engine.state(z)
            self.counts["occupancy"] += 1
            yield occupancy_point(self.site.site, z, s.count, s.capacity, t * 1_000_000)
            if self._drift_written.get(z) != s.drift:
                self._drift_written[z] = s.drift
                self.counts["other"] += 1
                yield occupancy_drift_point(self.site.site, z, s.drift, t * 1_000_000)
