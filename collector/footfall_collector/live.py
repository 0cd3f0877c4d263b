"""The live state of one site beside the pure `OccupancyEngine`: which crossings were
applied (so that a re-delivery is not counted twice), crossings held for the coming daily
reset, the reset itself, which zones changed and must be published, and which agents are
online. Thread-safe: paho's thread applies messages, the writer applies checked crossings,
the ticker resets and publishes.

No I/O: what it learns from InfluxDB (a rebuild's pages, which keys are stored) is handed
in, and what it wants written comes back as points."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from footfall_contract.hours import last_reset_before, next_reset_after, window_of
from footfall_contract.messages import Occupancy
from footfall_contract.site import Site
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import zone_occupancy_topic

from .dedup import RecentKeys, Verdict
from .ingest import CrossingSeen, Outcome
from .metrics import Metrics
from .occupancy import OccupancyEngine, ZoneState
from .points import Point, UniqueTimes
from .schema import (
    AGENT_RETIRED,
    agent_status_point,
    history_pending_point,
    occupancy_drift_point,
    occupancy_point,
    occupancy_reset_point,
)

log = logging.getLogger(__name__)


@dataclass
class _Agent:
    online: bool
    last_seen_ms: int
    epoch: str = ""


class LiveOccupancy:
    def __init__(
        self, site: Site, metrics: Metrics, keys_per_agent: int, unique: UniqueTimes
    ) -> None:
        self.site = site
        self.metrics = metrics
        self.engine = OccupancyEngine(site)
        self._unique = unique
        self._lock = threading.Lock()
        self._recent = RecentKeys(keys_per_agent)
        self._dirty: set[str] = set()  # zones to publish on MQTT
        self._held: list[CrossingSeen] = []
        self._pending: dict[tuple[str, int], ZoneState] = {}  # (zone, ms) -> state
        self._drift_written: dict[str, int] = {}
        self._agents: dict[str, _Agent] = {}
        self.last_reset_ms = 0
        self.next_reset_ms = 0

    # -- rebuild from InfluxDB -----------------------------------------------------------

    def begin_rebuild(self, now: int) -> None:
        """From scratch, in the reset window of `now`."""
        with self._lock:
            self.engine.reset()
            self._recent.clear()
            self._held = []
            self.last_reset_ms = last_reset_before(self.site, now)
            self.next_reset_ms = next_reset_after(self.site, now)

    def rebuild_page(self, page: dict[str, Any]) -> int:
        """Rows (time, door, dir, agent) in time order: a key already recorded (or below
        its agent's mark, which in time order means seen before) is the same crossing
        stored under another tag set. Crossings stamped after the coming reset are held
        for it, as live ones are. The hot loop of a restart: millions of rows on a busy
        day. Returns how many were applied."""
        cols = page["columns"]
        i_time, i_door, i_dir, i_agent = (cols.index(c) for c in ("time", "door", "dir", "agent"))
        applied = 0
        agents: set[str] = set()
        held_from = self.next_reset_ms * 1_000_000
        add, apply, knows, new = self._recent.add, self.engine.apply, self.engine.knows, Verdict.NEW
        with self._lock:
            for row in page["values"]:
                agent, time_ns, door = row[i_agent], int(row[i_time]), row[i_door]
                if not agent or not knows(door):
                    continue
                if time_ns >= held_from:
                    c = CrossingSeen(
                        agent, (agent, time_ns), time_ns // 1_000_000, door, row[i_dir]
                    )
                    self._held.append(c)
                    continue
                agents.add(agent)
                if add(agent, time_ns) is new:
                    apply(door, row[i_dir])
                    applied += 1
            for agent in agents:
                self._recent.trim(agent)
        return applied

    def touch_all(self) -> None:
        """Every zone to be published again."""
        with self._lock:
            self._dirty.update(z.id for z in self.site.zones)

    # -- messages ------------------------------------------------------------------------

    def window_start(self, ts_ms: int) -> int:
        """The reset window an event belongs to (for its history); today's without a
        calendar lookup. Read without the lock: a reset only moves both bounds forward."""
        last, nxt = self.last_reset_ms, self.next_reset_ms
        if last <= ts_ms < nxt:
            return last
        return window_of(self.site, ts_ms).start_ms

    def apply(self, out: Outcome, now: int) -> tuple[list[Point], list[CrossingSeen]]:
        """Occupancy and agent state from one message: the points to write, and the
        crossings only InfluxDB can tell about (below their agent's low-water mark)."""
        points: list[Point] = []
        check: list[CrossingSeen] = []
        changed: set[str] = set()
        with self._lock:
            for c in out.crossings:
                changed |= self._apply_crossing(c, check)
            if out.crossings and out.agent is not None:
                self._recent.trim(out.agent)
            self._changed(changed, now)
            if out.agent is not None:
                points += self._agent_seen(out, out.agent, now)
        return points, check

    def apply_checked(
        self, check: list[CrossingSeen], stored: set[tuple[str, int]], now: int
    ) -> None:
        """Crossings that were checked against InfluxDB: applied unless `stored` (the keys
        InfluxDB holds) has them."""
        stored = set(stored)
        changed: set[str] = set()
        with self._lock:
            for c in check:
                if c.ts_ms < self.last_reset_ms:
                    self.metrics.late.inc()
                elif c.ts_ms >= self.next_reset_ms:
                    self._held.append(c)
                elif c.key in stored:
                    self.metrics.duplicates.inc()
                else:
                    stored.add(c.key)  # a second copy in the same message is a duplicate
                    changed.update(self.engine.apply(c.door, c.dir))
            self._changed(changed, now)

    def _changed(self, zones: set[str], now: int) -> None:
        if zones:
            self._dirty |= zones
            for z in zones:
                # One point per zone and millisecond, with the last value of that ms:
                # what InfluxDB would keep anyway, without writing the ones it overwrites.
                self._pending[(z, now)] = self.engine.state(z)

    def _apply_crossing(self, c: CrossingSeen, check: list[CrossingSeen]) -> set[str]:
        """One crossing into live occupancy, once (under the lock); the zones changed. A
        key at or below its agent's low-water mark goes to `check` (docs/collector.md)."""
        if c.ts_ms < self.last_reset_ms:
            self.metrics.late.inc()  # history only: it belongs before the last reset
            return set()
        if c.ts_ms >= self.next_reset_ms:
            self._held.append(c)  # after the coming reset: counted once it is done
            return set()
        verdict = self._recent.add(c.key[0], c.key[1])
        if verdict is Verdict.DUPLICATE:
            self.metrics.duplicates.inc()
            return set()
        if verdict is Verdict.CHECK:
            check.append(c)
            return set()
        return set(self.engine.apply(c.door, c.dir))

    def _agent_seen(self, out: Outcome, agent: str, now: int) -> list[Point]:
        points: list[Point] = []
        if out.retired:
            # forgotten before the point, so that agents_online counts without it
            self._agents.pop(agent, None)
            points.append(self._agent_point(agent, False, AGENT_RETIRED, now))
            log.info("agent %s retired (its retained status was cleared)", agent)
        elif out.status is not None:
            online = out.status.state == "online"
            epoch, sw = out.status.epoch, out.status.sw
            points.append(self._agent_point(agent, online, out.status.state, now, epoch, sw))
            self._agents[agent] = _Agent(online, now, out.status.epoch)
        elif out.health or out.events:
            known = self._agents.get(agent)
            if known is None or not known.online:
                points.append(self._agent_point(agent, True, "active", now))
            self._agents[agent] = _Agent(True, now, known.epoch if known else "")
        return points

    def _agent_point(
        self, agent: str, online: bool, reason: str, now: int, epoch: str = "", sw: str = ""
    ) -> Point:
        self.metrics.agents_online.labels(self.site.site).set(
            sum(a.online for a in self._agents.values())
        )
        return agent_status_point(
            self.site.site, agent, online, reason, self._unique.ns(now), epoch, sw
        )

    # -- periodic ------------------------------------------------------------------------

    def tick(
        self, now: int, heartbeat: bool, silent_ms: float
    ) -> tuple[list[Point], list[ZoneState]]:
        """The daily reset when due, every zone's occupancy on a `heartbeat`, agents
        silent for longer than `silent_ms` recorded offline; and the states of the zones
        to publish (taken: `touch` them again if they cannot be published now)."""
        points: list[Point] = []
        with self._lock:
            if now >= self.next_reset_ms:
                points += self._reset(now)
            if heartbeat:
                points += self._occupancy_points({z.id for z in self.site.zones}, now)
                self._dirty.update(z.id for z in self.site.zones)
            for agent, a in self._agents.items():
                if a.online and now - a.last_seen_ms > silent_ms:
                    a.online = False
                    points.append(self._agent_point(agent, False, "silent", now))
            dirty, self._dirty = self._dirty, set()
            states = [self.engine.state(z) for z in sorted(dirty)]
        return points, states

    def touch(self, zones: set[str]) -> None:
        with self._lock:
            self._dirty |= zones

    def _reset(self, now: int) -> list[Point]:
        """The daily reset (under the lock): every zone to 0, what was left recorded."""
        drift = {s.zone: s.drift for s in self.engine.states()}
        before = self.engine.reset()
        self._recent.clear()
        ended = self.last_reset_ms
        self.last_reset_ms = self.next_reset_ms
        self.next_reset_ms = next_reset_after(self.site, max(now, self.last_reset_ms))
        log.info("daily reset: %s", ", ".join(f"{z}={c}" for z, c in before.items() if c))
        site = self.site.site
        reset_ns = self.last_reset_ms * 1_000_000
        points = [
            # the window that just ended: every hour of it gets its rollup, quiet ones too
            history_pending_point(site, ended, ended, self._unique.ns(now)),
            *(occupancy_reset_point(site, z, c, drift[z], reset_ns) for z, c in before.items()),
        ]
        # Held crossings were written when they came, applied only now: nothing is
        # forgotten before the trim below, so their duplicates are found here and none
        # needs the InfluxDB check (which takes a stored crossing as applied).
        held, self._held = self._held, []
        check: list[CrossingSeen] = []
        for c in held:
            self._apply_crossing(c, check)
        for agent in {c.agent for c in held}:
            self._recent.trim(agent)
        points += self._occupancy_points({z.id for z in self.site.zones}, now)
        self._dirty.update(z.id for z in self.site.zones)
        return points

    def _occupancy_points(self, zones: set[str], now: int) -> list[Point]:
        """Occupancy of these zones now (under the lock)."""
        return self._state_points([self.engine.state(z) for z in sorted(zones)], now)

    def _state_points(self, states: list[ZoneState], now: int) -> list[Point]:
        """`occupancy` points, and `occupancy_drift` where the drift changed."""
        points = []
        site, time_ns = self.site.site, now * 1_000_000
        for s in states:
            z = s.zone
            points.append(occupancy_point(site, z, s.count, s.capacity, time_ns))
            if self._drift_written.get(z) != s.drift:
                self._drift_written[z] = s.drift
                points.append(occupancy_drift_point(site, z, s.drift, time_ns))
            self.metrics.zone_occupancy.labels(site, z).set(s.count)
        return points

    def take_pending_lines(self) -> list[str]:
        """The occupancy points of the changes since the last call, in time order."""
        with self._lock:
            pending, self._pending = self._pending, {}
            return [
                p.line()
                for (_, t), s in sorted(pending.items(), key=lambda i: i[0][1])
                for p in self._state_points([s], t)
            ]

    def zone_message(self, state: ZoneState, now: int) -> tuple[str, str]:
        """Topic and payload of a zone's retained occupancy (docs/spec.md §2)."""
        payload = Occupancy(
            count=state.count,
            capacity=state.capacity,
            ratio=None if state.ratio is None else round(state.ratio, 4),
            ts=format_ts(now),
        )
        return zone_occupancy_topic(self.site.site, state.zone), payload.model_dump_json()

    # -- status --------------------------------------------------------------------------

    def occupancy(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                s.zone: {
                    "count": s.count,
                    "capacity": s.capacity,
                    "ratio": s.ratio,
                    "drift": s.drift,
                }
                for s in self.engine.states()
            }

    @property
    def dedup_keys(self) -> int:
        """Crossing keys held for exactly-once occupancy (bounded per agent)."""
        return len(self._recent)
