"""Collector throughput, latency and memory against real Mosquitto and InfluxDB.

One run measures:
  ceiling     InfluxDB's own line-protocol batch write rate of the same crossing points
              (5,000 a request, one writer), the baseline the collector is quoted against;
  batched     events/s from the first publish to the last event queryable in InfluxDB,
              50 events per message;
  single      messages/s the same way, one event per message;
  latency     publish -> queryable at 200 events/s (p50, p99), polling InfluxDB every 10 ms;
  RSS         the collector process's resident memory, sampled during each phase;
  overload    InfluxDB killed, a QoS 0 flood (`mosquitto_pub -l -q 0`, 50 crossings a
              message) for `--overload-s` seconds with QoS 1 crossings alongside: the
              collector's RSS with the default bounds and with them lifted (what it was
              before QoS 0 was bounded), QoS 0 messages dropped, and every QoS 1 crossing
              stored once InfluxDB is back.

    .venv/bin/python -m benchmarks.ingest [--events 200000] [--messages 50000]
    .venv/bin/python -m benchmarks.ingest --overload-only [--overload-s 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
import urllib3
from paho.mqtt.enums import CallbackAPIVersion

from footfall_collector.points import Point, event_time_ns
from footfall_contract.timefmt import format_ts
from footfall_sim.localservices import Influx, Mosquitto, free_port
from tests.support.collector import InfluxQuery, write_site

TOPIC = "footfall/v1/test-site/agent/{agent}/crossing"
DOORS = ["centre-main", "library-main", "library-mall", "kela-door", "youth-door"]


def publish_process(
    port: int,
    agent: str,
    messages: int,
    per_message: int,
    rate: float,
    start_seq: int,
    out: mp.Queue[dict[str, Any]],
) -> None:
    """Publish at QoS 1 at `rate` messages/s, noting when each seq went out."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{agent}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    topic = TOPIC.format(agent=agent)
    sent_at: dict[int, float] = {}
    t0 = time.time()
    seq = start_seq
    infos = []
    for i in range(messages):
        if rate:
            delay = t0 + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        now = time.time()
        ts = format_ts(int(now * 1000))
        events = [
            {
                "seq": seq + k,
                "ts": ts,
                "door": DOORS[(seq + k) % 5],
                "dir": "in" if (seq + k) % 2 else "out",
            }
            for k in range(per_message)
        ]
        payload = json.dumps({"epoch": "bench", "events": events}, separators=(",", ":"))
        infos.append(client.publish(topic, payload, qos=1))
        if rate:
            sent_at[seq] = now
        seq += per_message
        if len(infos) > 5000:
            infos.pop(0).wait_for_publish(30)
    for info in infos:
        info.wait_for_publish(60)
    out.put({"t0": t0, "t_done": time.time(), "sent_at": sent_at})
    client.disconnect()
    client.loop_stop()


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.samples.append(self.proc.memory_info().rss / 2**20)

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return max(self.samples) if self.samples else self.proc.memory_info().rss / 2**20


def cpu_seconds(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def count(q: InfluxQuery) -> int:
    rows = q.rows('SELECT count("count") FROM "crossing"')
    return int(rows[0]["count"]) if rows else 0


def wait_count(q: InfluxQuery, n: int, timeout_s: float = 600) -> float:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if count(q) >= n:
            return time.time()
        time.sleep(0.05)
    raise TimeoutError(f"only {count(q)} of {n} events queryable")


def ceiling(influx_url: str, n: int) -> float:
    """InfluxDB's own batch write rate of the same points, in its own database."""
    http = urllib3.PoolManager()
    http.request("POST", f"{influx_url}/query", fields={"q": "CREATE DATABASE ceiling"})
    now = int(time.time() * 1000)
    lines = [
        Point(
            "crossing",
            {
                "site": "test-site",
                "door": DOORS[i % 5],
                "dir": "in" if i % 2 else "out",
                "agent": "bench",
            },
            {"count": 1},
            event_time_ns(now - n + i, i),
        ).line()
        for i in range(n)
    ]
    t0 = time.perf_counter()
    for i in range(0, n, 5000):
        r = http.request(
            "POST",
            f"{influx_url}/write?db=ceiling&precision=ns",
            body="\n".join(lines[i : i + 5000]).encode(),
        )
        assert r.status == 204, r.data
    return n / (time.perf_counter() - t0)


def run_phase(
    port: int, q: InfluxQuery, agent: str, messages: int, per_message: int, before: int
) -> dict[str, float]:
    """Publish as fast as Mosquitto's own C client can (`mosquitto_pub -l`, QoS 1, one
    message a line), so the publisher is not what is measured."""
    now = int(time.time() * 1000)
    lines = []
    for i in range(messages):
        seq = i * per_message
        events = [
            {
                "seq": seq + k,
                "ts": format_ts(now + (seq + k) // 1000),
                "door": DOORS[(seq + k) % 5],
                "dir": "in" if (seq + k) % 2 else "out",
            }
            for k in range(per_message)
        ]
        lines.append(json.dumps({"epoch": "bench", "events": events}, separators=(",", ":")))
    data = ("\n".join(lines) + "\n").encode()
    t0 = time.time()
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-q",
            "1",
            "-t",
            TOPIC.format(agent=agent),
            "-l",
        ],
        input=data,
        check=True,
    )
    t_done = time.time()
    return {
        "t0": t0,
        "t_done": t_done,
        "t_queryable": wait_count(q, before + messages * per_message),
    }


def latency_phase(
    port: int, q: InfluxQuery, seconds: float, rate: float, start_seq: int
) -> list[float]:
    seen: dict[int, float] = {}
    stop = threading.Event()

    def poll() -> None:
        # A 2 s overlap: InfluxDB may show part of a batch (some series) before the rest,
        # and `time > last` alone would then never see the rest (`setdefault` keeps the
        # first sighting).
        last = 0
        while not stop.is_set():
            since = last - 2_000_000_000
            rows = q.rows(
                f'SELECT "count" FROM "crossing" WHERE "agent" = \'lat\' AND time > {since}'
            )
            now = time.time()
            for r in rows:
                seen.setdefault(r["time"] % 1_000_000, now)
                last = max(last, r["time"])
            time.sleep(0.01)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    out: mp.Queue[dict[str, Any]] = mp.Queue()
    n = int(seconds * rate)
    p = mp.Process(target=publish_process, args=(port, "lat", n, 1, rate, start_seq, out))
    p.start()
    sent_at = out.get(timeout=300)["sent_at"]
    p.join()
    deadline = time.time() + 30
    while len(seen) < n and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    t.join()
    return sorted(seen[s % 1_000_000] - at for s, at in sent_at.items() if s % 1_000_000 in seen)


def scrape(port: int, name: str) -> float:
    """One sample of the collector's /metrics (0 when absent)."""
    text = urllib3.request("GET", f"http://127.0.0.1:{port}/metrics", timeout=5).data.decode()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def overload(seconds: float, bounded: bool) -> dict[str, float]:
    """One collector process, InfluxDB killed, a QoS 0 flood for `seconds` and 100 QoS 1
    messages of 5 crossings alongside; then InfluxDB back and the QoS 1 ones counted."""
    work = Path(tempfile.mkdtemp(prefix="overload-bench-"))
    broker, influx = Mosquitto(work / "mqtt"), Influx(work / "influx")
    broker.start()
    influx.start()
    http_port = free_port()
    env = {
        **os.environ,
        "FOOTFALL_MQTT__PORT": str(broker.port),
        "FOOTFALL_MQTT__HOST": "127.0.0.1",
        "FOOTFALL_INFLUX__URL": influx.url,
        "FOOTFALL_HTTP__PORT": str(http_port),
    }
    if not bounded:  # as before: nothing but Receive Maximum, which QoS 0 ignores
        env["FOOTFALL_INGEST__MAX_QUEUED_POINTS"] = str(10**9)
        env["FOOTFALL_INGEST__RECEIVE_MAXIMUM"] = "65535"
    log = open(work / "collector.log", "ab")  # noqa: SIM115
    collector = subprocess.Popen(
        [sys.executable, "-m", "footfall_collector.cli", "run", "--site", str(write_site(work))],
        env=env,
        stderr=log,
    )
    q = InfluxQuery(influx.url)
    now = int(time.time() * 1000)
    flood = work / "flood.txt"
    with open(flood, "w") as f:
        for m in range(5_000):
            events = [
                {"seq": m * 50 + k, "ts": format_ts(now), "door": DOORS[k % 5], "dir": "in"}
                for k in range(50)
            ]
            f.write(json.dumps({"epoch": "flood", "events": events}, separators=(",", ":")))
            f.write("\n")
    qos1 = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-qos1")
    try:
        deadline = time.time() + 30
        while time.time() < deadline and scrape_ok(http_port) is False:
            time.sleep(0.2)
        rss0 = psutil.Process(collector.pid).memory_info().rss / 2**20
        influx.kill()
        qos1.connect("127.0.0.1", broker.port)
        qos1.loop_start()
        rss = RssSampler(collector.pid)
        infos: list[mqtt.MQTTMessageInfo] = []
        t_end = time.time() + seconds
        sent = 0
        command = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "0"]
        command += ["-t", TOPIC.format(agent="flood"), "-l"]
        while time.time() < t_end:
            with open(flood, "rb") as stdin:
                pub = subprocess.Popen(command, stdin=stdin)
            while pub.poll() is None:
                if len(infos) < 100:
                    seq = len(infos) * 5
                    events = [
                        {"seq": seq + k, "ts": format_ts(now), "door": DOORS[k], "dir": "in"}
                        for k in range(5)
                    ]
                    payload = json.dumps({"epoch": "q1", "events": events})
                    infos.append(qos1.publish(TOPIC.format(agent="qos1"), payload, qos=1))
                time.sleep(0.05)
            sent += 5_000
        peak = rss.stop()
        dropped = scrape(http_port, 'footfall_rejected_total{reason="overload_qos0"}')
        influx.start()
        for info in infos:
            info.wait_for_publish(60)
        deadline = time.time() + 120
        stored = 0
        while time.time() < deadline:
            rows = q.rows('SELECT count("count") FROM "crossing" WHERE "agent" = \'qos1\'')
            stored = int(rows[0]["count"]) if rows else 0
            if stored >= len(infos) * 5:
                break
            time.sleep(0.5)
        return {
            "rss0": rss0,
            "peak": peak,
            "sent": sent,
            "dropped": dropped,
            "qos1": len(infos) * 5,
            "qos1_stored": stored,
        }
    finally:
        qos1.disconnect()
        qos1.loop_stop()
        collector.terminate()
        try:
            collector.wait(30)
        except subprocess.TimeoutExpired:
            collector.kill()
        broker.kill()
        influx.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def scrape_ok(port: int) -> bool:
    try:
        scrape(port, "footfall_unacked_messages")
        return True
    except (urllib3.exceptions.HTTPError, OSError):
        return False


def report_overload(seconds: float) -> None:
    print(
        f"overload: InfluxDB down, QoS 0 flood of 50-crossing messages for {seconds:.0f} s, "
        "100 QoS 1 messages alongside"
    )
    for bounded, label in ((False, "bounds lifted (as before)"), (True, "default bounds")):
        r = overload(seconds, bounded)
        print(
            f"  {label:26} collector RSS {r['rss0']:.0f} -> peak {r['peak']:.0f} MB; "
            f"{r['sent']:,.0f} QoS 0 messages sent, {r['dropped']:,.0f} dropped; "
            f"QoS 1 crossings stored within 120 s of InfluxDB returning: "
            f"{r['qos1_stored']} of {r['qos1']}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000, help="batched round, 50 a message")
    ap.add_argument("--messages", type=int, default=20_000, help="single-event round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per phase (median quoted)")
    ap.add_argument("--latency-s", type=float, default=30.0)
    ap.add_argument("--overload-s", type=float, default=20.0)
    ap.add_argument("--overload-only", action="store_true")
    args = ap.parse_args()
    if args.overload_only:
        report_overload(args.overload_s)
        return
    work = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    broker = Mosquitto(work / "mqtt")
    influx = Influx(work / "influx")
    broker.start()
    influx.start()
    log = open(work / "collector.log", "ab")  # noqa: SIM115
    env = {
        **os.environ,
        "FOOTFALL_MQTT__PORT": str(broker.port),
        "FOOTFALL_MQTT__HOST": "127.0.0.1",
        "FOOTFALL_INFLUX__URL": influx.url,
        "FOOTFALL_HTTP__PORT": "0",
    }
    collector = subprocess.Popen(
        [sys.executable, "-m", "footfall_collector.cli", "run", "--site", str(write_site(work))],
        env=env,
        stderr=log,
    )
    try:
        q = InfluxQuery(influx.url)
        time.sleep(2)
        ceil = statistics.median(ceiling(influx.url, args.events) for _ in range(3))

        rates: dict[str, list[float]] = {
            "batch": [],
            "single": [],
            "pub-batch": [],
            "pub-single": [],
        }
        rss_peak: dict[str, float] = {}
        cpu_us: dict[str, float] = {}  # collector CPU per message: steadier than rates here
        for phase, total, per_message in (("batch", args.events, 50), ("single", args.messages, 1)):
            rss = RssSampler(collector.pid)
            cpu0 = cpu_seconds(collector.pid)
            for k in range(args.rounds):
                before = count(q)
                r = run_phase(
                    broker.port, q, f"{phase}-{k}", total // per_message, per_message, before
                )
                rates[phase].append(total / per_message / (r["t_queryable"] - r["t0"]))
                rates[f"pub-{phase}"].append(total / per_message / (r["t_done"] - r["t0"]))
            rss_peak[phase] = rss.stop()
            messages = args.rounds * total // per_message
            cpu_us[phase] = (cpu_seconds(collector.pid) - cpu0) / messages * 1e6
        batched = statistics.median(rates["batch"]) * 50
        pub_batched = statistics.median(rates["pub-batch"]) * 50
        single = statistics.median(rates["single"])
        pub_single = statistics.median(rates["pub-single"])
        rss_batched, rss_single = rss_peak["batch"], rss_peak["single"]

        rss = RssSampler(collector.pid)
        lat = latency_phase(broker.port, q, args.latency_s, 200.0, 0)
        rss_lat = rss.stop()
    finally:
        collector.terminate()
        collector.wait(30)
        broker.kill()
        influx.kill()
    p50 = lat[len(lat) // 2] * 1000
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000
    print(
        "collector ingest, this machine (2 cores shared by broker, InfluxDB, collector and "
        "publisher)"
    )
    print(f"ceiling: InfluxDB line-protocol batch writes {ceil:,.0f} points/s (median of 3)")
    print(
        f"{args.rounds} rounds a phase, medians quoted. batched rounds: "
        + ", ".join(f"{r * 50:,.0f}" for r in rates["batch"])
        + " events/s; single rounds: "
        + ", ".join(f"{r:,.0f}" for r in rates["single"])
        + " messages/s"
    )
    print(
        f"batched: {batched:,.0f} events/s publish->queryable, 50 events/message "
        f"({batched / ceil:.0%} of the ceiling; publisher alone {pub_batched:,.0f}/s); "
        f"target >= 20,000: {'met' if batched >= 20_000 else 'NOT met'}"
    )
    print(
        f"single:  {single:,.0f} messages/s publish->queryable, 1 event/message "
        f"({single / ceil:.0%} of the ceiling; publisher alone {pub_single:,.0f}/s); "
        f"target >= 5,000: {'met' if single >= 5_000 else 'NOT met'}"
    )
    print(
        f"collector CPU per message (user + system, all threads): single "
        f"{cpu_us['single']:.0f} us, batched {cpu_us['batch']:.0f} us "
        f"({cpu_us['batch'] / 50:.1f} us an event)"
    )
    print(
        f"latency at 200 events/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms over {len(lat)} events "
        f"(10 ms polling); targets p50 < 300, p99 < 1000: "
        f"{'met' if p50 < 300 and p99 < 1000 else 'NOT met'}"
    )
    worst = max(rss_batched, rss_single, rss_lat)
    print(
        f"collector RSS peak: batched {rss_batched:.0f} MB, single {rss_single:.0f} MB, "
        f"latency {rss_lat:.0f} MB; target <= 150: {'met' if worst <= 150 else 'NOT met'}"
    )

    report_overload(args.overload_s)


if __name__ == "__main__":
    main()
