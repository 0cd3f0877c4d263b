"""Shared by the dashboard tests: one real InfluxDB filled once per session with ten days
of simulated Iso Omena history (`footfall-sim --backfill`'s own code: crossings, faults,
occupancy, drift and resets), plus a few points of the measurements a backfill does not
write (agent status and health, presence, rejected input, alerts) on the test's "today"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from footfall_collector.config import InfluxSettings
from footfall_collector.history import HistoryWorker
from footfall_collector.influx import InfluxV1
from footfall_collector.points import FieldValue, Point
from footfall_collector.schema import CROSSING, ZONE_FLOW, alert_point, zone_flow_points
from footfall_contract.site import Site, load_site
from footfall_contract.timefmt import format_ts
from footfall_sim.backfill import backfill
from footfall_sim.crowd import CROWD
from footfall_sim.localservices import Influx
from footfall_sim.runner import agent_ids
from footfall_sim.visitors import VisitorModel

ISO = Path(__file__).parents[2] / "deploy" / "sites" / "iso-omena.yaml"
DAYS = 10


@dataclass(frozen=True)
class History:
    server: Influx
    influx: InfluxV1
    site: Site
    today: dt.date  # the backfill's today (site-local): the DAYS days before it have data
    day: dt.date  # the test's "today": the latest Monday-Friday at most 3 days back
    now: dt.datetime  # the test's "now": 16:30 local on `day`, the after-school peak

    def local(self, hour: int, minute: int = 0, day: dt.date | None = None) -> dt.datetime:
        return dt.datetime.combine(day or self.day, dt.time(hour, minute), tzinfo=self.site.tz)


def test_day(today: dt.date) -> dt.date:
    day = today - dt.timedelta(days=1)
    while day.weekday() > 4:
        day -= dt.timedelta(days=1)
    return day


def extra_points(site: Site, h: History) -> list[str]:
    """What a running collector would also have written on the test day."""
    points: list[Point] = []
    s = site.site

    def at(hour: int, minute: int = 0) -> int:
        return int(h.local(hour, minute).timestamp()) * 1_000_000_000

    def add(m: str, tags: dict[str, str], fields: Mapping[str, FieldValue], t: int) -> None:
        points.append(Point(m, {"site": s, **tags}, fields, t))

    agents = sorted({f"sim-{d.id}" for d in site.doors})
    for i, agent in enumerate(agents):
        status: dict[str, FieldValue] = {
            "online": True,
            "value": 1,
            "reason": "online",
            "epoch": "e1",
            "sw": "0.1.0",
        }
        add("agent_status", {"agent": agent}, status, at(6) + i)
        for minute in range(6 * 60, 21 * 60, 5):
            fields: dict[str, FieldValue] = {
                "uptime_s": float(minute * 60),
                "queue_depth": 40 if agent == agents[0] and 12 * 60 <= minute < 12 * 60 + 10 else 0,
                "crossings_in": minute,
                "crossings_out": minute - 1,
            }
            add("agent_health", {"agent": agent}, fields, at(minute // 60, minute % 60) + i)
    offline: dict[str, FieldValue] = {
        "online": False,
        "value": 0,
        "reason": "silent",
        "epoch": "e1",
        "sw": "0.1.0",
    }
    add("agent_status", {"agent": agents[0]}, offline, at(12, 1))
    add("agent_status", {"agent": agents[1]}, offline, at(15, 0))  # still offline at 16:30
    back: dict[str, FieldValue] = {
        "online": True,
        "value": 1,
        "reason": "active",
        "epoch": "e1",
        "sw": "0.1.0",
    }
    add("agent_status", {"agent": agents[0]}, back, at(12, 10))
    beam = {"agent": agents[2], "source": "kela-door", "fault": "beam_blocked"}
    add("fault", beam, {"active": True, "value": 1}, at(9, 0))
    add("fault", beam, {"active": False, "value": 0}, at(9, 3))
    add("fault", {**beam, "source": "huslab-door"}, {"active": True, "value": 1}, at(16, 0))
    for k, room in enumerate(("study-room-1", "study-room-2")):
        for hour in range(9, 17):
            tags = {"zone": "library", "sensor": room, "agent": agents[3]}
            add("presence", tags, {"occupied": True, "value": 1}, at(hour, 10 * k))
            add("presence", tags, {"occupied": False, "value": 0}, at(hour, 40 + 10 * k))
    for minute, reason in ((600, "schema"), (601, "schema"), (720, "unknown_door")):
        tags = {"reason": reason, "kind": "crossing"}
        add(
            "rejected",
            tags,
            {"count": 1, "detail": "test", "agent": agents[0]},
            at(minute // 60, minute % 60),
        )

    # the alerts service's own point code (tags: state, rule, kind, severity, zone/agent)
    def alert(state: str, rule: str, scope: dict[str, str], summary: str, t: int) -> None:
        kind = "zone" if "zone" in scope else "agent"
        when = format_ts(t // 1_000_000)
        body: dict[str, object] = {
            "id": f"{rule}:{scope}",
            "rule": rule,
            "kind": kind,
            "severity": "warning",
        }
        body |= {"scope": scope, "summary": summary, "started": when, "ts": when}
        points.append(alert_point(s, {"alert": body, "state": state}))

    alert("pending", "zone_over_capacity", {"zone": "library"}, "Library filling", at(14, 55))
    alert("firing", "zone_over_capacity", {"zone": "library"}, "Library full", at(15))
    alert("resolved", "zone_over_capacity", {"zone": "library"}, "Library ok", at(16))
    alert("firing", "agent_offline", {"agent": agents[1]}, "Agent offline", at(15, 2))
    return [p.line() for p in points]


def add_visits(influx: InfluxV1, site: Site, first: dt.date, last: dt.date, now_ms: int) -> None:
    """What the collector writes beside the crossings (`zone_flow`, by the door algebra,
    at each crossing's time and agent) when the backfill has not, then the history
    worker's own rebuild: `occupancy_history` and the hourly and daily rollups."""
    has_flow = influx.query(f'SELECT count("count") FROM "{ZONE_FLOW}"')
    if not has_flow:
        rows = influx.query(
            f'SELECT "count", "door", "dir", "agent" FROM "{CROSSING}" '
            f"WHERE \"site\" = '{site.site}'"
        )
        lines: list[str] = []
        for series in rows:
            cols = series["columns"]
            for values in series["values"]:
                r = dict(zip(cols, values, strict=True))
                entered, left = site.door_effects(r["door"])
                if r["dir"] == "out":
                    entered, left = left, entered
                for point in zone_flow_points(site.site, entered, left, r["agent"], r["time"]):
                    lines.append(point.line())
        for i in range(0, len(lines), 10_000):
            influx.write(lines[i : i + 10_000])
    HistoryWorker(influx, site).rebuild(first, last, now_ms)


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    site = load_site(ISO)
    server = Influx(tmp_path_factory.mktemp("dashboards") / "influxdb")
    server.start()
    try:
        influx = InfluxV1(InfluxSettings(url=server.url, database="footfall"))
        today = dt.datetime.now(site.tz).date()
        agent_of = agent_ids([d.id for d in site.doors], "door")
        backfill(VisitorModel(site), influx, DAYS, 1, agent_of, CROWD, lambda _m: None, today)
        day = test_day(today)
        h = History(server, influx, site, today, day, dt.datetime.min.replace(tzinfo=site.tz))
        h = History(server, influx, site, today, day, h.local(16, 30))
        influx.write(extra_points(site, h))
        now_ms = int(dt.datetime.now(site.tz).timestamp() * 1000)
        add_visits(influx, site, today - dt.timedelta(days=DAYS), today, now_ms)
        yield h
    finally:
        server.kill()
