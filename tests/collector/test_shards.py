"""Two collector shards (`--sites-dir DIR --shard K/2`, separate processes) over ten
generated sites under load, against real Mosquitto and InfluxDB: one shard SIGKILLed mid
stream and restarted as a new process loses and doubles nothing, and no site is ever
served by both (each shard's /healthz against footfall_contract.shards.assign)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import urllib3
from paho.mqtt.enums import CallbackAPIVersion

from footfall_contract.shards import assign
from footfall_contract.site import load_site
from footfall_sim.localservices import Influx, Mosquitto
from tests.collector.test_multisite import Crossing, occupancy, stored_crossings, walk
from tests.support.collector import InfluxQuery, crossing_batch, now_ms, wait_for

SITES = [f"site-{i:02d}" for i in range(10)]


def site_yaml(site: str) -> str:
    return f"""\
site: {site}
name: Site {site}
timezone: Europe/Helsinki
reset_at: "03:00"
zones:
  - {{id: hall, name: Hall, capacity: 500}}
  - {{id: room, name: Room, parent: hall, capacity: 50}}
doors:
  - {{id: main, outside: null, inside: hall}}
  - {{id: room-door, outside: hall, inside: room}}
  - {{id: side, outside: null, inside: room}}
"""


def shard_process(
    folder: Path, shard: str, mqtt_port: int, influx_url: str, log: Path
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
    command = [sys.executable, "-m", "footfall_collector.cli", "run"]
    command += ["--sites-dir", str(folder), "--shard", shard]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "ab"))


def healthz(log: Path, after: int = 0) -> dict[str, Any] | None:
    """The /healthz of the shard process whose log starts at byte `after`."""
    ports = re.findall(r"http://127\.0\.0\.1:(\d+)/healthz", log.read_text()[after:])
    if not ports:
        return None
    r = urllib3.request("GET", f"http://127.0.0.1:{ports[-1]}/healthz", retries=False)
    body: dict[str, Any] = json.loads(r.data)
    return body if r.status == 200 else None


def test_two_shards_one_killed_and_restarted_lose_and_double_nothing(
    mosquitto: Mosquitto, influx: Influx, tmp_path: Path
) -> None:
    folder = tmp_path / "sites"
    folder.mkdir()
    for s in SITES:
        (folder / f"{s}.yaml").write_text(site_yaml(s))
    sites = {s: load_site(folder / f"{s}.yaml") for s in SITES}
    plan = assign(SITES, 2)
    assert plan[1] and plan[2]  # both shards have work
    logs = {k: tmp_path / f"shard-{k}.log" for k in (1, 2)}
    procs = {
        k: shard_process(folder, f"{k}/2", mosquitto.port, influx.url, logs[k]) for k in (1, 2)
    }
    q = InfluxQuery(influx.url)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="shard-test-publisher")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    rng = random.Random(2)
    truth = {s: walk(sites[s], 300, rng) for s in SITES}  # 3,000 crossings in all
    sent: dict[str, list[Crossing]] = {s: [] for s in SITES}

    def publish(rounds: range) -> None:
        infos = []
        for r in rounds:
            time.sleep(
                0.02
            )  # a stream, not one burst  # 10 crossings per message, every site in turn
            for s in SITES:
                part = truth[s][r * 10 : r * 10 + 10]
                events = [(r * 10 + k, d, dr) for k, (d, dr) in enumerate(part)]
                topic = f"footfall/v1/{s}/agent/pi-{s}/crossing"
                infos.append(pub.publish(topic, crossing_batch("e1", events, now_ms()), qos=1))
                sent[s] += part
        for info in infos:
            info.wait_for_publish(20)

    try:
        for k in (1, 2):
            body = wait_for(partial(healthz, logs[k]), 30, f"shard {k} up")
            assert body is not None and body["sites"] == plan[k] and body["shard"] == f"{k}/2"
        first = threading.Thread(target=publish, args=(range(0, 10),))
        first.start()
        wait_for(lambda: any(stored_crossings(q, s) for s in plan[1]), 20, "shard 1 writing")
        procs[1].send_signal(signal.SIGKILL)  # mid-stream: some written, some not acknowledged
        killed = time.monotonic()
        procs[1].wait(10)
        first.join(30)
        print(
            f"\nat the kill: {sum(sum(stored_crossings(q, s).values()) for s in plan[1])} "
            f"of shard 1's crossings stored"
        )
        publish(range(10, 20))  # while shard 1 is down: its session keeps its sites' messages
        offset = logs[1].stat().st_size
        procs[1] = shard_process(folder, "1/2", mosquitto.port, influx.url, logs[1])
        publish(range(20, 30))
        body = wait_for(lambda: healthz(logs[1], offset), 30, "shard 1 back")
        serving_again = time.monotonic() - killed
        assert body is not None and body["sites"] == plan[1]
        other = healthz(logs[2])
        assert other is not None and not set(plan[1]) & set(other["sites"])

        def exact() -> list[str]:
            return [s for s in SITES if stored_crossings(q, s) != dict(Counter(sent[s]))]

        wait_for(lambda: not exact(), 60, "every site's crossings stored exactly")
        counted_again = time.monotonic() - killed
        # stored once each: as many crossing points per site as were published
        rows = q.rows('SELECT count("count") FROM "crossing" GROUP BY "site"')
        assert {r["site"]: r["count"] for r in rows} == {s: 300 for s in SITES}
        # and applied once each: every site's live occupancy, read from its own shard
        for k in (1, 2):
            port = re.findall(r":(\d+)/healthz", logs[k].read_text())[-1]
            for s in plan[k]:
                r = urllib3.request("GET", f"http://127.0.0.1:{port}/occupancy?site={s}")
                got = {z: v["count"] for z, v in json.loads(r.data).items()}
                assert got == occupancy(sites[s], sent[s]), s
        print(
            f"\nshard 1 SIGKILLed: serving again after {serving_again:.1f} s, every site "
            f"counted exactly after {counted_again:.1f} s"
        )
    finally:
        pub.loop_stop()
        pub.disconnect()
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(20)
