"""Crowd simulator speed: how fast `footfall-sim` gets through a full Iso Omena day in
accelerated mode (target: under 5 minutes), and how many days of history `--backfill`
writes a minute.

One run measures:
  compute     a full weekday (the busiest kind): visits planned, bodies rendered into
              beam traces, traces counted by the real detectors, no I/O;
  mqtt        the same day end to end with speed 0 (as fast as possible): compute, then
              every event through the real outbox (SQLite, fsync) and publisher of 13
              virtual agents to a real Mosquitto, until every event is acknowledged;
  pipeline    as mqtt, plus the real collector writing to a real InfluxDB, until
              InfluxDB holds every counted crossing;
  backfill    N past days straight into a real InfluxDB 1.x (days of history a minute).

    .venv/bin/python -m benchmarks.simulator [--days 7] [--seed 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from footfall_collector.config import InfluxSettings
from footfall_collector.influx import InfluxV1
from footfall_collector.service import Collector
from footfall_contract.site import Site, load_site
from footfall_runtime.config import MqttSettings
from footfall_sim.backfill import backfill
from footfall_sim.crowd import CROWD, detect_crowd, render_crowd
from footfall_sim.localservices import Influx, Mosquitto
from footfall_sim.runner import (
    Pacer,
    agent_doors,
    agent_ids,
    edge_config,
    run_accelerated,
)
from footfall_sim.scenario import day_window, rngs, simulate_day
from footfall_sim.visitors import VisitorModel
from tests.support.collector import InfluxQuery, collector_settings, wait_for

SITE = Path(__file__).parents[1] / "deploy" / "sites" / "iso-omena.yaml"
TARGET_S = 300.0


def recent_weekday(site: Site) -> dt.date:
    """The latest past Monday-Thursday (the busiest kind of day)."""
    day = dt.datetime.now(site.tz).date() - dt.timedelta(days=1)
    while day.weekday() > 3:
        day -= dt.timedelta(days=1)
    return day


def compute(model: VisitorModel, day: dt.date, seed: str) -> dict[str, Any]:
    start, end = day_window(model, day)
    plan_rng, door_rng = rngs(model, start, end, seed)
    t0 = time.perf_counter()
    plan = model.plan(start, end, plan_rng)
    t1 = time.perf_counter()
    crowd = render_crowd(plan, [d.id for d in model.site.doors], door_rng, CROWD)
    t2 = time.perf_counter()
    events = detect_crowd(crowd)
    t3 = time.perf_counter()
    total = t3 - t0
    return {
        "visits": len(plan.visits),
        "crossings": len(plan.crossings),
        "beam_transitions": crowd.transitions,
        "events": len(events),
        "plan_s": round(t1 - t0, 2),
        "render_s": round(t2 - t1, 2),
        "detect_s": round(t3 - t2, 2),
        "total_s": round(total, 2),
        "visits_per_s": round(len(plan.visits) / total),
        "detector_transitions_per_s": round(crowd.transitions / (t3 - t2)),
    }


def end_to_end(
    model: VisitorModel, day: dt.date, seed: str, work: Path, with_collector: bool
) -> dict[str, Any]:
    site = model.site
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    influx = Influx(work / "influx") if with_collector else None
    collector = None
    try:
        if influx is not None:
            influx.start()
            collector = Collector(collector_settings(broker.port, influx.url), site)
            collector.start()
            collector.ready.wait(10)
        started = time.perf_counter()
        sim = simulate_day(model, day, seed)
        computed = time.perf_counter() - started
        agent_of = agent_ids([d.id for d in site.doors])
        mqtt = MqttSettings(host="127.0.0.1", port=broker.port)
        configs = {
            a: edge_config(site.site, a, doors, mqtt, work / "state")
            for a, doors in agent_doors(agent_of).items()
        }
        now = int(time.time() * 1000)
        stats = run_accelerated(configs, sim.events, agent_of, Pacer(now, now, 0), lambda _: None)
        acked = time.perf_counter() - started
        out: dict[str, Any] = {
            "visits": len(sim.plan.visits),
            "events": stats.stored,
            "unsent": stats.unsent,
            "compute_s": round(computed, 2),
            "acked_s": round(acked, 2),
            "visits_per_s_acked": round(len(sim.plan.visits) / acked),
        }
        if influx is not None:
            detected = {
                (d, k): n for d, c in sim.detected_counts().items() for k, n in c.items() if n
            }
            q = InfluxQuery(influx.url)
            wait_for(lambda: q.crossing_counts() == detected, 300, "InfluxDB has every event")
            stored = time.perf_counter() - started
            out["in_influx_s"] = round(stored, 2)
            out["visits_per_s_stored"] = round(len(sim.plan.visits) / stored)
        return out
    finally:
        if collector is not None:
            collector.stop()
        if influx is not None:
            influx.kill()
        broker.kill()


def backfill_rate(model: VisitorModel, days: int, seed: str, work: Path) -> dict[str, Any]:
    server = Influx(work / "influx-backfill")
    server.start()
    try:
        influx = InfluxV1(InfluxSettings(url=server.url, database="footfall"))
        agent_of = agent_ids([d.id for d in model.site.doors])
        started = time.perf_counter()
        stats = backfill(model, influx, days, seed, agent_of, CROWD, lambda _: None)
        elapsed = time.perf_counter() - started
        influx.close()
        out = stats.as_json()
        out.pop("detected")
        out["elapsed_s"] = round(elapsed, 2)
        out["days_per_minute"] = round(days / elapsed * 60, 1)
        out["points_per_s"] = round(stats.points / elapsed)
        out["write_points_per_s"] = round(stats.points / stats.write_s) if stats.write_s else None
        return out
    finally:
        server.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=7, help="days to backfill (default 7)")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--skip-services", action="store_true", help="compute figures only")
    args = ap.parse_args()
    site = load_site(SITE)
    model = VisitorModel(site)
    day = recent_weekday(site)
    results: dict[str, Any] = {"site": site.site, "day": f"{day} ({day:%a})"}
    results["compute"] = compute(model, day, args.seed)
    print(json.dumps(results, indent=2), flush=True)
    if not args.skip_services:
        with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
            work = Path(tmp)
            results["mqtt"] = end_to_end(model, day, args.seed, work / "a", False)
            print(json.dumps(results["mqtt"], indent=2), flush=True)
            results["pipeline"] = end_to_end(model, day, args.seed, work / "b", True)
            print(json.dumps(results["pipeline"], indent=2), flush=True)
            results["backfill"] = backfill_rate(model, args.days, args.seed, work)
            print(json.dumps(results["backfill"], indent=2), flush=True)
    full_day = results.get("pipeline", {}).get("in_influx_s") or results["compute"]["total_s"]
    results["full_day_vs_target"] = {
        "seconds": full_day,
        "target_s": TARGET_S,
        "share_of_target": round(full_day / TARGET_S, 3),
        "speedup_over_real_time": round(86_400 / full_day),
    }
    print(json.dumps(results["full_day_vs_target"], indent=2))
    if "pipeline" in results:
        # Baselines from the same run: the same day with no I/O at all, and InfluxDB's
        # share of the backfill's time.
        compute_s = results["compute"]["total_s"]
        bf = results["backfill"]
        results["ratios"] = {
            "mqtt_over_compute": round(results["mqtt"]["acked_s"] / compute_s, 2),
            "pipeline_over_compute": round(results["pipeline"]["in_influx_s"] / compute_s, 2),
            "backfill_points_per_s_over_influx_write_rate": (
                round(bf["points_per_s"] / bf["write_points_per_s"], 2)
                if bf["write_points_per_s"]
                else None
            ),
        }
        print(json.dumps(results["ratios"], indent=2))


if __name__ == "__main__":
    main()
