"""Virtual edge agents: the crowd simulator's way onto MQTT, through the real edge code.

- Real time: one `EdgeAgent` per agent with its own gpiozero `MockFactory`, its pins
  driven by a `TraceDriver` from the rendered beam traces. Everything after the pins —
  gpiozero devices, sensing thread, detectors, SQLite outbox, paho publisher — is the
  code a Pi runs.
- Accelerated: the detectors already counted the traces in virtual time; their events
  go through the real `Outbox` and `Publisher` of one virtual agent per agent id, released
  by a `Pacer` so that simulated time runs `speed` times faster than the clock and
  never ahead of it (the collector refuses events stamped in the future).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from footfall_contract.timefmt import format_ts
from footfall_contract.topics import check_id
from footfall_edge.agent import EdgeAgent, OutboxAgent, to_new_event
from footfall_edge.config import DoorSettings, EdgeConfig, PublishSettings
from footfall_edge.mockpins import TraceDriver
from footfall_edge.publisher import Publisher, now_ms
from footfall_edge.sensing import Stamped
from footfall_runtime.config import MqttSettings
from footfall_runtime.service import StopFlag, Stopping

from .crowd import CrowdTrace, Detected

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
MAX_DOORS_PER_AGENT = 13  # GPIO2..GPIO27 of the mock Pi's header, two pins a door


def agent_ids(doors: Iterable[str], grouping: str = "door") -> dict[str, str]:
    """Door -> agent id: `sim-<door>` (one Pi per door) or `sim` (one for all)."""
    out = {}
    for door in doors:
        agent = "sim" if grouping == "single" else f"sim-{door}"[:64].rstrip("-")
        out[door] = check_id(agent, "agent id")
    return out


def agent_doors(agent_of: Mapping[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for door, agent in agent_of.items():
        out.setdefault(agent, []).append(door)
    return out


def edge_config(
    site: str, agent: str, doors: list[str], mqtt: MqttSettings, state_dir: Path
) -> EdgeConfig:
    """A virtual Pi: its doors on GPIO2/3, 4/5, ...; no waiting for NTP."""
    if len(doors) > MAX_DOORS_PER_AGENT:
        raise ValueError(f"agent {agent!r}: at most {MAX_DOORS_PER_AGENT} doors, not {len(doors)}")
    return EdgeConfig(
        site=site,
        agent=agent,
        state_dir=state_dir / agent,
        mqtt=mqtt,
        publish=PublishSettings(wait_for_clock_s=0.0),
        doors=[DoorSettings(d, 2 + 2 * i, 3 + 2 * i) for i, d in enumerate(doors)],
    )


@dataclass(frozen=True)
class Pacer:
    """When an event stamped `wall_ms` may go out: `speed` times faster than the clock
    from `wall0_ms` (the real time at the start) for simulated time from `sim0_ms`, and
    never before its own time. speed 0: as fast as possible (still never early)."""

    sim0_ms: int
    wall0_ms: int
    speed: float

    def due_ms(self, wall_ms: int) -> int:
        if self.speed <= 0:
            return wall_ms
        return max(wall_ms, self.wall0_ms + round((wall_ms - self.sim0_ms) / self.speed))

    @staticmethod
    def window_ending_now(now_ms: int, duration_ms: int, speed: float) -> int:
        """Start of a window of `duration_ms` that, paced at `speed`, ends at the real
        time the run ends: simulated time catches up with the clock just at the end."""
        if speed <= 0:
            return now_ms - duration_ms
        return now_ms - round(duration_ms * (1.0 - 1.0 / speed)) if speed > 1 else now_ms


class VirtualAgent(OutboxAgent):
    """An edge agent without pins: the real outbox and publisher, fed detector events."""

    def __init__(self, config: EdgeConfig) -> None:
        super().__init__(config)
        self.stored = 0

    def store(self, events: list[Detected]) -> None:
        self.outbox.append([to_new_event(Stamped(d.wall_ms, d.event)) for d in events])
        self.stored += len(events)
        self.publisher.wake()

    @property
    def pending(self) -> int:
        return self.outbox.depth


@dataclass
class RunStats:
    stored: int = 0
    unsent: int = 0
    detected: dict[str, dict[str, int]] = field(default_factory=dict)
    interrupted: bool = False


def _wait_connected(publishers: list[Publisher], timeout_s: float, progress: Progress) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(p.connected for p in publishers) and time.monotonic() < deadline:
        time.sleep(0.05)
    missing = sum(not p.connected for p in publishers)
    if missing:
        progress(f"{missing} agents not connected to the broker yet; events wait in their outboxes")


def _flush(pending: Callable[[], int], timeout_s: float, stop: Stopping) -> int:
    deadline = time.monotonic() + timeout_s
    while (left := pending()) and time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.05)
    return left


def run_accelerated(
    config_of: Mapping[str, EdgeConfig],
    events: list[Detected],
    agent_of: Mapping[str, str],
    pacer: Pacer,
    progress: Progress,
    stop: Stopping | None = None,
    flush_timeout_s: float = 120.0,
    progress_every_s: float = 5.0,
) -> RunStats:
    """Publish detector events through one virtual agent per agent id, paced."""
    stop = stop or StopFlag()
    agents = {a: VirtualAgent(cfg) for a, cfg in config_of.items()}
    stats = RunStats()
    for a in agents.values():
        a.start()
    try:
        _wait_connected([a.publisher for a in agents.values()], 10.0, progress)
        i, n = 0, len(events)
        next_report = time.monotonic() + progress_every_s
        while i < n and not stop.is_set():
            now = now_ms()
            j = i
            while j < n and pacer.due_ms(events[j].wall_ms) <= now:
                j += 1
            if j > i:
                batch: dict[str, list[Detected]] = {}
                for d in events[i:j]:
                    batch.setdefault(agent_of[d.event.door], []).append(d)
                for agent, items in batch.items():
                    agents[agent].store(items)
                i = j
            else:
                stop.wait(min(0.05, (pacer.due_ms(events[i].wall_ms) - now) / 1000.0))
            if time.monotonic() >= next_report:
                next_report += progress_every_s
                at = format_ts(events[i - 1].wall_ms) if i else "-"
                queued = sum(a.pending for a in agents.values())
                progress(
                    f"simulated time {at}: {i}/{n} events stored, {queued} not yet acknowledged"
                )
        stats.interrupted = stop.is_set()
        stats.unsent = _flush(
            lambda: sum(a.pending for a in agents.values()), flush_timeout_s, stop
        )
        stats.stored = sum(a.stored for a in agents.values())
        for a in agents.values():
            for door, counts in a.outbox.totals().items():
                stats.detected[door] = counts
    finally:
        for a in agents.values():
            a.stop()
    return stats


def run_realtime(
    config_of: Mapping[str, EdgeConfig],
    crowd: CrowdTrace,
    progress: Progress,
    stop: Stopping | None = None,
    flush_timeout_s: float = 60.0,
    progress_every_s: float = 30.0,
) -> RunStats:
    """Real `EdgeAgent`s on mock pins, driven in real time from the crowd's traces; the
    drivers start at the trace's time 0 (`crowd.start_ms`)."""
    from gpiozero.pins.mock import MockFactory

    stop = stop or StopFlag()
    stats = RunStats()
    agents: list[EdgeAgent] = []
    drivers: list[TraceDriver] = []
    try:
        for cfg in config_of.values():
            factory = MockFactory()
            agent = EdgeAgent(cfg, factory)
            rows = crowd.rows(d.id for d in cfg.doors)
            drivers.append(TraceDriver(factory, cfg, rows, speed=1.0))
            agents.append(agent)
            agent.start()
            for d in cfg.doors:  # beams intact (open collector receivers pull low)
                factory.pin(d.outer_pin).drive_low()
                factory.pin(d.inner_pin).drive_low()
        _wait_connected([a.publisher for a in agents], 10.0, progress)
        stop.wait(max(0.0, (crowd.start_ms - now_ms()) / 1000.0))
        for driver in drivers:
            driver.start()
        next_report = time.monotonic() + progress_every_s
        while not all(d.done.is_set() for d in drivers) and not stop.wait(0.2):
            if time.monotonic() >= next_report:
                next_report += progress_every_s
                counted = sum(
                    n for a in agents for c in a.outbox.totals().values() for n in c.values()
                )
                progress(f"{format_ts(now_ms())}: {counted} crossings counted so far")
        stats.interrupted = stop.is_set()
        stop.wait(1.0)  # the last edges: debounce, and sensing runs 100 ms behind
        stats.unsent = _flush(lambda: sum(a.outbox.depth for a in agents), flush_timeout_s, stop)
        for a in agents:
            stats.stored += a.outbox.next_seq
            for door, counts in a.outbox.totals().items():
                stats.detected[door] = counts
    finally:
        for driver in drivers:
            driver.stop()
        for a in agents:
            a.stop()
    return stats
