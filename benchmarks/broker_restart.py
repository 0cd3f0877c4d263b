"""Mosquitto restarted under many real edge agents and two collector shards
(docs/scaling.md §6; the sites and collector processes of `benchmarks/city.py`, the
agents of `benchmarks/broker_fleet.py`).

Per size (`--sizes`, default 40 and 400 agents over the 40 generated sites; 40 is the
baseline, in the same run; 2,800 saturate this 2-core machine's CPU with the agents
alone) a fresh Mosquitto (persistence on, as `localservices` configures it) and
InfluxDB, two `footfall-collector run --sites-dir --shard K/2` processes, and the
agents: each a `footfall_sim.runner.VirtualAgent`, the simulator's virtual Pi, i.e. the
edge's own `OutboxAgent` (SQLite outbox, WAL and fsync on commit; `Publisher` with its
paho client, retained status and Last Will, health every 30 s; the edge's default MQTT
settings: keepalive 30 s, reconnect back-off 1-60 s), two threads each, in worker
processes of up to 100 (`--per-process`). A producer thread gives every agent a crossing
every 10-30 s (uniform; 20 a second over 400 agents), in and out in turn on its door,
straight into its outbox as the sensing thread would; without the broker they wait there.

Each round (`--rounds`, default 3): `--warm-s` of traffic, Mosquitto RSS; SIGTERM (or
SIGKILL with `--kill`), `--down-s` away, started again on the same port and data; from
that start: (a) every agent's publisher connected again, (b) both shards' `/healthz`
ready (their persistent sessions resumed, from their logs), (c) every crossing made
before the start acknowledged (gone from its outbox) and (c2) stored in InfluxDB;
Mosquitto RSS after. Then traffic paused until the outboxes are empty: stored crossings
per site, agent and direction equal the ones made (no loss, no duplicate).

    .venv/bin/python -m benchmarks.broker_restart [--quick] [--sizes 40,400]
        [--rounds 3] [--down-s 10] [--kill]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.broker_fleet import Fleets, agents
from benchmarks.city import SITES, Proc, Result, count, med, restart_split, site_yaml
from benchmarks.city import services as city_services
from benchmarks.city_batch import stored_diff
from footfall_contract.shards import assign
from footfall_sim.localservices import Mosquitto
from tests.support.collector import InfluxQuery


def rss(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss / 2**20)


def restart_round(
    broker: Mosquitto, shards: dict[int, Proc], fleet: Fleets, q: InfluxQuery, a: argparse.Namespace
) -> Result:
    assert broker.proc is not None
    res: Result = {"rss_before": rss(broker.proc.pid)}
    offsets = {k: c.log.stat().st_size for k, c in shards.items()}
    t_stop = time.time()
    if a.kill:
        broker.kill()
    else:
        broker.stop(60)
    res["stop_s"] = time.time() - t_stop  # SIGTERM: until it has saved and exited
    time.sleep(a.down_s)
    marks = fleet.marks()
    res["queued"] = fleet.depth()
    t_start = time.time()
    broker.start(60)
    t_up, start_ms = time.time(), int(t_start * 1000)
    res["start_s"], res["down_s"] = t_up - t_start, t_up - t_stop
    made_before = fleet.made_before(start_ms)
    before = f" WHERE time < {start_ms * 10**6}"
    while time.time() < t_start + a.timeout_s:
        now = time.time() - t_start
        up = fleet.connected()
        if "first" not in res and up:
            res["first"] = now
        if "agents" not in res and up == fleet.n:
            res["agents"] = now
        if "shards" not in res and all(c.ready() for c in shards.values()):
            res["shards"] = now
        if "acked" not in res:
            marks = fleet.drained(marks)
            if not marks:
                res["acked"] = now
        if "stored" not in res and count(q, before) >= made_before:
            res["stored"] = now
        if {"agents", "shards", "acked", "stored"} <= res.keys():
            break
        time.sleep(0.05)
    res["made_before"] = made_before
    for k, c in shards.items():
        split = restart_split(c.log, offsets[k], t_start)
        res[f"session_{k}"] = split.get("connected", float("nan"))
        res["new_session"] = res.get("new_session") or split.get("new_session", True)
    res["rss_after"] = rss(broker.proc.pid)
    time.sleep(5)
    res["rss_rest"] = rss(broker.proc.pid)
    return res | exact(fleet, q)


def exact(fleet: Fleets, q: InfluxQuery, timeout_s: float = 120) -> Result:
    """Traffic paused until every outbox is empty and InfluxDB holds every crossing made;
    then stored per site, agent and direction against made."""
    fleet.pause(True)
    t0, diff = time.time(), ["not checked"]
    while time.time() < t0 + timeout_s:
        if not fleet.depth():
            diff = stored_diff(q, fleet.truth())
            if not diff:
                break
        time.sleep(0.5)
    fleet.pause(False)
    return {"exact": not diff, "diff": diff[:5], "made": fleet.figures()["made"]}


def one_size(work: Path, n: int, a: argparse.Namespace) -> list[Result]:
    folder = work / f"n{n}"
    out: list[Result] = []
    with city_services(folder) as (broker, influx):
        args = ["--sites-dir", str(work / "sites"), "--shard"]
        shards = {
            k: Proc([*args, f"{k}/2"], broker, influx, "restart", folder / f"shard-{k}.log")
            for k in (1, 2)
        }
        fleet = None
        try:
            for c in shards.values():
                c.wait_ready()
            (folder / "state").mkdir()
            fleet = Fleets(broker.port, folder / "state", agents(n), a.per_process)
            t_conn = fleet.start()
            me = fleet.figures()
            assert broker.proc is not None
            print(
                f"  {n:,} agents in {me['processes']} process(es) connected in {t_conn:.1f} s; "
                f"{me['threads']:,} threads, {me['fds']:,} fds; Mosquitto "
                f"{psutil.Process(broker.proc.pid).num_fds():,} fds, "
                f"{rss(broker.proc.pid):.1f} MB",
                flush=True,
            )
            for r in range(a.rounds):
                time.sleep(a.warm_s)
                res = restart_round(broker, shards, fleet, InfluxQuery(influx.url, "restart"), a)
                res |= {k: me[k] for k in ("threads", "fds", "processes")} | {"connect_s": t_conn}
                out.append(res)
                times = ", ".join(f"{k} {v:.2f}" for k, v in res.items() if type(v) is float)
                verdict = "exact" if res["exact"] else f"NOT EXACT {res['diff']}"
                print(
                    f"  round {r + 1}, {n:,} agents: {times}; {res['queued']:,} queued; "
                    f"session resumed: {not res['new_session']}; {res['made']:,} made: {verdict}",
                    flush=True,
                )
        finally:
            try:
                if fleet is not None:
                    fleet.stop()
            finally:
                for c in shards.values():
                    c.stop()
    return out


def report(runs: dict[int, list[Result]], a: argparse.Namespace) -> bool:
    base = min(runs)
    sig = "SIGKILL" if a.kill else "SIGTERM"
    print(
        f"\nsummary: medians of {a.rounds} restarts ({sig}, {a.down_s:g} s away); "
        f"ratio = size / {base} agents, same run"
    )
    head = "".join(f"{n:>10,}" for n in runs)
    print(f"  {'agents':52}{head}   ratios")
    for key, label in (
        ("stop_s", "SIGTERM -> exited (persistence saved), s"),
        ("start_s", "start -> listening, s"),
        ("down_s", "down: signal -> listening again, s"),
        ("queued", "events queued in the outboxes at the start"),
        ("first", "    start -> the first agent connected, s"),
        ("agents", "(a) start -> every agent connected, s"),
        ("session_1", "    shard 1 session resumed (its log), s"),
        ("session_2", "    shard 2 session resumed (its log), s"),
        ("shards", "(b) start -> both shards /healthz ready, s"),
        ("acked", "(c) start -> every queued crossing acknowledged, s"),
        ("stored", "(c2) start -> all made before it in InfluxDB, s"),
        ("rss_before", "Mosquitto RSS before, MB"),
        ("rss_after", "Mosquitto RSS after (c), MB"),
        ("rss_rest", "Mosquitto RSS 5 s later, MB"),
    ):
        vals = {n: med(rs, key) for n, rs in runs.items()}
        cells = "".join(f"{v:10.2f}" for v in vals.values())
        ratios = " ".join(f"{v / vals[base]:.2f}" if vals[base] else "-" for v in vals.values())
        spread = " | ".join(
            "/".join(f"{r.get(key, float('nan')):.2f}" for r in rs) for rs in runs.values()
        )
        print(f"  {label:52}{cells}   {ratios}  ({spread})")
    ok = True
    for n, rs in runs.items():
        good = all(r["exact"] and not r["new_session"] for r in rs)
        ok &= good
        print(
            f"  {n:,} agents: {rs[0]['processes']} process(es), {rs[0]['threads']:,} threads, "
            f"{rs[0]['fds']:,} fds; connected in {rs[0]['connect_s']:.1f} s; sessions resumed "
            f"and stored = made per site, agent and direction after each restart: "
            f"{'EXACT' if good else 'NOT EXACT'} ({rs[-1]['made']:,} crossings)"
        )
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="40 and 400 agents, 1 round, short")
    ap.add_argument("--sizes", help="agents per size, comma-separated (default 40,400)")
    ap.add_argument("--rounds", type=int, help="restarts per size (default 3; --quick 1)")
    ap.add_argument("--warm-s", type=float, help="traffic before each restart (default 30)")
    ap.add_argument("--down-s", type=float, help="broker away after it exits (default 10)")
    ap.add_argument("--timeout-s", type=float, default=300.0, help="recovery at most")
    ap.add_argument("--per-process", type=int, default=100, help="agents a process at most")
    ap.add_argument("--kill", action="store_true", help="SIGKILL instead of SIGTERM")
    ap.add_argument("--keep", action="store_true", help="keep logs and data")
    a = ap.parse_args()
    sizes = [int(x) for x in (a.sizes or "40,400").split(",")]
    a.rounds = a.rounds or (1 if a.quick else 3)
    a.warm_s = a.warm_s if a.warm_s is not None else (10.0 if a.quick else 30.0)
    a.down_s = a.down_s if a.down_s is not None else (5.0 if a.quick else 10.0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # Mosquitto inherits it
    print(f"open files: {soft:,} raised to {hard:,} (the hard limit)", flush=True)
    work = Path(tempfile.mkdtemp(prefix="broker-restart-"))
    (work / "sites").mkdir()
    for site in SITES:
        (work / "sites" / f"{site}.yaml").write_text(site_yaml(site))
    plan = assign(SITES, 2)
    print(f"two shards over 40 sites ({len(plan[1])} and {len(plan[2])}); sizes {sizes}")
    runs = {n: one_size(work, n, a) for n in sizes}
    ok = report(runs, a)
    if a.keep or not ok:
        print(f"logs and data kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
