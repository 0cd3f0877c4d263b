"""The InfluxDB schema: measurement names, retention policies, and the point builders
every writer uses (collector, history worker, alerts, simulator), so that a name, a tag or
a field is spelled in one place. docs/spec.md §4 is the table of it; how points are
encoded and why event points get the times they get is `points.py`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from footfall_contract.timefmt import parse_ts

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
AGENT_HEALTH: Final = "agent_health"
FAULT: Final = "fault"
PRESENCE: Final = "presence"
REJECTED: Final = "rejected"
"""What the collector refused, with the reason as a tag (docs/spec.md §4)."""
OCCUPANCY: Final = "occupancy"
"""Live occupancy, at the collector's processing time."""
OCCUPANCY_DRIFT: Final = "occupancy_drift"
"""People not subtracted because a zone's count was already 0, when that changes."""
OCCUPANCY_RESET: Final = "occupancy_reset"
"""What the daily reset found, at the reset's time."""
ALERT: Final = "alert"
"""Every alert transition (footfall-alerts), for Grafana annotations and history."""
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


# -- what agents report -------------------------------------------------------------------


def fault_point(
    site: str, agent: str, source: str, fault: str, active: bool, time_ns: int
) -> Point:
    return Point(
        FAULT,
        {"site": site, "agent": agent, "source": source, "fault": fault},
        {"active": active, "value": int(active)},
        time_ns,
    )


def presence_point(
    site: str, zone: str, sensor: str, agent: str, occupied: bool, time_ns: int
) -> Point:
    return Point(
        PRESENCE,
        {"site": site, "zone": zone, "sensor": sensor, "agent": agent},
        {"occupied": occupied, "value": int(occupied)},
        time_ns,
    )


def agent_health_point(
    site: str, agent: str, fields: Mapping[str, FieldValue], time_ns: int
) -> Point:
    """`fields`: uptime_s, queue_depth, crossings_in, crossings_out, and what the agent
    adds of dropped, inflight, next_seq, cpu_temp_c and sw (ingest.py picks them)."""
    return Point(AGENT_HEALTH, {"site": site, "agent": agent}, dict(fields), time_ns)


def agent_status_point(
    site: str, agent: str, online: bool, reason: str, time_ns: int, epoch: str = "", sw: str = ""
) -> Point:
    """`reason`: the status' state (online, offline), active, silent or `AGENT_RETIRED`."""
    fields: dict[str, FieldValue] = {"online": online, "value": int(online), "reason": reason}
    if epoch:
        fields["epoch"] = epoch
    if sw:
        fields["sw"] = sw[:32]
    return Point(AGENT_STATUS, {"site": site, "agent": agent}, fields, time_ns)


def rejected_point(
    site: str, reason: str, kind: str | None, detail: str, agent: str | None, time_ns: int
) -> Point:
    fields: dict[str, FieldValue] = {"count": 1, "detail": detail[:500]}
    if agent:
        fields["agent"] = agent
    return Point(
        REJECTED, {"site": site, "reason": reason, "kind": kind or "unknown"}, fields, time_ns
    )


# -- live occupancy -----------------------------------------------------------------------


def occupancy_point(site: str, zone: str, count: int, capacity: int | None, time_ns: int) -> Point:
    """`capacity` and `ratio` only for a zone that has a capacity."""
    fields: dict[str, FieldValue] = {"count": count}
    if capacity:
        fields["capacity"] = capacity
        fields["ratio"] = float(count / capacity)
    return Point(OCCUPANCY, {"site": site, "zone": zone}, fields, time_ns)


def occupancy_drift_point(site: str, zone: str, clamped: int, time_ns: int) -> Point:
    return Point(OCCUPANCY_DRIFT, {"site": site, "zone": zone}, {"clamped": clamped}, time_ns)


def occupancy_reset_point(
    site: str, zone: str, count_before: int, clamped_before: int, time_ns: int
) -> Point:
    return Point(
        OCCUPANCY_RESET,
        {"site": site, "zone": zone},
        {"count_before": count_before, "clamped_before": clamped_before},
        time_ns,
    )


# -- alerts -------------------------------------------------------------------------------


def alert_point(site: str, entry: Mapping[str, Any]) -> Point:
    """One alert transition; `entry`: {"alert": the alert payload, "state", and "by" and
    "reason" for acknowledgements and silences}.

    tags: site, alert (id), rule, kind, severity, state (pending, firing, resolved,
    cancelled, acknowledged, silenced, unsilenced), and zone / agent / door when the alert
    is about one; fields: summary (text), value (float, when known), started (RFC 3339),
    by and reason. Time: the transition's, in ms. Each (alert, state) is its own series,
    so re-writing a point after a retry is idempotent."""
    alert = entry["alert"]
    tags = {
        "site": site,
        "alert": alert["id"],
        "rule": alert["rule"],
        "kind": alert["kind"],
        "severity": alert["severity"],
        "state": entry["state"],
    }
    for key in ("zone", "agent", "door"):
        if key in alert["scope"]:
            tags[key] = alert["scope"][key]
    fields: dict[str, FieldValue] = {"summary": alert["summary"], "started": alert["started"]}
    if alert.get("value") is not None:
        fields["value"] = float(alert["value"])
    for key in ("by", "reason"):
        if entry.get(key):
            fields[key] = str(entry[key])
    return Point(ALERT, tags, fields, parse_ts(alert["ts"]) * 1_000_000)
