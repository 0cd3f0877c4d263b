"""The collector against real Mosquitto and InfluxDB: exact counts, duplicates, garbage,
crash, InfluxDB outage, broker restart, daily reset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import urllib3

from footfall_collector.http import serve
from footfall_collector.occupancy import OccupancyEngine
from footfall_collector.service import Collector
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import parse_zone_occupancy_topic
from footfall_sim.localservices import Influx, Mosquitto
from tests.support.collector import (
    FakeClock,
    InfluxQuery,
    Publisher,
    collector_settings,
    crossing_batch,
    now_ms,
    small_site,
    wait_for,
    write_site,
)
from tests.support.mqtt import Recorder

pytestmark = pytest.mark.services

A1 = "footfall/v1/test-site/agent/pi-1"
A2 = "footfall/v1/test-site/agent/pi-2"
DOORS = ["centre-main", "library-main", "library-mall", "kela-door", "youth-door"]


def expected_occupancy(crossings: list[tuple[str, str]]) -> dict[str, int]:
    engine = OccupancyEngine(small_site())
    for door, d in crossings:
        engine.apply(door, d)
    return {s.zone: s.count for s in engine.states()}


def http_json(port: int, path: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    r = urllib3.request("GET", f"http://127.0.0.1:{port}{path}", timeout=5)
    return r.status, json.loads(r.data)


def occupancy_now(port: int) -> dict[str, int]:
    return {z: v["count"] for z, v in http_json(port, "/occupancy")[1].items()}


def test_mixed_stream_exact_counts_duplicates_and_garbage(
    mosquitto: Mosquitto, influx: Influx
) -> None:
    collector = Collector(collector_settings(mosquitto.port, influx.url), small_site())
    collector.start()
    assert collector.ready.wait(10)
    http = serve(collector, "127.0.0.1", 0)
    port = http.server_address[1]
    pub = Publisher(mosquitto.port)
    zones = Recorder(mosquitto.port, "footfall/v1/test-site/zone/+/occupancy")
    q = InfluxQuery(influx.url)
    try:
        sent: list[tuple[str, str]] = []
        seq = dups = 0
        for i in range(30):
            door = DOORS[i % len(DOORS)]
            events = [(seq, door, "in"), (seq + 1, door, "in")]
            if i % 3 == 0:
                events.append((seq + 2, door, "out"))
            seq += len(events)
            payload = crossing_batch("epoch-a", events)
            pub.send(f"{A1}/crossing", payload)
            sent += [(d, dr) for _, d, dr in events]
            if i % 4 == 0:
                pub.send(f"{A1}/crossing", payload)  # re-delivered: must not count twice
                dups += len(events)
        # Two agents, same door, same millisecond, same seq: distinct events.
        ts = now_ms()
        pub.send(f"{A1}/crossing", crossing_batch("epoch-a", [(10_000, "kela-door", "in")], ts))
        pub.send(f"{A2}/crossing", crossing_batch("epoch-b", [(10_000, "kela-door", "in")], ts))
        pub.send(f"{A2}/crossing", crossing_batch("epoch-b", [(10_001, "kela-door", "in")], ts))
        sent += [("kela-door", "in")] * 3
        pub.send(
            f"{A1}/presence",
            json.dumps(
                {
                    "epoch": "epoch-a",
                    "events": [
                        {
                            "seq": 900,
                            "ts": format_ts(now_ms()),
                            "sensor": "study-room-2",
                            "occupied": True,
                        }
                    ],
                }
            ),
        )
        pub.send(
            f"{A1}/fault",
            json.dumps(
                {
                    "epoch": "epoch-a",
                    "events": [
                        {
                            "seq": 901,
                            "ts": format_ts(now_ms()),
                            "source": "kela-door/outer",
                            "fault": "beam_blocked",
                            "active": True,
                        }
                    ],
                }
            ),
        )
        pub.send(
            f"{A1}/status",
            json.dumps(
                {"state": "online", "epoch": "epoch-a", "ts": format_ts(now_ms()), "sw": "0.1.0"}
            ),
        )
        pub.send(
            f"{A1}/health",
            json.dumps(
                {
                    "epoch": "epoch-a",
                    "ts": format_ts(now_ms()),
                    "uptime_s": 5,
                    "queue_depth": 0,
                    "totals": {},
                }
            ),
        )
        for garbage in (
            b"{oops",
            b'{"epoch":"x","events":[]}',
            crossing_batch("e", [(1, "no-such-door", "in")]),
        ):
            pub.send(f"{A1}/crossing", garbage)

        want = Counter(sent)
        wait_for(lambda: q.crossing_counts() == dict(want), what="exact crossing counts")
        wait_for(
            lambda: occupancy_now(port) == expected_occupancy(sent),
            what="occupancy",
        )
        wait_for(lambda: len(q.rows('SELECT * FROM "rejected"')) == 3, what="rejections")
        reasons = Counter(r["reason"] for r in q.rows('SELECT * FROM "rejected"'))
        assert reasons == {"invalid_json": 1, "schema": 1, "unknown_door": 1}
        assert q.rows('SELECT "occupied" FROM "presence"')[0]["occupied"] is True
        assert q.rows('SELECT "active", "fault" FROM "fault"')[0]["fault"] == "beam_blocked"
        assert q.rows('SELECT "uptime_s" FROM "agent_health"')[0]["uptime_s"] == 5
        wait_for(lambda: any(r["online"] for r in q.rows('SELECT * FROM "agent_status"')))
        occ = q.rows('SELECT last("count") FROM "occupancy" GROUP BY "zone"')
        assert {r["zone"]: r["last"] for r in occ} == expected_occupancy(sent)
        wait_for(
            lambda: (
                {
                    parse_zone_occupancy_topic(m.topic).zone: m.json()["count"]
                    for m in zones.messages
                }
                == expected_occupancy(sent)
            ),
            what="retained zone topics",
        )
        library = [m.json() for m in zones.messages if "/zone/library/" in m.topic][-1]
        assert library["capacity"] == 250 and library["ratio"] == round(library["count"] / 250, 4)

        status, body = http_json(port, "/healthz")
        assert status == 200 and body["ready"] is True
        metrics = urllib3.request("GET", f"http://127.0.0.1:{port}/metrics").data.decode()
        assert 'footfall_rejected_total{reason="invalid_json"} 1.0' in metrics
        assert f"footfall_duplicate_crossings_total {dups:.1f}" in metrics
        assert "footfall_unacked_messages 0.0" in metrics
    finally:
        pub.close()
        zones.close()
        collector.stop()
        http.shutdown()
        http.server_close()


def collector_process(
    site: Path, mqtt_port: int, influx_url: str, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FOOTFALL_MQTT__HOST": "127.0.0.1",
        "FOOTFALL_MQTT__PORT": str(mqtt_port),
        "FOOTFALL_INFLUX__URL": influx_url,
        "FOOTFALL_HTTP__PORT": "0",
        "FOOTFALL_MQTT__RECONNECT_MIN_S": "1",
        "FOOTFALL_MQTT__RECONNECT_MAX_S": "1",
        "FOOTFALL_INGEST__FLUSH_INTERVAL_S": "0.05",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "footfall_collector.cli", "run", "--site", str(site)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),
    )


def stream(
    pub: Publisher, start_seq: int, messages: int, sent: list[tuple[str, str]], pause_s: float = 0.0
) -> int:
    seq = start_seq
    for _ in range(messages):
        door = DOORS[(seq // 5) % len(DOORS)]
        events = [(seq + k, door, "in" if k % 3 else "out") for k in range(5)]
        pub.send(f"{A1}/crossing", crossing_batch("epoch-k", events))
        sent += [(d, dr) for _, d, dr in events]
        seq += 5
        if pause_s:
            time.sleep(pause_s)
    return seq


def test_sigkill_mid_stream_then_restart(
    mosquitto: Mosquitto, influx: Influx, tmp_path: Path
) -> None:
    site = write_site(tmp_path)
    log = tmp_path / "collector.log"
    proc = collector_process(site, mosquitto.port, influx.url, log)
    q = InfluxQuery(influx.url)
    pub = Publisher(mosquitto.port)
    sent: list[tuple[str, str]] = []
    try:
        wait_for(lambda: "connected to MQTT" in log.read_text(), 20, "collector up")
        seq = stream(pub, 0, 100, sent, pause_s=0.005)
        wait_for(lambda: sum(q.crossing_counts().values()) > 0, 20, "some written")
        proc.send_signal(signal.SIGKILL)  # mid-stream: some written, some not acknowledged
        proc.wait(10)
        seq = stream(pub, seq, 100, sent)  # while it is down: the broker keeps them
        proc = collector_process(site, mosquitto.port, influx.url, log)
        seq = stream(pub, seq, 50, sent, pause_s=0.005)
        want = dict(Counter(sent))
        wait_for(lambda: q.crossing_counts() == want, 60, "exact counts after the crash")
        wait_for(
            lambda: (
                {
                    r["zone"]: r["last"]
                    for r in q.rows('SELECT last("count") FROM "occupancy" GROUP BY "zone"')
                }
                == expected_occupancy(sent)
            ),
            30,
            "occupancy after the crash",
        )
    finally:
        pub.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert "rebuilt occupancy from" in log.read_text()


def test_influx_down_for_30_s_loses_nothing(mosquitto: Mosquitto, influx: Influx) -> None:
    collector = Collector(collector_settings(mosquitto.port, influx.url), small_site())
    collector.start()
    assert collector.ready.wait(10)
    q = InfluxQuery(influx.url)
    pub = Publisher(mosquitto.port)
    sent: list[tuple[str, str]] = []
    try:
        seq = stream(pub, 0, 20, sent)
        wait_for(lambda: q.crossing_counts() == dict(Counter(sent)), what="before the outage")
        influx.stop()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seq = stream(pub, seq, 5, sent)
            time.sleep(1)
        assert not collector.healthy
        assert collector.unacked > 0
        influx.start()
        wait_for(lambda: q.crossing_counts() == dict(Counter(sent)), 60, "after the outage")
        wait_for(
            lambda: collector.occupancy()["centre"]["count"] == expected_occupancy(sent)["centre"]
        )
        wait_for(lambda: collector.healthy, 15, "healthy again")
    finally:
        pub.close()
        collector.stop()


def test_broker_restart_the_collector_reconnects_and_resumes(
    mosquitto: Mosquitto, influx: Influx
) -> None:
    collector = Collector(collector_settings(mosquitto.port, influx.url), small_site())
    collector.start()
    assert collector.ready.wait(10)
    q = InfluxQuery(influx.url)
    sent: list[tuple[str, str]] = []
    pub = Publisher(mosquitto.port)
    seq = stream(pub, 0, 10, sent)
    pub.close()
    try:
        wait_for(lambda: q.crossing_counts() == dict(Counter(sent)))
        mosquitto.restart()
        pub = Publisher(mosquitto.port)
        stream(pub, seq, 10, sent)
        pub.close()
        wait_for(lambda: q.crossing_counts() == dict(Counter(sent)), 30, "after the restart")
        wait_for(lambda: collector.mqtt_connected)
        assert collector.occupancy()["library"]["count"] == expected_occupancy(sent)["library"]
    finally:
        collector.stop()


def test_daily_reset_at_local_time(mosquitto: Mosquitto, influx: Influx) -> None:
    tz = ZoneInfo("Europe/Helsinki")
    before = int(datetime(2026, 11, 24, 2, 59, 0, tzinfo=tz).timestamp() * 1000)
    clock = FakeClock(before)
    collector = Collector(collector_settings(mosquitto.port, influx.url), small_site(), clock)
    collector.start()
    assert collector.ready.wait(10)
    q = InfluxQuery(influx.url)
    pub = Publisher(mosquitto.port)
    try:
        pub.send(
            f"{A1}/crossing",
            crossing_batch("e", [(1, "library-mall", "in"), (2, "library-mall", "in")], before),
        )
        wait_for(lambda: collector.occupancy()["library"]["count"] == 2)
        # An agent clock a little ahead: stamped after the coming reset, so it must count
        # for the new day, not vanish in the reset.
        pub.send(f"{A1}/crossing", crossing_batch("e", [(5, "kela-door", "in")], before + 90_000))
        # stored means handled: the collector applies (or holds) a message's crossings
        # before it writes them
        wait_for(lambda: sum(q.crossing_counts().values()) == 3, 10, "the crossing stored")
        assert collector.occupancy()["kela"]["count"] == 0
        clock.set(before + 61_000)  # 03:00:01 local
        wait_for(lambda: collector.occupancy()["library"]["count"] == 0, 10, "reset")
        wait_for(lambda: len(q.rows('SELECT * FROM "occupancy_reset"')) == 4)
        resets = {
            r["zone"]: r["count_before"]
            for r in q.rows('SELECT "count_before", "zone" FROM "occupancy_reset"')
        }
        assert resets == {"centre": 2, "library": 2, "kela": 0, "youth": 0}
        # Late arrival from before the reset: history only. After the reset: counted.
        pub.send(
            f"{A1}/crossing", crossing_batch("e", [(3, "library-mall", "in")], before + 30_000)
        )
        pub.send(
            f"{A1}/crossing", crossing_batch("e", [(4, "library-mall", "in")], before + 62_000)
        )
        wait_for(lambda: sum(q.crossing_counts().values()) == 5)  # stored: handled
        assert collector.occupancy()["library"]["count"] == 1
        assert collector.occupancy()["kela"]["count"] == 1  # the one held over the reset
    finally:
        pub.close()
        collector.stop()


def test_bad_site_file_stops_with_file_line_and_reason(tmp_path: Path) -> None:
    site = tmp_path / "broken.yaml"
    site.write_text(write_site(tmp_path).read_text().replace("inside: kela}", "inside: kelaa}"))
    proc = subprocess.run(
        [sys.executable, "-m", "footfall_collector.cli", "run", "--site", str(site)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"{site}:" in proc.stderr and "'kelaa' does not exist" in proc.stderr


def test_a_point_influx_refuses_does_not_take_the_batch_with_it(
    mosquitto: Mosquitto, influx: Influx
) -> None:
    """A field type conflict (HTTP 400) on one point: that point is dropped and counted,
    the crossings in the same batch are written, and every message is acknowledged."""
    q = InfluxQuery(influx.url)
    http = urllib3.PoolManager()
    http.request("POST", f"{influx.url}/query", fields={"q": "CREATE DATABASE footfall"})
    # A string where the collector writes a float, in the shard of today.
    conflict = f'agent_health,agent=pi-1,site=test-site uptime_s="text" {time.time_ns()}'
    r = http.request("POST", f"{influx.url}/write?db=footfall", body=conflict.encode())
    assert r.status == 204
    collector = Collector(
        collector_settings(mosquitto.port, influx.url, flush_interval_s=0.5), small_site()
    )
    collector.start()
    assert collector.ready.wait(10)
    pub = Publisher(mosquitto.port)
    sent: list[tuple[str, str]] = []
    try:
        health = {
            "epoch": "e",
            "ts": format_ts(now_ms()),
            "uptime_s": 5.5,
            "queue_depth": 0,
            "totals": {},
        }
        pub.send(f"{A1}/health", json.dumps(health))
        stream(pub, 0, 10, sent)
        wait_for(lambda: q.crossing_counts() == dict(Counter(sent)), what="crossings written")
        wait_for(lambda: collector.unacked == 0, what="everything acknowledged")
        assert collector.metrics.write_errors.labels("permanent")._value.get() >= 1
    finally:
        pub.close()
        collector.stop()
