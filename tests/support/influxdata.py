"""Known data into a real InfluxDB, as the collector and the history worker would have
written it, so that tests check the readers (history API, agency page, reports) against
a truth worked out from the events and not from the code under test. The one place that
writes lines in batches and replays a door's crossings into `zone_flow` and
`occupancy_history` (per reset window from 0, never below 0: the rest is drift)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from footfall_collector.config import InfluxSettings
from footfall_collector.influx import connect
from footfall_collector.points import event_time_ns
from footfall_collector.schema import occupancy_history_point, zone_flow_points
from footfall_contract.hours import next_reset_after, window_of
from footfall_contract.site import Site

BATCH = 5000
"""Lines per write request (InfluxDB 1.x's default limit is far above; big enough)."""


def write_lines(
    url: str,
    lines: Iterable[str],
    rp: str | None = None,
    *,
    database: str = "footfall",
    create: bool = True,
) -> None:
    """Write line-protocol `lines` (into retention policy `rp`), in batches; `create`
    first makes the database and its policies as the collector does at start."""
    batch = list(lines)
    influx = connect(InfluxSettings(url=url, database=database))
    try:
        if create:
            influx.ensure_database()
        for i in range(0, len(batch), BATCH):
            influx.write(batch[i : i + BATCH], rp=rp)
    finally:
        influx.close()


def create_database(url: str, database: str = "footfall") -> None:
    """An empty database, as the collector leaves it before the first crossing."""
    write_lines(url, [], database=database)


def reset_times(site: Site, first_ms: int, last_ms: int) -> list[int]:
    """The site's daily resets (epoch ms) from the start of the window holding
    `first_ms` up to `last_ms`."""
    out = []
    t = window_of(site, first_ms).start_ms
    while t <= last_ms:
        out.append(t)
        t = next_reset_after(site, t)
    return out


@dataclass(frozen=True)
class DoorReplay:
    """One zone's history made by a door's crossings: the lines to write, the levels
    (time ns, count, ascending, a 0 at each reset), the entries' and the crossings'
    times (ns)."""

    lines: list[str]
    levels: list[tuple[int, int]]
    entries: list[int]
    crossings: list[int]


def replay_door(
    site: Site,
    door: str,
    zone: str,
    events: Iterable[tuple[int, str]],
    resets: list[int],
    agent: str = "pi-1",
) -> DoorReplay:
    """(ms, "in"/"out") crossings of `door`, in time order, as `zone_flow` points for
    every zone they move between and the `occupancy_history` of `zone`, which starts at 0
    at each of `resets` (ms) and never goes below 0 (an exit nobody was counted in for is
    drift). Each crossing's time is its event time, sequence number in the nanoseconds."""
    entered, left = site.door_effects(door)
    assert zone in entered, f"{door} does not lead into {zone}"
    reset_set = set(resets)
    lines = [occupancy_history_point(site.site, zone, 0, 0, r * 1_000_000).line() for r in resets]
    levels = [(r * 1_000_000, 0) for r in resets]
    entries: list[int] = []
    crossings: list[int] = []
    window, count, drift = -1, 0, 0
    for seq, (ms, direction) in enumerate(events):
        assert ms not in reset_set, "a crossing at a reset instant is ambiguous"
        w = window_of(site, ms).start_ms
        if w != window:
            window, count, drift = w, 0, 0
        time_ns = event_time_ns(ms, seq)
        zones_in, zones_out = (entered, left) if direction == "in" else (left, entered)
        lines += [
            p.line() for p in zone_flow_points(site.site, zones_in, zones_out, agent, time_ns)
        ]
        if direction == "in":
            count += 1
            entries.append(time_ns)
        elif count > 0:
            count -= 1
        else:
            drift += 1
        levels.append((time_ns, count))
        crossings.append(time_ns)
        lines.append(occupancy_history_point(site.site, zone, count, drift, time_ns).line())
    return DoorReplay(lines, sorted(levels), sorted(entries), crossings)
