"""Soak: a whole site's day under faults, against real Mosquitto, InfluxDB, collector and
alerts service, ending with stored crossings compared to the simulator's truth, exactly.

One run:
  traffic     one simulated day of deploy/sites/iso-omena.yaml (its usual crowd, counted
              by the real detectors), from its first event to its last compressed into
              `--minutes` of real time, paced so that simulated time never runs ahead of
              the clock; every event keeps its simulated-day stamp;
  agents      one OS process per door (`python -m benchmarks.soak agent SPEC.json`), each a
              VirtualAgent (the real edge Outbox + Publisher) that stores its door's events
              as they fall due; after a SIGKILL it resumes where its durable outbox says
              (next seq = events stored: each event takes one seq), so the edge neither
              stores an event twice nor skips one;
  server      the collector and the alerts service as their own processes (the shipped
              CLIs, FOOTFALL_* settings), alerts with the site's rules file, mail to a local
              SMTP sink and its Teams webhook to a local HTTP sink;
  faults      at seeded random times, about one every 2.5 minutes and each kind at least
              once: SIGKILL of an agent (back after 1-3 s), an agent killed and restarted
              while another process holds `BEGIN IMMEDIATE` on its outbox (the locked
              outbox), an agent restarted with its clock jumped (health and status times
              offset; events keep their stamps), SIGKILL of the collector, SIGKILL of the
              alerts service, a broker restart (clean stop, 5-15 s away) and an InfluxDB
              SIGKILL (5-15 s away); a process that dies on its own is restarted after 5 s
              (as systemd's Restart=always, RestartSec=5) and reported;
  end         every outbox drained, the collector idle, then InfluxDB's crossings per door
              and direction against the detected events, `zone_flow` per zone and
              direction against the door algebra applied to them, faults per source: equal,
              or the run fails;
  memory      RSS of the collector, the alerts service, Mosquitto and InfluxDB every 10 s:
              median of the first 10% of samples against the last 10%.

    .venv/bin/python -m benchmarks.soak [--minutes 60] [--seed 1] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import pickle
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import urllib3
from prometheus_client.parser import text_string_to_metric_families

from footfall_collector.schema import CROSSING, FAULT, ZONE_FLOW
from footfall_contract.site import Site, load_site
from footfall_contract.timefmt import format_ts
from footfall_edge.detection import Crossing, Fault
from footfall_runtime.config import MqttSettings
from footfall_sim.crowd import Detected
from footfall_sim.localservices import Influx, Mosquitto, free_port
from footfall_sim.runner import Pacer, VirtualAgent, agent_ids, edge_config
from footfall_sim.scenario import simulate_day
from footfall_sim.visitors import VisitorModel
from tests.support.collector import InfluxQuery

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "deploy" / "sites" / "iso-omena.yaml"
CLOCK_ENV = "SOAK_CLOCK_OFFSET_MS"
RESTART_AFTER_S = 5.0  # a process that died on its own: systemd's RestartSec
SAMPLE_EVERY_S = 10.0

Counts = dict[tuple[str, str], int]


def real_ms() -> int:
    return time.time_ns() // 1_000_000


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# -- the agent process -----------------------------------------------------------------


def shift_edge_clock(offset_ms: int) -> None:
    """The edge's own clock (status and health times) `offset_ms` off; the events keep
    the stamps the simulator gave them."""
    import footfall_edge.agent as agent_module
    import footfall_edge.publisher as publisher_module

    real = publisher_module.now_ms

    def shifted() -> int:
        return real() + offset_ms

    publisher_module.now_ms = shifted
    setattr(agent_module, "now_ms", shifted)  # noqa: B010 (imported there by name)


def resume_index(state: Path, epoch: str, next_seq: int) -> tuple[int, dict[str, Any] | None]:
    """Events of the file already stored: the outbox's next seq, plus what earlier epochs
    stored if the outbox was replaced (the soak's own note, `soak.json`, knows that; a
    Pi would simply count on, and the old epoch's unsent events would be lost)."""
    note = read_json(state / "soak.json")
    if note is None:
        return next_seq, None
    if note["epoch"] == epoch:
        return int(note["base"]) + next_seq, None
    change = {"from": note["epoch"], "to": epoch, "stored_before": note["index"], "at": real_ms()}
    return int(note["index"]) + next_seq, change


def agent_main(spec_path: Path) -> int:
    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("soak.agent")
    spec = json.loads(spec_path.read_text())
    offset = int(os.environ.get(CLOCK_ENV, "0"))
    if offset:
        shift_edge_clock(offset)
        log.warning("edge clock offset by %+d ms", offset)
    with open(spec["events"], "rb") as f:
        events: list[Detected] = pickle.load(f)
    mqtt = MqttSettings(host="127.0.0.1", port=spec["port"])
    cfg = edge_config(spec["site"], spec["agent"], spec["doors"], mqtt, Path(spec["state_root"]))
    state = cfg.state_dir
    pacer = Pacer(spec["sim0_ms"], spec["wall0_ms"], spec["speed"])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    t_open = time.monotonic()
    agent = VirtualAgent(cfg)
    opened_s = time.monotonic() - t_open
    outbox = agent.outbox
    i, change = resume_index(state, outbox.epoch, outbox.next_seq)
    base = i - outbox.next_seq
    changes: list[dict[str, Any]] = (read_json(state / "soak.json") or {}).get("changes", [])
    if change is not None:
        log.error(
            "outbox epoch changed %s -> %s: the store was replaced", change["from"], change["to"]
        )
        changes.append(change)
    log.info(
        "agent %s: epoch %s, next seq %d, resuming at event %d of %d (%d waiting), "
        "outbox opened in %.2f s",
        cfg.agent,
        outbox.epoch,
        outbox.next_seq,
        i,
        len(events),
        outbox.depth,
        opened_s,
    )

    def note() -> None:
        write_json(
            state / "soak.json",
            {"epoch": outbox.epoch, "base": base, "index": i, "changes": changes},
        )

    def progress() -> None:
        write_json(
            Path(spec["progress"]),
            {
                "pid": os.getpid(),
                "epoch": outbox.epoch,
                "index": i,
                "total": len(events),
                "depth": agent.pending,
                "inflight": agent.publisher.inflight,
                "connected": agent.publisher.connected,
                "changes": changes,
                "opened_s": round(opened_s, 2),
                "t": real_ms(),
            },
        )

    note()
    agent.start()
    next_progress = 0.0
    try:
        while not stop.is_set():
            now = real_ms()
            j = i
            while j < len(events) and pacer.due_ms(events[j].wall_ms) <= now:
                j += 1
            if j > i:
                agent.store(events[i:j])
                i = j
                note()
            if time.monotonic() >= next_progress:
                progress()
                next_progress = time.monotonic() + 0.5
            stop.wait(0.1)
    finally:
        agent.stop()
        progress()
    return 0


def lock_main(path: Path, seconds: float) -> int:
    """Hold the outbox's write lock, as a backup job or a second agent might."""
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    db.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(seconds)
    db.execute("COMMIT")
    db.close()
    return 0


# -- the harness -------------------------------------------------------------------------


class Child:
    """A process the soak starts, kills and restarts: same command, same log (appended)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.down = False  # taken down on purpose (a fault), not to be restarted
        self.starts = 0

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.starts += 1
        self.down = False

    def kill(self) -> None:
        self.down = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def terminate(self, timeout_s: float = 20.0) -> None:
        self.down = True
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def died(self) -> int | None:
        """Its exit code if it ended without being asked to."""
        if self.down or self.proc is None:
            return None
        return self.proc.poll()


@dataclass
class FaultRecord:
    at_s: float
    kind: str
    target: str
    detail: str = ""


@dataclass
class Run:
    work: Path
    site: Site
    minutes: float
    seed: str
    lock_s: float
    clock_offset_ms: int
    rng: random.Random
    broker: Mosquitto
    influx: Influx
    agents: dict[str, Child] = field(default_factory=dict)
    progress: dict[str, Path] = field(default_factory=dict)
    server: dict[str, Child] = field(default_factory=dict)
    faults: list[FaultRecord] = field(default_factory=list)
    unexpected: list[FaultRecord] = field(default_factory=list)
    rss: dict[str, list[tuple[float, float, int]]] = field(default_factory=dict)
    """Per service: (seconds, MB, pid); agents: the largest of them."""
    metrics: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    http_port: dict[str, int] = field(default_factory=dict)
    t0: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def since(self) -> float:
        return time.time() - self.t0

    def say(self, text: str) -> None:
        print(f"[{self.since():7.1f} s] {text}", flush=True)

    def agent_progress(self, agent: str) -> dict[str, Any] | None:
        p = read_json(self.progress[agent])
        return p if isinstance(p, dict) else None

    # -- faults -------------------------------------------------------------------------

    def _agent_outage(self, agent: str) -> None:
        with self.lock:
            self.agents[agent].kill()
        time.sleep(self.rng.uniform(1.0, 3.0))

    def fault_agent_kill(self) -> FaultRecord:
        agent = self.rng.choice(sorted(self.agents))
        at = self.since()
        before = self.agent_progress(agent) or {}
        self._agent_outage(agent)
        with self.lock:
            self.agents[agent].start()
        return FaultRecord(at, "agent SIGKILL", agent, f"{before.get('depth', '?')} unacknowledged")

    def fault_agent_locked(self) -> FaultRecord:
        agent = self.rng.choice(sorted(self.agents))
        at = self.since()
        before = self.agent_progress(agent) or {}
        self._agent_outage(agent)
        path = self.work / "state" / agent / "outbox.sqlite3"
        holder = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.soak", "lock", str(path), str(self.lock_s)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None
        line = holder.stdout.readline().strip()
        with self.lock:
            self.agents[agent].start()
        holder.wait(self.lock_s + 30)
        time.sleep(3.0)
        after = self.agent_progress(agent) or {}
        alive = self.agents[agent].pid is not None
        epoch_same = after.get("epoch") == before.get("epoch")
        aside = sorted(p.name for p in path.parent.glob("outbox.sqlite3.corrupt-*"))
        detail = (
            f"lock {line or 'NOT taken'} {self.lock_s:g} s; agent "
            f"{'running' if alive else 'NOT running'}, opened its outbox in "
            f"{after.get('opened_s', '?')} s, epoch {'kept' if epoch_same else 'CHANGED'}"
            + (f", moved aside: {', '.join(aside)}" if aside else "")
        )
        return FaultRecord(at, "agent SIGKILL + locked outbox", agent, detail)

    def fault_clock_jump(self) -> FaultRecord:
        agent = self.rng.choice(sorted(self.agents))
        at = self.since()
        self._agent_outage(agent)
        with self.lock:
            child = self.agents[agent]
            child.env = {**child.env, CLOCK_ENV: str(self.clock_offset_ms)}
            child.start()
        return FaultRecord(
            at,
            "agent restarted with its clock jumped",
            agent,
            f"{self.clock_offset_ms / 3_600_000:+g} h on status and health from now on",
        )

    def _server_kill(self, name: str, label: str) -> FaultRecord:
        at = self.since()
        with self.lock:
            self.server[name].kill()
        away = self.rng.uniform(1.0, 3.0)
        time.sleep(away)
        with self.lock:
            self.server[name].start()
        return FaultRecord(at, label, name, f"back after {away:.1f} s")

    def fault_collector_kill(self) -> FaultRecord:
        return self._server_kill("collector", "collector SIGKILL")

    def fault_alerts_kill(self) -> FaultRecord:
        return self._server_kill("alerts", "alerts SIGKILL")

    def fault_broker_restart(self) -> FaultRecord:
        at = self.since()
        with self.lock:
            self.broker.stop()
        away = self.rng.uniform(5.0, 15.0)
        time.sleep(away)
        with self.lock:
            self.broker.start()
        return FaultRecord(at, "broker restart (clean stop)", "mosquitto", f"{away:.1f} s away")

    def fault_influx_restart(self) -> FaultRecord:
        at = self.since()
        with self.lock:
            self.influx.kill()
        away = self.rng.uniform(5.0, 15.0)
        time.sleep(away)
        with self.lock:
            self.influx.start(60)
        return FaultRecord(at, "InfluxDB SIGKILL + restart", "influxd", f"{away:.1f} s away")

    def schedule(self, n: int) -> list[tuple[float, str]]:
        """`n` faults in 5-85% of the traffic's time, one per slot; every kind once first."""
        kinds = [
            "agent_kill",
            "agent_locked",
            "clock_jump",
            "collector_kill",
            "alerts_kill",
            "broker_restart",
            "influx_restart",
        ]
        extra = ["agent_kill", "agent_kill", "agent_locked", "collector_kill", "alerts_kill"]
        extra += ["broker_restart", "influx_restart"]
        chosen = kinds[:n] + [self.rng.choice(extra) for _ in range(n - len(kinds))]
        self.rng.shuffle(chosen)
        span = self.minutes * 60.0
        start, slot = 0.05 * span, 0.8 * span / n
        return [
            (start + (k + self.rng.uniform(0.1, 0.7)) * slot, kind) for k, kind in enumerate(chosen)
        ]

    def inject(self, plan: list[tuple[float, str]]) -> None:
        for at, kind in plan:
            if self.stop.wait(max(0.0, at - self.since())):
                return
            self.say(f"fault: {kind}")
            record: FaultRecord = getattr(self, f"fault_{kind}")()
            self.faults.append(record)
            self.say(f"fault done: {record.kind} {record.target}: {record.detail}")

    # -- supervision and sampling ---------------------------------------------------------

    def supervise(self) -> None:
        """Restart what died on its own, after RESTART_AFTER_S, and note it."""
        dead_since: dict[str, float] = {}
        while not self.stop.wait(1.0):
            with self.lock:
                for name, child in [*self.agents.items(), *self.server.items()]:
                    rc = child.died()
                    if rc is None:
                        dead_since.pop(name, None)
                        continue
                    if name not in dead_since:
                        dead_since[name] = time.time()
                        self.unexpected.append(
                            FaultRecord(self.since(), "exited on its own", name, f"rc {rc}")
                        )
                        self.say(f"{name} exited on its own (rc {rc}); see {child.log}")
                    elif time.time() - dead_since[name] >= RESTART_AFTER_S:
                        dead_since.pop(name)
                        child.start()
                        self.say(f"{name} restarted")

    def pids(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {
            "collector": [],
            "alerts": [],
            "mosquitto": [],
            "influxd": [],
            "agents": [],
        }
        with self.lock:
            for name in ("collector", "alerts"):
                pid = self.server[name].pid
                if pid:
                    out[name].append(pid)
            for svc in (self.broker, self.influx):
                if svc.running and svc.proc is not None:
                    out[svc.name].append(svc.proc.pid)
            out["agents"] = [p for c in self.agents.values() if (p := c.pid)]
        return out

    def sample(self) -> None:
        """RSS every SAMPLE_EVERY_S; the services' counters every 2 s (a killed process
        takes what it counted since its last reading with it)."""
        http = urllib3.PoolManager(timeout=urllib3.Timeout(2.0), retries=False)
        next_rss = time.monotonic() + SAMPLE_EVERY_S
        while not self.stop.wait(2.0):
            for name in ("collector", "alerts"):
                got = self.read_metrics(http, name)
                if got is not None:
                    self.metrics.setdefault(name, {})[got[0]] = got[1]
            if time.monotonic() < next_rss:
                continue
            next_rss += SAMPLE_EVERY_S
            for name, pids in self.pids().items():
                rss = []
                for pid in pids:
                    with contextlib.suppress(psutil.Error):
                        rss.append((psutil.Process(pid).memory_info().rss / 2**20, pid))
                if rss:
                    mb, pid = max(rss)
                    self.rss.setdefault(name, []).append((self.since(), mb, pid))

    def read_metrics(
        self, http: urllib3.PoolManager, name: str
    ) -> tuple[int, dict[str, float]] | None:
        pid = self.server[name].pid
        if pid is None:
            return None
        try:
            r = http.request("GET", f"http://127.0.0.1:{self.http_port[name]}/metrics")
        except urllib3.exceptions.HTTPError:
            return None
        if r.status != 200:
            return None
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(r.data.decode()):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                values[f"{s.name}{{{labels}}}" if labels else s.name] = float(s.value)
        return pid, values


# -- truth and what InfluxDB holds -------------------------------------------------------


def truth(site: Site, events: list[Detected]) -> tuple[Counts, Counts, Counts]:
    """Crossings per (door, dir), zone_flow per (zone, dir) by the door algebra, faults
    per (source, fault)."""
    crossings: Counter[tuple[str, str]] = Counter()
    flows: Counter[tuple[str, str]] = Counter()
    faults: Counter[tuple[str, str]] = Counter()
    for d in events:
        e = d.event
        if isinstance(e, Crossing):
            crossings[(e.door, e.dir)] += 1
            entered, left = site.door_effects(e.door)
            if e.dir == "out":
                entered, left = left, entered
            for z in entered:
                flows[(z, "in")] += 1
            for z in left:
                flows[(z, "out")] += 1
        elif isinstance(e, Fault):
            faults[(e.source, e.fault)] += 1
    return dict(crossings), dict(flows), dict(faults)


def stored(q: InfluxQuery) -> tuple[Counts, Counts, Counts]:
    def counts(measurement: str, field_: str, a: str, b: str) -> Counts:
        rows = q.rows(f'SELECT count("{field_}") FROM "{measurement}" GROUP BY "{a}", "{b}"')
        return {(r[a], r[b]): int(r["count"]) for r in rows}

    return (
        counts(CROSSING, "count", "door", "dir"),
        counts(ZONE_FLOW, "count", "zone", "dir"),
        counts(FAULT, "value", "source", "fault"),
    )


def differences(want: Counts, got: Counts) -> list[tuple[tuple[str, str], int, int]]:
    return [
        (k, want.get(k, 0), got.get(k, 0))
        for k in sorted(set(want) | set(got))
        if want.get(k, 0) != got.get(k, 0)
    ]


# -- reporting ---------------------------------------------------------------------------


def rss_line(name: str, samples: list[tuple[float, float, int]], starts: int) -> str:
    """First 10% against last 10% of the run; after restarts also of the last process
    alone (a restart starts small, which would hide growth)."""
    values = [v for _, v, _ in samples]
    k = max(1, len(values) // 10)
    first, last = statistics.median(values[:k]), statistics.median(values[-k:])
    line = (
        f"  {name:<10} {len(values):>4} samples  first 10% {first:7.1f} MB  last 10% "
        f"{last:7.1f} MB  ratio {last / first:5.2f}  peak {max(values):7.1f} MB  "
        f"({starts} start{'s' if starts != 1 else ''})"
    )
    final = samples[-1][2]
    own = [(t, v) for t, v, pid in samples if pid == final]
    if name != "agents" and starts > 1 and len(own) >= 10:
        k = len(own) // 10
        a, b = statistics.median(v for _, v in own[:k]), statistics.median(v for _, v in own[-k:])
        line += (
            f"; last process (from {own[0][0]:.0f} s, {len(own)} samples): "
            f"{a:.1f} -> {b:.1f} MB, ratio {b / a:.2f}"
        )
    return line


LOG_LINE = re.compile(r"\b(WARNING|ERROR|CRITICAL|Traceback)\b")


def log_excerpts(work: Path, limit: int = 4) -> list[str]:
    """Warnings and errors per log, distinct messages (times and numbers folded)."""
    out = []
    for path in sorted(work.glob("logs/*.log")):
        seen: Counter[str] = Counter()
        first: dict[str, str] = {}
        for line in path.read_text(errors="replace").splitlines():
            if not LOG_LINE.search(line):
                continue
            key = re.sub(r"[0-9]+", "N", line.split(": ", 1)[-1])[:120]
            seen[key] += 1
            first.setdefault(key, line[:220])
        if seen:
            out.append(f"  {path.name}: {sum(seen.values())} warning/error lines")
            out += [f"    {n:>5}x {first[key]}" for key, n in seen.most_common(limit)]
    return out


def counters(run: Run, name: str, prefix: str) -> dict[str, float]:
    """A counter summed over every process the service ran as (each starts at 0)."""
    out: dict[str, float] = {}
    for values in run.metrics.get(name, {}).values():
        for key, v in values.items():
            if key.startswith(prefix) and "_created" not in key:
                out[key] = out.get(key, 0.0) + v
    return out


# -- main --------------------------------------------------------------------------------


def recent_weekday(site: Site) -> dt.date:
    """The latest past Monday-Thursday (the busiest kind of day)."""
    day = dt.datetime.now(site.tz).date() - dt.timedelta(days=1)
    while day.weekday() > 3:
        day -= dt.timedelta(days=1)
    return day


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    return {**env, **extra}


def wait_idle(run: Run, q: InfluxQuery, want: tuple[Counts, Counts, Counts], cap_s: float) -> str:
    """Until the collector is idle (nothing unacknowledged or queued) and InfluxDB's
    counts have not changed for 15 s while equal to the truth (60 s while not), or
    `cap_s`: a late re-delivery would still show."""
    http = urllib3.PoolManager(timeout=urllib3.Timeout(2.0), retries=False)
    deadline = time.time() + cap_s
    last: tuple[Counts, Counts, Counts] | None = None
    steady_since = time.time()
    while time.time() < deadline:
        try:
            got = stored(q)
        except Exception:  # InfluxDB restarting: try again
            time.sleep(1)
            continue
        m = run.read_metrics(http, "collector")
        idle = (
            m is not None
            and m[1].get("footfall_unacked_messages", 1) == 0
            and m[1].get("footfall_queued_points", 1) == 0
        )
        if got != last or not idle:
            last, steady_since = got, time.time()
        elif time.time() - steady_since >= (15 if got == want else 60):
            return (
                "collector idle, counts unchanged for "
                f"{'15 s and equal to the truth' if got == want else '60 s'}"
            )
        time.sleep(1)
    return f"gave up after {cap_s:.0f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="real time for the day")
    ap.add_argument("--seed", default="1", help="traffic and fault times")
    ap.add_argument(
        "--day", type=dt.date.fromisoformat, help="simulated day (default: the latest past Mon-Thu)"
    )
    ap.add_argument("--faults", type=int, help="default: one every 2.5 minutes, at least 7")
    ap.add_argument("--lock-s", type=float, default=5.0, help="how long the outbox is locked")
    ap.add_argument("--clock-offset-s", type=float, default=3600.0, help="the clock jump")
    ap.add_argument("--drain-s", type=float, default=900.0, help="longest wait at the end")
    ap.add_argument("--keep", action="store_true", help="keep the work folder on success too")
    args = ap.parse_args()
    if args.minutes <= 0:
        ap.error(f"--minutes must be positive, not {args.minutes}")

    site = load_site(SITE)
    day = args.day or recent_weekday(site)
    t_sim = time.perf_counter()
    sim = simulate_day(VisitorModel(site), day, args.seed)
    events = sim.events
    if not events:
        ap.error(f"nobody comes on {day} (closed?): pick another --day")
    sim_s = time.perf_counter() - t_sim
    want = truth(site, events)
    agent_of = agent_ids([d.id for d in site.doors])
    n_faults = args.faults if args.faults is not None else max(7, round(args.minutes / 2.5))
    sim0 = events[0].wall_ms - 1000
    speed = (events[-1].wall_ms - sim0) / (args.minutes * 60_000)

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    (work / "logs").mkdir()
    (work / "events").mkdir()
    broker = Mosquitto(work / "mosquitto")
    influx = Influx(work / "influx")
    run = Run(
        work,
        site,
        args.minutes,
        args.seed,
        args.lock_s,
        round(args.clock_offset_s * 1000),
        random.Random(f"soak:{args.seed}"),
        broker,
        influx,
    )
    print(
        f"soak: {site.site} on {day} ({day:%a}), seed {args.seed}: {len(sim.plan.visits):,} "
        f"visits, {len(events):,} detected events ({sum(want[0].values()):,} crossings, "
        f"{sum(want[2].values())} faults) from {format_ts(events[0].wall_ms)} to "
        f"{format_ts(events[-1].wall_ms)}, simulated in {sim_s:.1f} s; paced at {speed:.0f}x "
        f"into {args.minutes:g} min; {len(set(agent_of.values()))} agent processes, "
        f"{n_faults} faults; work folder {work}",
        flush=True,
    )

    from tests.alerts.sinks import SmtpSink, WebhookSink

    smtp = SmtpSink()
    hook = WebhookSink()
    threads: list[threading.Thread] = []
    try:
        smtp.start()
        broker.start()
        influx.start(60)
        common = {
            "FOOTFALL_MQTT__HOST": "127.0.0.1",
            "FOOTFALL_MQTT__PORT": str(broker.port),
            "FOOTFALL_INFLUX__URL": influx.url,
        }
        run.http_port = {"collector": free_port(), "alerts": free_port()}
        run.server["collector"] = Child(
            "collector",
            [sys.executable, "-m", "footfall_collector.cli", "run", "--site", str(SITE)],
            child_env({**common, "FOOTFALL_HTTP__PORT": str(run.http_port["collector"])}),
            work / "logs" / "collector.log",
        )
        (work / "alerts-state").mkdir()
        run.server["alerts"] = Child(
            "alerts",
            [sys.executable, "-m", "footfall_alerts.cli", "run", "--site", str(SITE)],
            child_env(
                {
                    **common,
                    "FOOTFALL_HTTP__PORT": str(run.http_port["alerts"]),
                    "FOOTFALL_STATE_DIR": str(work / "alerts-state"),
                    "FOOTFALL_SMTP__HOST": "127.0.0.1",
                    "FOOTFALL_SMTP__PORT": str(smtp.port),
                    "FOOTFALL_SMTP__SECURITY": "none",
                    "FOOTFALL_ALERTS_TEAMS_URL": hook.url("/teams"),
                }
            ),
            work / "logs" / "alerts.log",
        )
        for child in run.server.values():
            child.start()
        time.sleep(3)
        wall0 = real_ms() + 3000
        for agent in sorted(set(agent_of.values())):
            doors = [d for d, a in agent_of.items() if a == agent]
            mine = [d for d in events if agent_of[d.event.door] == agent]
            events_file = work / "events" / f"{agent}.pickle"
            with open(events_file, "wb") as out:
                pickle.dump(mine, out)
            spec = {
                "site": site.site,
                "agent": agent,
                "doors": doors,
                "port": broker.port,
                "state_root": str(work / "state"),
                "events": str(events_file),
                "progress": str(work / "events" / f"{agent}.progress.json"),
                "sim0_ms": sim0,
                "wall0_ms": wall0,
                "speed": speed,
            }
            spec_file = work / "events" / f"{agent}.json"
            spec_file.write_text(json.dumps(spec))
            run.progress[agent] = Path(spec["progress"])
            run.agents[agent] = Child(
                agent,
                [sys.executable, "-m", "benchmarks.soak", "agent", str(spec_file)],
                child_env({}),
                work / "logs" / f"{agent}.log",
            )
            run.agents[agent].start()
        run.t0 = wall0 / 1000
        plan = run.schedule(n_faults)
        threads = [
            threading.Thread(target=run.inject, args=(plan,), daemon=True),
            threading.Thread(target=run.supervise, daemon=True),
            threading.Thread(target=run.sample, daemon=True),
        ]
        for t in threads:
            t.start()

        # Until every event is stored and acknowledged by the broker.
        deadline = wall0 / 1000 + args.minutes * 60 + args.drain_s
        next_report = time.time() + 60
        drained_at = None
        while time.time() < deadline:
            progress = {a: run.agent_progress(a) or {} for a in run.agents}
            index = sum(p.get("index", 0) for p in progress.values())
            depth = sum(p.get("depth", 0) for p in progress.values())
            done = all(
                p.get("index") == p.get("total") and p.get("depth") == 0 and not p.get("inflight")
                for p in progress.values()
            )
            faults_done = not threads[0].is_alive()
            if done and faults_done:
                drained_at = run.since()
                break
            if time.time() >= next_report:
                next_report += 60
                run.say(f"{index:,}/{len(events):,} events stored, {depth:,} unacknowledged")
            time.sleep(1)
        if drained_at is None:
            run.say("NOT drained: some agents still hold events")
        else:
            run.say("every outbox drained")
        q = InfluxQuery(influx.url)
        why = wait_idle(run, q, want, args.drain_s)
        settled_at = run.since()
        got = stored(q)
        run.say(f"settled: {why}")
        run.stop.set()
        for t in threads:
            t.join(30)
        progress = {a: run.agent_progress(a) or {} for a in run.agents}
        collector_metrics = counters(run, "collector", "footfall_")
        alerts_metrics = counters(run, "alerts", "footfall_alerts_")
    finally:
        run.stop.set()
        for child in [*run.agents.values(), *run.server.values()]:
            child.terminate()
        broker.stop()
        influx.stop()
        smtp.stop()
        hook.close()

    # -- the figures ------------------------------------------------------------------
    print()
    print(f"faults injected ({len(run.faults)}), seconds since the traffic started:")
    for f in run.faults:
        print(f"  {f.at_s:7.1f}  {f.kind:<38} {f.target:<24} {f.detail}")
    if run.unexpected:
        print(f"processes that exited on their own ({len(run.unexpected)}):")
        for f in run.unexpected:
            print(f"  {f.at_s:7.1f}  {f.target:<24} {f.detail}")
    else:
        print("no process exited on its own")
    changes = {a: p.get("changes") for a, p in progress.items() if p.get("changes")}
    aside = sorted(str(p.relative_to(work)) for p in (work / "state").glob("*/*.corrupt-*"))
    print(
        "outbox epochs: "
        + ("every agent kept its epoch" if not changes else f"CHANGED: {json.dumps(changes)}")
        + (f"; moved aside: {', '.join(aside)}" if aside else "")
    )
    stored_n = sum(p.get("index", 0) for p in progress.values())
    pending = sum(p.get("depth", 0) for p in progress.values())
    print(
        f"edge: {stored_n:,} of {len(events):,} events stored, {pending:,} unacknowledged; "
        + (f"drained {drained_at:.0f} s" if drained_at is not None else "NOT drained")
        + f" after the traffic started (the day's traffic took {args.minutes * 60:.0f} s), "
        f"InfluxDB settled at {settled_at:.0f} s"
    )
    labels = [
        ("crossings per door and direction", 0),
        ("zone_flow per zone and direction", 1),
        ("faults per source", 2),
    ]
    exact = True
    for what, i in labels:
        diff = differences(want[i], got[i])
        total_want, total_got = sum(want[i].values()), sum(got[i].values())
        if diff:
            exact = False
            print(f"{what}: NOT EXACT: truth {total_want:,}, stored {total_got:,}")
            for (a, b), w, g in diff:
                print(f"  {a} {b}: truth {w:,}, stored {g:,} ({g - w:+,})")
        else:
            print(f"{what}: exact ({total_want:,} in {len(want[i])} series)")
    interesting = {
        k: v
        for k, v in collector_metrics.items()
        if v
        and any(
            s in k
            for s in ("rejected", "duplicate", "write_errors", "dropped", "late_crossings_total")
        )
    }
    print(
        "collector counters summed over its processes: "
        + (", ".join(f"{k} {v:,.0f}" for k, v in sorted(interesting.items())) or "none")
    )
    sent = {k: v for k, v in alerts_metrics.items() if v and "notifications" in k}
    print(
        f"alerts: {len(smtp.messages)} mails and {len(hook.requests)} webhook posts received; "
        + (", ".join(f"{k} {v:,.0f}" for k, v in sorted(sent.items())) or "no notifications")
    )
    starts = {name: c.starts for name, c in run.server.items()}
    starts["mosquitto"] = 1 + sum(f.target == "mosquitto" for f in run.faults)
    starts["influxd"] = 1 + sum(f.target == "influxd" for f in run.faults)
    starts["agents"] = sum(c.starts for c in run.agents.values())
    print(f"memory (RSS every {SAMPLE_EVERY_S:g} s; ratio = last 10% median / first 10% median):")
    for name in ("collector", "alerts", "mosquitto", "influxd", "agents"):
        if run.rss.get(name):
            print(rss_line(name, run.rss[name], starts[name]))
    excerpts = log_excerpts(work)
    if excerpts:
        print("log excerpts (warnings and errors, most frequent first):")
        print("\n".join(excerpts))
    summary = {
        "site": site.site,
        "day": str(day),
        "minutes": args.minutes,
        "seed": args.seed,
        "events": len(events),
        "speed": round(speed, 1),
        "faults": [f.__dict__ for f in run.faults],
        "unexpected": [f.__dict__ for f in run.unexpected],
        "exact": exact,
        "drained_s": drained_at,
        "settled_s": settled_at,
        "rss": run.rss,
        "collector": collector_metrics,
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"result: {'EXACT' if exact else 'NOT EXACT'}")
    if exact and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs and data kept in {work}")
    return 0 if exact else 1


def dispatch() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "agent":
        return agent_main(Path(sys.argv[2]))
    if len(sys.argv) >= 2 and sys.argv[1] == "lock":
        return lock_main(Path(sys.argv[2]), float(sys.argv[3]))
    return main()


if __name__ == "__main__":
    sys.exit(dispatch())
