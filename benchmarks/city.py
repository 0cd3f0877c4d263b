"""Many sites in one collector, and shard fail-over, against real Mosquitto and InfluxDB
(docs/scaling.md §6; docs/collector.md, "Many sites, and shards of them").

1. One collector (`--sites-dir`) over 40 generated sites (3 zones, 4 doors, 10 agents
   each: 400 agents) against it over 1 such site (`--site`, 10 agents), alternated, a fresh
   database each run: the same number of 1-event QoS 1 crossing messages over all agents
   (pre-encoded MQTT packets on one socket: as cheap as `mosquitto_pub -l`, which knows one
   topic only), messages/s from the first publish to the last crossing countable in
   InfluxDB, collector CPU a message, RSS idle after start, at the end and peak.
2. Two shards (`--shard K/2`) over the 40 sites, `--rate` crossings/s over all agents;
   shard 1 SIGKILLed and started again at once (systemd's RestartSec would add to every
   time): from the kill until (a) its /healthz is ready, (b) a crossing published after
   the kill to one of its sites is stored, (b2) all published to them before the restart
   are stored (split by the new process's log); then, publishing paused, (c) stored
   crossings per site, agent and direction equal the published ones, and each site's live
   occupancy (from its shard) the door algebra: a duplicate would count twice there.

50 events a message, and InfluxDB's series of 40 sites: `benchmarks/city_batch.py`.

    .venv/bin/python -m benchmarks.city [--quick] [--messages 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
import urllib3
from paho.mqtt.enums import CallbackAPIVersion

from footfall_contract.shards import assign
from footfall_contract.timefmt import format_ts
from footfall_sim.localservices import Influx, Mosquitto, free_port
from tests.support.collector import InfluxQuery

SITES = [f"city-{i:02d}" for i in range(40)]
AGENTS_PER_SITE = 10
DOORS = ["main", "side", "a-door", "b-door"]
ENTERS = {"main": "hall", "side": "hall", "a-door": "room-a", "b-door": "room-b"}  # by "in"
Agent = tuple[str, int]  # (site, agent number); its door: DOORS[number % 4]
Msg = tuple[str, bytes]  # (topic, payload)
Result = dict[str, Any]
NAN = float("nan")


def site_yaml(site: str) -> str:
    reset = (dt.datetime.now(dt.UTC).hour + 12) % 24  # no daily reset during the run
    return f"""\
site: {site}
name: Site {site}
timezone: UTC
reset_at: "{reset:02d}:00"
zones:
  - {{id: hall, name: Hall, capacity: 500}}
  - {{id: room-a, name: Room A, parent: hall, capacity: 50}}
  - {{id: room-b, name: Room B, parent: hall, capacity: 50}}
doors:
  - {{id: main, outside: null, inside: hall}}
  - {{id: side, outside: null, inside: hall}}
  - {{id: a-door, outside: hall, inside: room-a}}
  - {{id: b-door, outside: hall, inside: room-b}}
"""


def agents_of(sites: list[str]) -> list[Agent]:
    """Site-major within each agent number, so consecutive messages go to other sites."""
    return [(s, j) for j in range(AGENTS_PER_SITE) for s in sites]


def crossing(agent: Agent, seq: int, ts_ms: int) -> Msg:
    """One event; each agent alternates in and out on its door, so no zone goes below 0."""
    door, direction = DOORS[agent[1] % 4], "in" if seq % 2 == 0 else "out"
    event = {"seq": seq, "ts": format_ts(ts_ms), "door": door, "dir": direction}
    topic = f"footfall/v1/{agent[0]}/agent/pi-{agent[1]}/crossing"
    return topic, json.dumps({"epoch": "city", "events": [event]}).encode()


def _packet(first: int, body: bytes) -> bytes:
    """An MQTT packet: type and flags, remaining length (variable-length integer), body."""
    n, length = len(body), bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        length.append(digit | (0x80 if n else 0))
        if not n:
            return bytes([first]) + bytes(length) + body


def _text(s: str) -> bytes:
    return len(s.encode()).to_bytes(2, "big") + s.encode()


def blast(port: int, messages: list[Msg]) -> tuple[float, float]:
    """Every message at QoS 1 over one connection; (first send, last PUBACK) times."""
    data = b"".join(
        _packet(0x32, _text(t) + (1 + i % 65535).to_bytes(2, "big") + payload)
        for i, (t, payload) in enumerate(messages)
    )
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(_packet(0x10, _text("MQTT") + bytes([4, 2, 0, 60]) + _text("city-bench")))
    assert sock.recv(4)[:2] == b"\x20\x02", "no CONNACK"
    acked = threading.Event()

    def read_acks() -> None:
        buf, pubacks = b"", 0
        while pubacks < len(messages):
            chunk = sock.recv(65536)
            if not chunk:
                return
            buf += chunk
            while len(buf) >= 2 and len(buf) >= 2 + buf[1]:  # PUBACKs: remaining length 2
                pubacks += buf[0] >> 4 == 4
                buf = buf[2 + buf[1] :]
        acked.set()

    threading.Thread(target=read_acks, daemon=True).start()
    t0 = time.time()
    sock.sendall(data)
    if not acked.wait(300):
        raise TimeoutError("the broker did not acknowledge every message")
    t_acked = time.time()
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    return t0, t_acked


@contextlib.contextmanager
def services(folder: Path) -> Iterator[tuple[Mosquitto, Influx]]:
    broker, influx = Mosquitto(folder / "mqtt"), Influx(folder / "influx")
    broker.start()
    influx.start()
    try:
        yield broker, influx
    finally:
        broker.kill()
        influx.kill()


class Proc:
    """`footfall-collector run ARGS` with its own HTTP port, database and log."""

    def __init__(self, args: list[str], broker: Mosquitto, influx: Influx, db: str, log: Path):
        self.args, self.log, self.http_port = args, log, free_port()
        self.env = os.environ | {
            "FOOTFALL_MQTT__HOST": "127.0.0.1",
            "FOOTFALL_MQTT__PORT": str(broker.port),
            "FOOTFALL_INFLUX__URL": influx.url,
            "FOOTFALL_INFLUX__DATABASE": db,
            "FOOTFALL_HTTP__PORT": str(self.http_port),
        }
        self.start()

    def start(self) -> None:
        self.started = time.time()
        command = [sys.executable, "-m", "footfall_collector.cli", "run", *self.args]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(command, env=self.env, stdout=log, stderr=log)

    def get(self, path: str) -> Any:
        r = urllib3.request("GET", f"http://127.0.0.1:{self.http_port}{path}", timeout=2)
        return json.loads(r.data) if r.status == 200 else None

    def ready(self) -> bool:
        try:
            return bool((self.get("/healthz") or {}).get("ready"))
        except (urllib3.exceptions.HTTPError, OSError):
            return False

    def wait_ready(self, timeout_s: float = 60) -> float:
        while not self.ready():
            if time.time() > self.started + timeout_s or self.proc.poll() is not None:
                raise RuntimeError(f"collector not ready; see {self.log}")
            time.sleep(0.02)
        return time.time() - self.started

    def rss(self) -> float:
        return float(psutil.Process(self.proc.pid).memory_info().rss / 2**20)

    def cpu(self) -> float:
        t = psutil.Process(self.proc.pid).cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(30)
        self.proc.kill()  # only if SIGTERM did not end it
        self.proc.wait(10)


def count(q: InfluxQuery, where: str = "") -> int:
    rows = q.rows(f'SELECT count("count") FROM "crossing"{where}')
    return int(rows[0]["count"]) if rows else 0


# -- 1. one collector over 40 sites against 1 site ------------------------------------


def collector(broker: Mosquitto, influx: Influx, work: Path, multi: bool, db: str) -> Proc:
    """A collector over the 40 sites (`--sites-dir`) or the one (`--site`), starting."""
    args = ["--sites-dir", str(work / "sites")] if multi else ["--site", str(work / "solo.yaml")]
    return Proc(args, broker, influx, db, work / f"{db}.log")


def idle(c: Proc) -> Result:
    """Start time, and RSS after 2 s of rest."""
    start_s = c.wait_ready()
    time.sleep(2)
    return {"start_s": start_s, "rss_idle": c.rss()}


def publish_and_store(c: Proc, port: int, q: InfluxQuery, messages: list[Msg], n: int) -> Result:
    """`messages` published until `n` crossings are countable in InfluxDB: rate (crossings
    a second), pub_rate (messages a second the broker took), CPU and RSS of the collector."""
    cpu0, peak = c.cpu(), c.rss()
    t0, t_acked = blast(port, messages)
    while count(q) < n:  # RSS sampled as the collector works through the messages
        peak = max(peak, c.rss())
        if time.time() > t0 + 600:
            raise TimeoutError(f"only {count(q)} of {n} crossings stored; see {c.log}")
        time.sleep(0.05)
    t_stored, cpu = time.time(), c.cpu() - cpu0
    time.sleep(1)
    return {
        "rate": n / (t_stored - t0),
        "pub_rate": len(messages) / (t_acked - t0),
        "cpu_us": cpu / n * 1e6,
        "rss_end": c.rss(),
        "rss_peak": max(peak, c.rss()),
    }


def one_run(broker: Mosquitto, influx: Influx, work: Path, multi: bool, n: int, db: str) -> Result:
    c = collector(broker, influx, work, multi, db)
    try:
        res = idle(c)
        agents, now = agents_of(SITES if multi else ["solo"]), int(time.time() * 1000)
        messages = [crossing(agents[i % len(agents)], i // len(agents), now) for i in range(n)]
        return res | publish_and_store(c, broker.port, InfluxQuery(influx.url, db), messages, n)
    finally:
        c.stop()


def part_sites(work: Path, n: int, rounds: int) -> dict[str, list[Result]]:
    out: dict[str, list[Result]] = {"40 sites": [], "1 site": []}
    with services(work / "sites-services") as (broker, influx):
        for r in range(rounds):
            for label, multi in (("40 sites", True), ("1 site", False)):
                res = one_run(broker, influx, work, multi, n, f"{'many' if multi else 'one'}_{r}")
                out[label].append(res)
                shown = ", ".join(f"{k} {v:,.1f}" for k, v in res.items())
                print(f"  round {r + 1} {label}: {shown}", flush=True)
    return out


# -- 2. shard fail-over ------------------------------------------------------------------


class Stream(threading.Thread):
    """Crossings at `rate` a second over every agent, one a message, until `finish()`."""

    def __init__(self, port: int, agents: list[Agent], rate: float) -> None:
        super().__init__(daemon=True)
        self.agents, self.rate = agents, rate
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="city-stream")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.seqs: Counter[Agent] = Counter()
        self.sent: list[tuple[Agent, int, int]] = []  # (agent, seq, ts_ms)
        self.infos: list[mqtt.MQTTMessageInfo] = []
        self.lock, self.on, self.done = threading.Lock(), threading.Event(), threading.Event()
        self.on.set()

    def run(self) -> None:
        i, next_t = 0, time.monotonic()
        while not self.done.is_set():
            if not self.on.wait(0.05):
                next_t = time.monotonic()
                continue
            with self.lock:
                a, ts = self.agents[i % len(self.agents)], int(time.time() * 1000)
                t, payload = crossing(a, self.seqs[a], ts)
                self.infos.append(self.client.publish(t, payload, qos=1))
                self.sent.append((a, self.seqs[a], ts))
                self.seqs[a] += 1
            i, next_t = i + 1, next_t + 1 / self.rate
            time.sleep(max(0.0, next_t - time.monotonic()))

    def pause(self) -> None:
        self.on.clear()
        with self.lock:
            for info in self.infos:
                info.wait_for_publish(30)

    def finish(self) -> None:
        self.done.set()
        self.join(10)
        self.client.disconnect()
        self.client.loop_stop()


def mismatches(
    q: InfluxQuery, stream: Stream, shards: dict[int, Proc], plan: dict[int, list[str]]
) -> list[str]:
    rows = q.rows('SELECT count("count") FROM "crossing" GROUP BY "site", "agent", "dir"')
    got = {(r["site"], r["agent"], r["dir"]): r["count"] for r in rows}
    want = Counter((s, f"pi-{j}", "out" if n % 2 else "in") for (s, j), n, _ in stream.sent)
    out = [f"{k}: stored {got.get(k, 0)}, sent {v}" for k, v in want.items() if got.get(k) != v]
    out += [f"{k}: stored {v}, never sent" for k, v in got.items() if k not in want]
    for k, sites in plan.items():
        for s in sites:
            occ = {"hall": 0, "room-a": 0, "room-b": 0}  # the door algebra of these doors
            for (site, j), n in stream.seqs.items():
                occ[ENTERS[DOORS[j % 4]]] += site == s and n % 2
            live = shards[k].get(f"/occupancy?site={s}") or {}
            if {z: v["count"] for z, v in live.items()} != occ:
                out.append(f"{s} occupancy {live} != {occ}")
    return out


def restart_split(log: Path, offset: int, t_kill: float) -> Result:
    """Seconds from the kill to the new process's log lines: started (imports, settings,
    site files), rebuilt (every site's occupancy rebuilt), connected (session resumed)."""
    marks = {"started": "starting (MQTT client id", "rebuilt": "rebuilt occupancy"}
    marks["connected"] = "connected to MQTT"
    out: Result = {}
    for line in log.read_text()[offset:].splitlines():
        for key, text in marks.items():
            if text in line and (key == "rebuilt" or key not in out):
                stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                out[key] = stamp - t_kill
        out["new_session"] = out.get("new_session") or "session present: False" in line
    return out


def kill_and_restart(q: InfluxQuery, stream: Stream, shard: Proc, mine: list[str]) -> Result:
    where = f' WHERE "site" =~ /^({"|".join(mine)})$/'
    t_kill = time.time()
    shard.proc.kill()  # SIGKILL
    shard.proc.wait(10)
    restart_ms, offset = int(time.time() * 1000), shard.log.stat().st_size
    shard.start()  # at once: what systemd does after RestartSec
    after_kill = f"{where} AND time >= {(int(t_kill * 1000) + 1) * 10**6}"
    res: Result = {}
    while not {"ready", "first", "backlog"} <= res.keys() and time.time() < t_kill + 120:
        now = time.time() - t_kill
        if "ready" not in res and shard.ready():
            res["ready"] = now
        if "first" not in res and count(q, after_kill):
            res["first"] = now
        if "backlog" not in res:
            sent = sum(1 for (s, _), _, ts in list(stream.sent) if s in mine and ts < restart_ms)
            if count(q, f"{where} AND time < {restart_ms * 10**6}") >= sent:
                res["backlog"], res["backlog_n"] = now, sent
        time.sleep(0.02)
    return res | restart_split(shard.log, offset, t_kill)


def part_failover(work: Path, rate: float, warm_s: float, rounds: int) -> list[Result]:
    plan, out = assign(SITES, 2), []
    with services(work / "shard-services") as (broker, influx):
        args = ["--sites-dir", str(work / "sites"), "--shard"]
        shards = {
            k: Proc([*args, f"{k}/2"], broker, influx, "shards", work / f"shard-{k}.log")
            for k in (1, 2)
        }
        q, stream = InfluxQuery(influx.url, "shards"), None
        try:
            for k, c in shards.items():
                c.wait_ready()
                assert (c.get("/healthz") or {})["sites"] == plan[k], f"shard {k}: other sites"
            stream = Stream(broker.port, agents_of(SITES), rate)
            stream.start()
            for r in range(rounds):
                time.sleep(warm_s)
                res = kill_and_restart(q, stream, shards[1], plan[1])
                time.sleep(5)
                stream.pause()
                t_pause, diff = time.time(), ["not checked"]
                while diff and time.time() < t_pause + 60:
                    time.sleep(0.5)
                    diff = mismatches(q, stream, shards, plan)
                both = set((shards[2].get("/healthz") or {})["sites"]) & set(plan[1])
                res["exact"] = not diff and not both and not res["new_session"]
                res["sent"], res["diff"] = len(stream.sent), [*diff[:5], *sorted(both)]
                out.append(res)
                times = ", ".join(f"{k} {v:.2f}" for k, v in res.items() if type(v) is float)
                verdict = "exact" if res["exact"] else f"NOT EXACT {res['diff']}"
                print(f"  round {r + 1}: s from the kill: {times}; {res['sent']:,} sent: {verdict}")
                stream.on.set()
        finally:
            if stream is not None:
                stream.finish()
            for c in shards.values():
                c.stop()
    return out


def med(runs: list[Result], key: str) -> float:
    vals = [r[key] for r in runs if key in r]
    return statistics.median(vals) if vals else NAN


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short try: fewer messages")
    ap.add_argument("--messages", type=int, help="crossing messages a run (default 50,000)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per figure (medians quoted)")
    ap.add_argument("--rate", type=float, default=50.0, help="crossings/s during fail-over")
    ap.add_argument("--warm-s", type=float, help="publishing before each kill (default 30)")
    ap.add_argument("--keep", action="store_true", help="keep logs and data")
    args = ap.parse_args()
    n = args.messages or (5_000 if args.quick else 50_000)
    warm_s = args.warm_s if args.warm_s is not None else (5.0 if args.quick else 30.0)
    work = Path(tempfile.mkdtemp(prefix="city-bench-"))
    (work / "sites").mkdir()
    for site in SITES:
        (work / "sites" / f"{site}.yaml").write_text(site_yaml(site))
    (work / "solo.yaml").write_text(site_yaml("solo"))
    print(f"1. {n:,} 1-event QoS 1 messages a run, {args.rounds} rounds alternated", flush=True)
    tp = part_sites(work, n, args.rounds)
    plan = assign(SITES, 2)
    print(
        f"2. two shards over 40 sites ({len(plan[1])} and {len(plan[2])}), {args.rate:g} "
        f"crossings/s, shard 1 SIGKILLed after {warm_s:g} s and restarted at once",
        flush=True,
    )
    fo = part_failover(work, args.rate, warm_s, args.rounds)

    many, one = tp["40 sites"], tp["1 site"]
    print("\nsummary: medians; ratio = 40 sites (400 agents) / 1 site (10 agents), same run")
    for key, label, fmt in (
        ("rate", "messages/s, first publish -> all stored", "{:,.0f}"),
        ("cpu_us", "collector CPU us a message", "{:.1f}"),
        ("rss_idle", "RSS idle after start, MB", "{:.1f}"),
        ("rss_end", "RSS at the end, MB", "{:.1f}"),
        ("rss_peak", "RSS peak, MB", "{:.1f}"),
        ("start_s", "process start -> /healthz ready, s", "{:.2f}"),
    ):
        a, b = med(many, key), med(one, key)
        print(f"  {label:40} 40 sites {fmt.format(a):>7}  1 site {fmt.format(b):>7}  ", end="")
        print(f"ratio {a / b:.2f}")
    print(f"  publisher alone: {med(many + one, 'pub_rate'):,.0f} messages/s")
    print("shard 1 SIGKILLed, restarted at once (add systemd's RestartSec), seconds from the kill:")
    for key, label in (
        ("started", "new process logs 'starting' (imports, settings)"),
        ("rebuilt", f"its {len(plan[1])} sites' occupancy rebuilt"),
        ("connected", "MQTT connected, session resumed"),
        ("ready", "(a) /healthz ready"),
        ("first", "(b) a crossing published after the kill stored"),
        ("backlog", "(b2) all published before the restart stored"),
    ):
        shown = ", ".join(f"{r[key]:.2f}" for r in fo if key in r)
        print(f"  {label:48} median {med(fo, key):.2f} ({shown})")
    exact = bool(fo) and all(r["exact"] for r in fo)
    print(
        f"  (c) after every kill, stored = published per site, agent and direction, live "
        f"occupancy = door algebra: {'EXACT' if exact else 'NOT EXACT'} "
        f"({fo[-1]['sent'] if fo else 0:,} crossings)"
    )
    if args.keep or not exact:
        print(f"logs and data kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
