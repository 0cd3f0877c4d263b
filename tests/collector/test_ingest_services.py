"""Validation against a real collector, Mosquitto and InfluxDB (issue 11): one bad event
costs only itself, made-up fault sources create no series, and non-finite health
numbers are rejected instead of failing the InfluxDB write."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest
import urllib3

from footfall_collector.http import serve
from footfall_collector.occupancy import OccupancyEngine
from footfall_collector.service import Collector
from footfall_contract.timefmt import format_ts
from footfall_sim.localservices import Influx, Mosquitto
from tests.support.collector import (
    InfluxQuery,
    Publisher,
    collector_settings,
    now_ms,
    small_site,
    wait_for,
)

pytestmark = pytest.mark.services

AGENT = "footfall/v1/test-site/agent/pi-1"
DOORS = ["centre-main", "library-main", "library-mall", "kela-door", "youth-door"]


@pytest.fixture
def running(mosquitto: Mosquitto, influx: Influx) -> Iterator[tuple[Publisher, int]]:
    """A running collector: a publisher to it, and the port of its HTTP endpoints."""
    collector = Collector(collector_settings(mosquitto.port, influx.url), small_site())
    collector.start()
    assert collector.ready.wait(10)
    http = serve(collector, "127.0.0.1", 0)
    pub = Publisher(mosquitto.port)
    try:
        yield pub, http.server_address[1]
    finally:
        pub.close()
        collector.stop()
        http.shutdown()
        http.server_close()


def metrics(port: int) -> str:
    return str(urllib3.request("GET", f"http://127.0.0.1:{port}/metrics").data.decode())


def write_errors(port: int) -> float:
    """footfall_influx_write_errors_total summed over its kinds (no line: none yet)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics(port).splitlines()
        if line.startswith("footfall_influx_write_errors_total")
    )


def series(q: InfluxQuery) -> set[str]:
    """Every series but the per-zone occupancy ones, which the collector's heartbeat
    writes on its own schedule (bounded by the site's zones)."""
    keys = {r["key"] for r in q.rows("SHOW SERIES")}
    return {k for k in keys if not k.startswith(("occupancy,", "occupancy_drift,"))}


BAD = {
    "dir": ({"door": "kela-door", "dir": "x"}, "dir: Input should be 'in' or 'out'"),
    "leap second": ({"ts": "2016-12-31T23:59:60Z"}, "not a valid date/time"),
    "no zone": ({"ts": "2026-11-23T10:15:02.120"}, "not an RFC 3339 timestamp with a time zone"),
    "string seq": ({"seq": "7"}, "seq: Input should be a valid integer"),
}


def test_one_invalid_event_rejects_only_itself(
    running: tuple[Publisher, int], influx: Influx
) -> None:
    pub, port = running
    q = InfluxQuery(influx.url)
    sent: list[tuple[str, str]] = []
    seq = 0
    for m, (bad, _problem) in enumerate(BAD.values()):
        ts = format_ts(now_ms())
        events: list[dict[str, object]] = []
        for i in range(5):
            door, d = DOORS[(m + i) % 5], "in" if (m + i) % 3 else "out"
            events.append({"seq": seq, "ts": ts, "door": door, "dir": d})
            sent.append((door, d))
            seq += 1
        events.insert(m + 1, {"seq": seq, "ts": ts, "door": "library-main", "dir": "in", **bad})
        seq += 1
        pub.send(f"{AGENT}/crossing", json.dumps({"epoch": "e1", "events": events}))

    want = Counter(sent)
    assert sum(want.values()) == 5 * len(BAD)
    wait_for(lambda: q.crossing_counts() == dict(want), what="the valid crossings stored")
    wait_for(lambda: len(q.rows('SELECT * FROM "rejected"')) == len(BAD), what="rejections")
    rows = q.rows('SELECT "detail", "agent", "count" FROM "rejected" GROUP BY "reason", "kind"')
    assert {(r["reason"], r["kind"], r["agent"], r["count"]) for r in rows} == {
        ("schema", "crossing", "pi-1", 1)
    }
    details = sorted(r["detail"] for r in rows)
    for m, (name, (_bad, problem)) in enumerate(BAD.items()):
        assert any(d.startswith(f"events.{m + 1}.") and problem in d for d in details), name

    engine = OccupancyEngine(small_site())
    for door, d in sent:
        engine.apply(door, d)
    occupancy = json.loads(urllib3.request("GET", f"http://127.0.0.1:{port}/occupancy").data)
    assert {z: v["count"] for z, v in occupancy.items()} == {
        s.zone: s.count for s in engine.states()
    }
    assert write_errors(port) == 0


def test_made_up_fault_sources_create_no_series(
    running: tuple[Publisher, int], influx: Influx
) -> None:
    pub, port = running
    q = InfluxQuery(influx.url)

    def fault(seq: int, source: str) -> dict[str, object]:
        ts = format_ts(now_ms())
        return {"seq": seq, "ts": ts, "source": source, "fault": "beam_blocked", "active": True}

    pub.send(f"{AGENT}/fault", json.dumps({"epoch": "e1", "events": [fault(0, "kela-door/outer")]}))
    wait_for(lambda: len(q.rows('SELECT * FROM "fault"')) == 1, what="the real fault")
    wait_for(lambda: "agent_status,agent=pi-1,site=test-site" in series(q), what="agent status")
    before = series(q)

    fakes = [
        f"ghost-{i}/outer"
        if i % 4 == 0
        else f"kela-door/beam-{i}"
        if i % 4 == 1
        else f"sensor-{i}"
        if i % 4 == 2
        else f"library-main/outer/{i}"
        for i in range(10_000)
    ]
    assert len(set(fakes)) == 10_000
    for start in range(0, 10_000, 500):
        events = [fault(1 + start + i, s) for i, s in enumerate(fakes[start : start + 500])]
        pub.send(f"{AGENT}/fault", json.dumps({"epoch": "e1", "events": events}))
    # A real fault after the flood is stored as before.
    pub.send(
        f"{AGENT}/fault", json.dumps({"epoch": "e1", "events": [fault(20_000, "kela-door/outer")]})
    )

    def rejected() -> int:
        rows = q.rows('SELECT count("count") FROM "rejected" WHERE "reason" = \'unknown_source\'')
        return int(rows[0]["count"]) if rows else 0

    wait_for(lambda: rejected() == 10_000, timeout_s=120, what="10,000 unknown_source rejections")
    wait_for(lambda: len(q.rows('SELECT * FROM "fault"')) == 2, what="the later real fault")
    assert series(q) - before == {"rejected,kind=fault,reason=unknown_source,site=test-site"}
    sources = q.rows('SHOW TAG VALUES FROM "fault" WITH KEY = "source"')
    assert [r["value"] for r in sources] == ["kela-door/outer"]
    keys = q.rows('SHOW TAG KEYS FROM "rejected"')
    assert sorted(r["tagKey"] for r in keys) == ["kind", "reason", "site"]
    assert 'footfall_rejected_total{reason="unknown_source"} 10000.0' in metrics(port)
    assert write_errors(port) == 0


def test_non_finite_health_is_rejected_and_the_next_stored(
    running: tuple[Publisher, int], influx: Influx
) -> None:
    pub, port = running
    q = InfluxQuery(influx.url)

    def health(uptime: str, **extra: object) -> bytes:
        body = {
            "epoch": "e1",
            "ts": format_ts(now_ms()),
            "uptime_s": 0.0,
            "queue_depth": 0,
            "totals": {"kela-door": {"in": 3, "out": 1}},
            **extra,
        }
        return json.dumps(body).replace('"uptime_s": 0.0', f'"uptime_s": {uptime}').encode()

    bad = [health("1e999"), health("NaN"), health("5", cpu_temp_c=float("inf"))]
    assert b"Infinity" in bad[2]  # json.dumps writes inf so
    for payload in bad:
        pub.send(f"{AGENT}/health", payload)
    pub.send(f"{AGENT}/health", health("42.5", cpu_temp_c=51.2))

    wait_for(lambda: len(q.rows('SELECT * FROM "agent_health"')) == 1, what="the valid health")
    wait_for(lambda: len(q.rows('SELECT * FROM "rejected"')) == 3, what="3 rejections")
    stored = q.rows('SELECT * FROM "agent_health"')[0]
    assert (stored["uptime_s"], stored["cpu_temp_c"]) == (42.5, 51.2)
    assert (stored["crossings_in"], stored["crossings_out"], stored["queue_depth"]) == (3, 1, 0)
    rows = q.rows('SELECT "detail", "agent" FROM "rejected" GROUP BY "reason", "kind"')
    assert {(r["reason"], r["kind"], r["agent"]) for r in rows} == {("schema", "health", "pi-1")}
    assert sorted(r["detail"] for r in rows) == sorted(
        [
            "uptime_s: Input should be a finite number",
            "uptime_s: Input should be a finite number",
            "payload: Value error, cpu_temp_c: numbers must be finite (not inf or NaN)",
        ]
    )
    assert 'footfall_rejected_total{reason="schema"} 3.0' in metrics(port)
    assert write_errors(port) == 0
