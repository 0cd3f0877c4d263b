"""The history worker's cost against real InfluxDB: recomputing one reset window
(occupancy history, hourly and daily visit rollups) from its `zone_flow`, for windows of
growing traffic, against the baseline of only reading that window's raw `zone_flow`
points (the least any recompute must do).

    .venv/bin/python -m benchmarks.history [--crossings 2000 20000 100000] [--rounds 3]

Iso Omena sees about 3,600 visits on an average day (1.3 million a year), so about 7,000
crossings through its outer doors and as many inside; 100,000 crossings a window is a
very busy city-centre library with every door counted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from footfall_collector.config import InfluxSettings
from footfall_collector.history import HistoryWorker
from footfall_collector.influx import InfluxV1
from footfall_collector.schema import crossing_point, zone_flow_points
from footfall_contract.hours import window_of
from footfall_contract.site import load_site
from footfall_sim.localservices import Influx

SITE = load_site(Path(__file__).resolve().parents[1] / "deploy/sites/iso-omena.yaml")


def fill(db: InfluxV1, day: dt.date, crossings: int, seed: int = 1) -> tuple[Any, int]:
    """`crossings` crossings spread over the opening hours of `day`, written as the
    collector writes them (crossing + zone_flow)."""
    rng = random.Random(seed)
    window = window_of(SITE, int(dt.datetime.combine(day, dt.time(12), SITE.tz).timestamp() * 1000))
    opens = int(dt.datetime.combine(day, dt.time(8), SITE.tz).timestamp() * 1000)
    doors = [d.id for d in SITE.doors]
    lines: list[str] = []
    flows = 0
    for seq in range(crossings):
        door = rng.choice(doors)
        direction = "in" if seq % 2 == 0 else "out"
        t = (opens + rng.randrange(12 * 3_600_000)) * 1_000_000 + seq % 1_000_000
        entered, left = SITE.door_effects(door)
        if direction == "out":
            entered, left = left, entered
        points = [crossing_point(SITE.site, door, direction, "pi-1", t)]
        points += zone_flow_points(SITE.site, entered, left, "pi-1", t)
        flows += len(points) - 1
        lines += [p.line() for p in points]
        if len(lines) >= 5000:
            db.write(lines)
            lines = []
    db.write(lines)
    return window, flows


def run(crossing_counts: list[int], rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = Influx(Path(tmp) / "influx")
        server.start()
        try:
            db = InfluxV1(InfluxSettings(url=server.url, database="bench"))
            db.ensure_database()
            worker = HistoryWorker(db, SITE)
            now = time.time_ns() // 1_000_000
            for i, n in enumerate(crossing_counts):
                day = dt.date(2026, 6, 1) + dt.timedelta(days=i)
                window, flows = fill(db, day, n)
                read, full = [], []
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    assert len(worker.flows(window)) == flows
                    read.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    worker.recompute(window, window.start_ms, now)
                    full.append(time.perf_counter() - t0)
                late = []  # one late crossing in the afternoon: history from then on
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    worker.recompute(window, window.start_ms + 14 * 3_600_000, now)
                    late.append(time.perf_counter() - t0)
                results[str(n)] = {
                    "zone_flow_points": flows,
                    "read_only_s": round(statistics.median(read), 3),
                    "recompute_window_s": round(statistics.median(full), 3),
                    "recompute_from_14h_s": round(statistics.median(late), 3),
                    "ratio_to_read": round(statistics.median(full) / statistics.median(read), 2),
                }
                print(n, json.dumps(results[str(n)]), flush=True)
            db.close()
        finally:
            server.kill()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--crossings", type=int, nargs="+", default=[2000, 20000, 100000])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(json.dumps(run(args.crossings, args.rounds), indent=2))


if __name__ == "__main__":
    main()
