"""Exactly-once state of the collector: the old set of every crossing key since the last
reset against the per-agent recent keys (`footfall_collector/dedup.py`), in one run.

  structure   memory and time of each structure fed the same 5,000,000 crossing keys
              (40 agents, in order per agent but 1% arriving up to 50 places late), in
              a process of its own: RSS growth measured with psutil;
  rebuild     the restart rebuild against a real InfluxDB 1.6 holding `--rebuild`
              crossings since the last reset (20 hours of a day): the old one-query
              rebuild into a set, reproduced here, against the collector's own
              `_rebuild` (an hour per query, streamed in pages); each in a process of its
              own, wall time and peak RSS (`ru_maxrss`) growth over the process's start.
              Both must end with the same occupancy.

    .venv/bin/python -m benchmarks.dedup [--keys 5000000] [--rebuild 5000000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from footfall_collector.config import InfluxSettings
from footfall_collector.dedup import RecentKeys, Verdict
from footfall_collector.influx import InfluxV1
from footfall_collector.occupancy import OccupancyEngine
from footfall_collector.points import event_time_ns
from footfall_collector.schema import crossing_point
from footfall_collector.service import Collector
from footfall_contract.hours import last_reset_before
from footfall_sim.localservices import Influx
from tests.support.collector import FakeClock, collector_settings, small_site

AGENTS = 40
DOORS = ["centre-main", "library-main", "library-mall", "kela-door", "youth-door"]
SPAN_MS = 20 * 3_600_000


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss / 2**20)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def keys(n: int, seed: int = 1) -> Iterator[tuple[str, int]]:
    """n crossing keys over AGENTS agents and a day's times, made one at a time (so a
    structure's memory includes its keys, as in the collector); 1% arrive up to 50
    places late."""
    rng = random.Random(seed)
    base = 1_790_000_000_000
    late: list[tuple[int, tuple[str, int]]] = []
    for i in range(n):
        key = (f"pi-{i % AGENTS}", event_time_ns(base + i * SPAN_MS // n, i // AGENTS))
        if i % 100 == 0:
            late.append((i + rng.randrange(1, 50), key))
        else:
            yield key
        while late and late[0][0] <= i:
            yield late.pop(0)[1]
    for _, key in late:
        yield key


# -- children: one measurement each, JSON on stdout --------------------------------------


def child_structure(kind: str, n: int) -> dict[str, Any]:
    before = rss_mb()
    checks = key_bytes = 0
    t0 = time.perf_counter()
    if kind == "set":
        seen: set[tuple[str, int]] = set()
        for k in keys(n):
            if k not in seen:
                seen.add(k)
        held = len(seen)
        key_bytes = 0
    else:
        recent = RecentKeys(4096)
        for i, (agent, t) in enumerate(keys(n)):
            checks += recent.add(agent, t) is Verdict.CHECK
            if i % 10 == 9:  # a message of 10 events
                recent.trim(agent)
        for a in range(AGENTS):
            recent.trim(f"pi-{a}")
        held = len(recent)
        key_bytes = recent.nbytes()
    seconds = time.perf_counter() - t0
    return {
        "rss_mb": rss_mb() - before,
        "seconds": seconds,
        "held": held,
        "checks": checks,
        "key_mb": key_bytes / 2**20,
    }


def child_rebuild(kind: str, url: str, now_ms: int) -> dict[str, Any]:
    site = small_site()
    settings = collector_settings(1, url)
    # The old one-query rebuild of millions of rows can take longer than the default
    # 10 s read timeout: give both two minutes, to measure it.
    settings.influx.timeout_s = 120.0
    before = rss_mb()
    t0 = time.perf_counter()
    if kind == "set":
        occupancy, held = old_rebuild(InfluxV1(settings.influx), last_reset_before(site, now_ms))
    else:
        collector = Collector(settings, site, clock=FakeClock(now_ms))
        collector._rebuild(collector._states[site.site])
        occupancy = {z: v["count"] for z, v in collector.occupancy().items()}
        held = collector.dedup_keys
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "peak_mb": peak_mb() - before,
        "peak_abs_mb": peak_mb(),
        "occupancy": occupancy,
        "held": held,
    }


def old_rebuild(influx: InfluxV1, last_reset_ms: int) -> tuple[dict[str, int], int]:
    """The rebuild as it was: one query of the whole day, every key into a set."""
    site = small_site()
    engine = OccupancyEngine(site)
    seen: set[tuple[str, int]] = set()
    q = (
        'SELECT "count", "door", "dir", "agent" FROM "crossing" '
        f"WHERE \"site\" = '{site.site}' AND time >= {last_reset_ms}ms"
    )
    for s in influx.query(q):
        cols = s["columns"]
        i_time, i_door, i_dir, i_agent = (cols.index(c) for c in ("time", "door", "dir", "agent"))
        for row in s["values"]:
            key = (row[i_agent], int(row[i_time]))
            if key in seen or not engine.knows(row[i_door]):
                continue
            seen.add(key)
            engine.apply(row[i_door], row[i_dir])
    return {s.zone: s.count for s in engine.states()}, len(seen)


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.dedup", "--child", *args],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- the parent --------------------------------------------------------------------------


def fill(url: str, n: int, reset_ms: int) -> float:
    """n crossings over 20 hours after `reset_ms`, as the collector writes them; returns
    points written a second."""
    db = InfluxV1(InfluxSettings(url=url))
    db.ensure_database()
    site = small_site().site
    t0 = time.perf_counter()
    lines: list[str] = []
    for i in range(n):
        agent = i % AGENTS
        door = DOORS[agent % 5]
        direction = "in" if (i // AGENTS) % 5 < 3 else "out"
        t = event_time_ns(reset_ms + 1 + i * SPAN_MS // n, i // AGENTS)
        lines.append(crossing_point(site, door, direction, f"pi-{agent}", t).line())
        if len(lines) == 50_000:
            db.write(lines)
            lines = []
    db.write(lines)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=5_000_000)
    ap.add_argument("--rebuild", type=int, default=5_000_000, help="crossings in InfluxDB")
    ap.add_argument("--child", nargs="+")
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind.startswith("structure-"):
            result = child_structure(kind.removeprefix("structure-"), int(rest[0]))
        else:
            result = child_rebuild(kind.removeprefix("rebuild-"), rest[0], int(rest[1]))
        print(json.dumps(result))
        return

    print(f"exactly-once state, {args.keys:,} crossing keys from {AGENTS} agents")
    for kind, label in (("set", "old: a set of every key"), ("recent", "new: recent keys")):
        r = run_child(f"structure-{kind}", str(args.keys))
        print(
            f"  {label:26} RSS +{r['rss_mb']:7.1f} MB, {r['held']:>9,} keys held, "
            f"{args.keys / r['seconds'] / 1e6:.2f} M keys/s, {r['checks']} asked of InfluxDB"
            + (f", arrays {r['key_mb']:.1f} MB" if r["key_mb"] else "")
        )

    work = Path(tempfile.mkdtemp(prefix="dedup-bench-"))
    influx = Influx(work / "influx")
    influx.start()
    try:
        site = small_site()
        reset = last_reset_before(site, int(time.time() * 1000) - 2 * 86_400_000)
        now = reset + SPAN_MS + 60_000
        rate = fill(influx.url, args.rebuild, reset)
        print(
            f"restart rebuild, {args.rebuild:,} crossings since the last reset in InfluxDB 1.6 "
            f"(written at {rate:,.0f} points/s)"
        )
        results = {}
        for kind, label in (("set", "old: one query, a set"), ("recent", "new: hourly, paged")):
            r = results[kind] = run_child(f"rebuild-{kind}", influx.url, str(now))
            influx_rss = psutil.Process(influx.proc.pid).memory_info().rss / 2**20  # type: ignore[union-attr]
            print(
                f"  {label:26} {r['seconds']:6.1f} s, peak RSS +{r['peak_mb']:7.1f} MB "
                f"({r['peak_abs_mb']:.0f} MB), {r['held']:>9,} keys held; "
                f"influxd RSS after {influx_rss:.0f} MB"
            )
        same = results["set"]["occupancy"] == results["recent"]["occupancy"]
        print(f"  same occupancy from both: {same} {results['recent']['occupancy']}")
        if not same:
            raise SystemExit(1)
    finally:
        influx.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
