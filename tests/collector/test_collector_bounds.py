"""The collector's bounds against real Mosquitto and InfluxDB (issue: loss, double count
and exhaustion under fault): a QoS 0 flood while InfluxDB is down, exactly-once for a
re-delivery older than the recent keys kept, and a point InfluxDB refuses in a batch."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter

import pytest
import urllib3

from footfall_collector.config import InfluxSettings
from footfall_collector.influx import InfluxV1, PermanentWriteError
from footfall_collector.occupancy import OccupancyEngine
from footfall_collector.service import Collector
from footfall_collector.writer import InfluxWriter
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import AgentKind, agent_topic
from footfall_sim.localservices import Influx, Mosquitto
from tests.support.collector import (
    InfluxQuery,
    Publisher,
    collector_settings,
    crossing_batch,
    now_ms,
    small_site,
    wait_for,
)

pytestmark = pytest.mark.services

SITE = "test-site"
DOORS = ["centre-main", "library-main", "library-mall", "kela-door", "youth-door"]


def topic(agent: str, kind: AgentKind = "crossing") -> str:
    return agent_topic(SITE, agent, kind)


def occupancy_of(counts: dict[tuple[str, str], int]) -> dict[str, int]:
    """The door algebra applied to crossing counts (all `in` here, so order is moot)."""
    engine = OccupancyEngine(small_site())
    for (door, direction), n in counts.items():
        for _ in range(n):
            engine.apply(door, direction)
    return {s.zone: s.count for s in engine.states()}


def counts_of(q: InfluxQuery, agent: str | None = None) -> dict[tuple[str, str], int]:
    where = f" WHERE \"agent\" = '{agent}'" if agent else ""
    rows = q.rows(f'SELECT count("count") FROM "crossing"{where} GROUP BY "door", "dir"')
    return {(r["door"], r["dir"]): r["count"] for r in rows}


def metric(collector: Collector, name: str, **labels: str) -> float:
    value = collector.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


# -- item 5: QoS 0 cannot exhaust memory ---------------------------------------------------


def test_qos0_flood_with_influx_down_stays_bounded_and_qos1_is_all_stored(
    mosquitto: Mosquitto, influx: Influx
) -> None:
    receive_maximum, max_points = 200, 5_000
    collector = Collector(
        collector_settings(
            mosquitto.port,
            influx.url,
            receive_maximum=receive_maximum,
            max_queued_points=max_points,
        ),
        small_site(),
    )
    collector.start()
    assert collector.ready.wait(10)
    q = InfluxQuery(influx.url)
    pub = Publisher(mosquitto.port)
    qos1: list[tuple[str, str]] = []
    peak = {"unacked": 0, "points": 0}
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak["unacked"] = max(peak["unacked"], collector.unacked)
            peak["points"] = max(peak["points"], collector.queued_points)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        for i in range(10):  # before the outage, QoS 1
            events = [(i * 5 + k, DOORS[(i + k) % 5], "in") for k in range(5)]
            pub.send(topic("pi-1"), crossing_batch("epoch-1", events))
            qos1 += [(d, dr) for _, d, dr in events]
        wait_for(lambda: counts_of(q) == dict(Counter(qos1)), what="before the outage")
        influx.kill()
        sampler.start()
        # A QoS 0 flood from another agent, as fast as Mosquitto's own client sends it:
        # 20,000 messages of 20 crossings, about 60 points each (1.2 M points in all).
        flood_messages, per_message = 20_000, 20
        ts = format_ts(now_ms())
        payloads = []
        for m in range(flood_messages):
            flood_events = [
                {"seq": m * per_message + k, "ts": ts, "door": DOORS[k % 5], "dir": "in"}
                for k in range(per_message)
            ]
            payloads.append(json.dumps({"epoch": "flood", "events": flood_events}))
        command = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.port)]
        command += ["-q", "0", "-t", topic("pi-2"), "-l"]
        flood = subprocess.Popen(command, stdin=subprocess.PIPE)
        # QoS 1 crossings during the outage, interleaved with the flood.
        seq = 50
        for i in range(30):
            events = [(seq + k, DOORS[(i + k) % 5], "in") for k in range(5)]
            seq += 5
            pub.send(topic("pi-1"), crossing_batch("epoch-1", events))
            qos1 += [(d, dr) for _, d, dr in events]
            if i == 0:
                assert flood.stdin is not None
                flood.stdin.write(("\n".join(payloads) + "\n").encode())
                flood.stdin.close()
        assert flood.wait(120) == 0
        time.sleep(2.0)  # let the collector read what the broker still sends it
        sampling.set()
        sampler.join()
        dropped = metric(collector, "footfall_rejected_total", reason="overload_qos0")
        # Without the bound the flood queued up to 0.9 M points and 20,000 messages.
        assert peak["points"] <= max_points + per_message * 5 + 1_000, peak
        assert peak["unacked"] <= 2 * receive_maximum, peak
        assert dropped >= 1_000
        assert not collector.healthy

        influx.start()
        wait_for(
            lambda: counts_of(q, "pi-1") == dict(Counter(qos1)), 90, "every QoS 1 crossing stored"
        )
        # Every QoS 0 message the collector took is stored in full; the rest were dropped.
        taken = metric(collector, "footfall_messages_total", kind="crossing") - 40
        assert taken >= 1
        wait_for(
            lambda: sum(counts_of(q, "pi-2").values()) == taken * per_message,
            60,
            "the QoS 0 messages taken stored",
        )
        assert taken + dropped <= flood_messages
        wait_for(lambda: collector.unacked == 0 and collector.queued_points == 0)
        wait_for(
            lambda: (
                {z: v["count"] for z, v in collector.occupancy().items()}
                == occupancy_of(counts_of(q))
            ),
            what="occupancy equal to the stored crossings' door algebra",
        )
    finally:
        sampling.set()
        pub.close()
        collector.stop()


# -- item 6: exactly-once with bounded memory ----------------------------------------------


def test_late_redelivery_below_the_window_is_not_counted_twice(
    mosquitto: Mosquitto, influx: Influx
) -> None:
    """Keys kept per agent: 4 to 8. Crossings older than those are checked against
    InfluxDB: a re-delivery is not counted again, a first delivery is counted once, in
    the running collector and after a restart (whose rebuild reads pages of 7 rows)."""
    settings = collector_settings(mosquitto.port, influx.url, dedup_keys_per_agent=4)
    collector = Collector(settings, small_site())
    collector.start()
    assert collector.ready.wait(10)
    q = InfluxQuery(influx.url)
    pub = Publisher(mosquitto.port)
    base = now_ms() - 120_000
    sent: list[tuple[str, str]] = []
    payloads = []
    try:
        for i in range(12):
            events = [(i * 3 + k, DOORS[(i + k) % 5], "in") for k in range(3)]
            payloads.append(crossing_batch("epoch-1", events, base + i * 5_000))
            pub.send(topic("pi-1"), payloads[-1])
            sent += [(d, dr) for _, d, dr in events]
        want = dict(Counter(sent))
        wait_for(lambda: counts_of(q) == want, what="stored")
        wait_for(lambda: collector.occupancy()["centre"]["count"] == occupancy_of(want)["centre"])
        assert collector.dedup_keys <= 8
        dups = metric(collector, "footfall_duplicate_crossings_total")

        # The oldest five messages again (a broker re-delivery after a reconnect): far
        # below the keys still held, so only InfluxDB knows they were counted.
        for payload in payloads[:5]:
            pub.send(topic("pi-1"), payload)
        # A crossing never seen, stamped long before (an agent whose clock went back),
        # twice in one message: counted once.
        fresh = crossing_batch(
            "epoch-1", [(500, "kela-door", "in"), (500, "kela-door", "in")], base - 5_000
        )
        pub.send(topic("pi-1"), fresh)
        pub.send(topic("pi-1"), fresh)  # and re-delivered
        sent.append(("kela-door", "in"))
        want = dict(Counter(sent))
        wait_for(
            lambda: metric(collector, "footfall_duplicate_crossings_total") == dups + 15 + 3,
            what="15 re-delivered and 3 repeated crossings taken as duplicates",
        )
        wait_for(lambda: collector.unacked == 0)
        assert counts_of(q) == want
        expected = occupancy_of(want)
        assert {z: v["count"] for z, v in collector.occupancy().items()} == expected
        collector.stop()

        restarted = Collector(settings, small_site())
        restarted.REBUILD_PAGE = 7
        restarted.start()
        collector = restarted
        assert collector.ready.wait(10)
        assert {z: v["count"] for z, v in collector.occupancy().items()} == expected
        assert collector.dedup_keys <= 8
        for payload in [*payloads[:3], fresh, payloads[-1]]:
            pub.send(topic("pi-1"), payload)
        wait_for(
            lambda: metric(collector, "footfall_duplicate_crossings_total") == 3 * 4 + 2,
            what="re-deliveries after the restart taken as duplicates",
        )
        wait_for(lambda: collector.unacked == 0)
        assert {z: v["count"] for z, v in collector.occupancy().items()} == expected
        assert counts_of(q) == want
    finally:
        pub.close()
        collector.stop()


# -- item 7: a refused point never holds up the others -------------------------------------


class CountingInflux(InfluxV1):
    """The real v1 client, noting what each write request carried."""

    def __init__(self, settings: InfluxSettings) -> None:
        super().__init__(settings)
        self.requests: list[list[str]] = []

    def write(self, lines: list[str], rp: str | None = None) -> None:
        self.requests.append(list(lines))
        super().write(lines, rp)


def conflict_in_todays_shard(url: str) -> None:
    """`agent_health.uptime_s` as a string where the collector writes a float."""
    http = urllib3.PoolManager()
    http.request("POST", f"{url}/query", fields={"q": "CREATE DATABASE footfall"})
    line = f'agent_health,agent=pi-9,site={SITE} uptime_s="text" {time.time_ns()}'
    r = http.request("POST", f"{url}/write?db=footfall", body=line.encode())
    assert r.status == 204


def test_a_refused_point_costs_one_request_and_the_batch_is_stored(
    mosquitto: Mosquitto, influx: Influx
) -> None:
    conflict_in_todays_shard(influx.url)
    settings = collector_settings(mosquitto.port, influx.url, flush_interval_s=2.0)
    client = CountingInflux(settings.influx)
    collector = Collector(settings, small_site(), influx=client)
    collector.start()
    assert collector.ready.wait(10)
    q = InfluxQuery(influx.url)
    pub = Publisher(mosquitto.port)
    sent: list[tuple[str, str]] = []
    health = {"epoch": "e", "ts": format_ts(now_ms()), "uptime_s": 5.5}
    health |= {"queue_depth": 0, "totals": {}}
    try:
        # Let the first writes of the start-up (heartbeat) go, then one burst.
        time.sleep(2.5)
        before = len(client.requests)
        for i in range(20):
            events = [(i * 4 + k, DOORS[(i + k) % 5], "in") for k in range(4)]
            pub.send(topic("pi-1"), crossing_batch("e", events))
            sent += [(d, dr) for _, d, dr in events]
            if i == 10:
                pub.send(topic("pi-1", "health"), json.dumps(health))
        wait_for(lambda: counts_of(q) == dict(Counter(sent)), what="every good crossing stored")
        wait_for(lambda: collector.unacked == 0, what="every message acknowledged")
        burst = client.requests[before:]
        with_health = [r for r in burst if any(line.startswith("agent_health") for line in r)]
        assert len(with_health) == 1, "the refused point was sent once"
        crossing_lines = [line for r in burst for line in r if line.startswith("crossing,")]
        assert len(crossing_lines) == len(sent) == len(set(crossing_lines)), "none re-sent"
        assert sum(line.startswith("crossing,") for line in with_health[0]) >= 40
        dropped = "footfall_influx_dropped_points_total"
        assert metric(collector, dropped, reason="field_type_conflict") == 1
        assert metric(collector, "footfall_influx_write_errors_total", kind="permanent") == 1
        assert q.rows('SELECT "uptime_s" FROM "agent_health" WHERE "agent" = \'pi-1\'') == []
    finally:
        pub.close()
        collector.stop()


def test_influx_partial_write_is_told_apart_from_a_refused_request(influx: Influx) -> None:
    conflict_in_todays_shard(influx.url)
    client = InfluxV1(InfluxSettings(url=influx.url))
    t = time.time_ns()
    good = [
        f"crossing,agent=pi-1,dir=in,door=kela-door,site={SITE} count=1i {t + k}" for k in (1, 2)
    ]
    bad = f"agent_health,agent=pi-1,site={SITE} uptime_s=1.5 {t}"
    with pytest.raises(PermanentWriteError) as partial:
        client.write([good[0], bad, good[1]])
    assert (partial.value.partial, partial.value.reason, partial.value.dropped) == (
        True,
        "field_type_conflict",
        1,
    )
    assert sum(counts_of(InfluxQuery(influx.url)).values()) == 2
    with pytest.raises(PermanentWriteError) as whole:
        client.write(["not line protocol", "nor this"])
    assert (whole.value.partial, whole.value.reason) == (False, "unparseable")


def test_a_request_refused_as_a_whole_is_split_within_a_budget(influx: Influx) -> None:
    """Nothing of it writable: at most SPLIT_BUDGET more requests, every point counted."""
    settings = collector_settings(1, influx.url)
    client = CountingInflux(settings.influx)
    client.ensure_database()
    collector = Collector(settings, small_site(), influx=client)
    try:
        lines = [f"garbage line {i}" for i in range(500)]
        assert collector.writer.write_lines(lines)
        assert len(client.requests) <= 1 + InfluxWriter.SPLIT_BUDGET
        dropped = "footfall_influx_dropped_points_total"
        assert metric(collector, dropped, reason="unparseable") == 500
    finally:
        collector.influx.close()
