"""The InfluxDB schema of visits and history: measurement names, retention policies,
and the point builders every writer uses (collector, history worker, simulator), so that
a name or a tag is spelled in one place. docs/spec.md §4 is the table of it."""

from __future__ import annotations

from typing import Final

from .points import FieldValue, Point

# -- measurements in the database's default retention policy (raw, `influx.retention_duration`) --
CROSSING: Final = "crossing"
ZONE_FLOW: Final = "zone_flow"
"""Per crossing, one point per zone it enters (dir=in) or leaves (dir=out)."""
AGENT_STATUS: Final = "agent_status"
AGENT_RETIRED: Final = "retired"
"""`reason` of the `agent_status` point written when an agent's retained status is cleared
(`footfall-collector retire-agent`, the board's retire action): out of service, neither
offline nor counted as estimated from then on."""
FAULT: Final = "fault"
OCCUPANCY: Final = "occupancy"
"""Live occupancy, at the collector's processing time."""
OCCUPANCY_HISTORY: Final = "occupancy_history"
"""Occupancy recomputed at event time from `zone_flow`, per reset window, a point per
zone and minute with events (and one at the window's start)."""
HISTORY_PENDING: Final = "history_pending"
"""Reset windows whose history and rollups must be recomputed (written with the data)."""

# -- rollups, in their own retention policy, kept for years --
ROLLUP_RP: Final = "rollups"
VISITS_HOURLY: Final = "visits_hourly"
VISITS_DAILY: Final = "visits_daily"


def rollup_from(measurement: str) -> str:
    """The FROM clause of a rollup measurement (its retention policy named)."""
    return f'"{ROLLUP_RP}"."{measurement}"'


def crossing_point(
    site: str, door: str, direction: str, agent: str, time_ns: int, clock_unsynced: bool = False
) -> Point:
    """`clock_unsynced`: the agent stamped it before its clock was set (an estimate of
    the time, kept, never re-stamped: docs/spec.md §2)."""
    fields: dict[str, FieldValue] = {"count": 1}
    if clock_unsynced:
        fields["clock_unsynced"] = True
    return Point(
        CROSSING, {"site": site, "door": door, "dir": direction, "agent": agent}, fields, time_ns
    )


def zone_flow_points(
    site: str, entered: tuple[str, ...], left: tuple[str, ...], agent: str, time_ns: int
) -> list[Point]:
    """The visit side of one crossing: same point time and agent as the crossing, so a
    re-delivery overwrites its own points (no double count) and two agents' crossings in
    one nanosecond never merge."""
    points = [
        Point(
            ZONE_FLOW, {"site": site, "zone": z, "dir": "in", "agent": agent}, {"count": 1}, time_ns
        )
        for z in entered
    ]
    points += [
        Point(
            ZONE_FLOW,
            {"site": site, "zone": z, "dir": "out", "agent": agent},
            {"count": 1},
            time_ns,
        )
        for z in left
    ]
    return points


def history_pending_point(site: str, window_start_ms: int, from_ms: int, time_ns: int) -> Point:
    return Point(
        HISTORY_PENDING, {"site": site}, {"window_ms": window_start_ms, "from_ms": from_ms}, time_ns
    )


def occupancy_history_point(
    site: str, zone: str, count: int, drift: int, time_ns: int, peak: int | None = None
) -> Point:
    """One minute of a zone's recomputed occupancy: `count` at its end, `peak` the
    highest within it (who was in at its start included), `drift` at its end."""
    return Point(
        OCCUPANCY_HISTORY,
        {"site": site, "zone": zone},
        {"count": count, "peak": count if peak is None else peak, "drift": drift},
        time_ns,
    )


def visits_point(
    measurement: str,
    site: str,
    zone: str,
    start_ms: int,
    *,
    entries: int,
    exits: int,
    peak: int,
    peak_at_ms: int,
    estimated: int,
) -> Point:
    """An hourly (estimated: 0/1 as a bool) or daily (estimated: hours) rollup row."""
    fields: dict[str, FieldValue] = {
        "entries": entries,
        "exits": exits,
        "peak": peak,
        "peak_at": peak_at_ms,
    }
    if measurement == VISITS_HOURLY:
        fields["estimated"] = bool(estimated)
    else:
        fields["estimated_hours"] = estimated
    return Point(measurement, {"site": site, "zone": zone}, fields, start_ms * 1_000_000)
