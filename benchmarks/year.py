"""A year of visits: the 365 days of a calendar year of Iso Omena with its usual crowd
backfilled into a real InfluxDB 1.x (`footfall-sim --backfill`'s code: crossings and
their `zone_flow`, live occupancy, then the collector's history worker over every day),
and the annual visits per zone read two ways:

  rollups   `SELECT sum("entries") FROM "rollups"."visits_daily" ... GROUP BY "zone"`
            (365 points a zone: what reports read);
  raw       `SELECT sum("count") FROM "zone_flow" WHERE "dir" = 'in' ... GROUP BY "zone"`
            (every entry of the year: the baseline, measured in the same run).

Both must give the same figures. Prints the backfill time (simulation and writes), the
history rebuild time (and per day), both query times (median of `--rounds`), their
ratio, and the visits per zone for the year.

    .venv/bin/python -m benchmarks.year [--year 2026] [--rounds 3] [--seed 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from footfall_collector.config import InfluxSettings
from footfall_collector.influx import InfluxV1
from footfall_collector.schema import VISITS_DAILY, ZONE_FLOW, rollup_from
from footfall_contract.site import Site, load_site
from footfall_sim.backfill import backfill
from footfall_sim.crowd import CROWD
from footfall_sim.localservices import Influx
from footfall_sim.runner import agent_ids
from footfall_sim.visitors import VisitorModel

SITE = Path(__file__).parents[1] / "deploy" / "sites" / "iso-omena.yaml"


def year_bounds_ms(site: Site, year: int) -> tuple[int, int]:
    """Local midnight of 1 January to that of the next year."""

    def midnight(day: dt.date) -> int:
        return int(dt.datetime.combine(day, dt.time(0), tzinfo=site.tz).timestamp() * 1000)

    return midnight(dt.date(year, 1, 1)), midnight(dt.date(year + 1, 1, 1))


def per_zone(series: list[dict[str, Any]]) -> dict[str, int]:
    return {s["tags"]["zone"]: int(s["values"][0][1]) for s in series}


def timed(db: InfluxV1, q: str, rounds: int) -> tuple[float, dict[str, int]]:
    """Median seconds of `rounds` runs, and the figures."""
    times, result = [], {}
    for _ in range(rounds):
        started = time.perf_counter()
        result = per_zone(db.query(q))
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--year", type=int, default=2026, help="calendar year (default 2026)")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each query (default 3)")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--days", type=int, help="only the year's first DAYS days (a quick try)")
    args = ap.parse_args()
    site = load_site(SITE)
    first = dt.date(args.year, 1, 1)
    days = args.days or (dt.date(args.year + 1, 1, 1) - first).days
    after = first + dt.timedelta(days=days)
    with tempfile.TemporaryDirectory(prefix="bench-year-") as tmp:
        server = Influx(Path(tmp) / "influxdb")
        server.start()
        try:
            # Raw events kept for ever, so that any year can be written.
            db = InfluxV1(
                InfluxSettings(
                    url=server.url, database="footfall", retention_duration="INF", timeout_s=120
                )
            )
            started = time.perf_counter()

            def progress(message: str) -> None:
                """The first day of each month, and the history rebuild."""
                if message[7:10] == "-01" or message.startswith("history"):
                    print(f"{time.perf_counter() - started:7.1f} s  {message}", flush=True)

            stats = backfill(
                VisitorModel(site),
                db,
                days,
                args.seed,
                agent_ids([d.id for d in site.doors]),
                CROWD,
                progress,
                after,
            )
            elapsed = time.perf_counter() - started
            a, b = year_bounds_ms(site, args.year)
            where = f"\"site\" = '{site.site}' AND time >= {a}ms AND time < {b}ms"
            rollup_q = (
                f'SELECT sum("entries") FROM {rollup_from(VISITS_DAILY)} WHERE {where} '
                'GROUP BY "zone"'
            )
            raw_q = (
                f'SELECT sum("count") FROM "{ZONE_FLOW}" WHERE "dir" = \'in\' AND {where} '
                'GROUP BY "zone"'
            )
            db.query(raw_q)  # the first read of a shard opens it: not part of the figure
            db.query(rollup_q)
            raw_s, raw = timed(db, raw_q, args.rounds)
            rollup_s, rollups = timed(db, rollup_q, args.rounds)
            db.close()
        finally:
            server.kill()
    assert rollups == raw, f"rollups {rollups} != raw zone_flow {raw}"
    assert set(rollups) == {z.id for z in site.zones}
    roots = [z.id for z in site.zones if z.parent is None]
    backfill_s = stats.simulate_s + stats.write_s
    results: dict[str, Any] = {
        "site": site.site,
        "year": args.year,
        "days": stats.days,
        "visits_simulated": stats.visits,
        "points_written": stats.points,
        "backfill": {
            "elapsed_s": round(elapsed, 1),
            "simulate_and_write_s": round(backfill_s, 1),
            "simulate_s": round(stats.simulate_s, 1),
            "write_s": round(stats.write_s, 1),
            "per_day_s": round(backfill_s / days, 3),
            "write_retries": stats.retries,
        },
        "history_rebuild": {
            "windows": stats.history_windows,
            "total_s": round(stats.history_s, 1),
            "per_day_s": round(stats.history_s / days, 3),
        },
        "annual_visits_query": {
            "rollups_s": round(rollup_s, 4),
            "raw_zone_flow_s": round(raw_s, 4),
            "raw_over_rollups": round(raw_s / rollup_s, 1),
            "rounds": args.rounds,
            "equal": rollups == raw,
        },
        "visits_per_zone": dict(sorted(rollups.items(), key=lambda kv: -kv[1])),
        "total_all_zones": sum(rollups.values()),
        "site_visits": sum(rollups[z] for z in roots),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
