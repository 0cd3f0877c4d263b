"""An annual report from the rollups against the same annual visits from raw events.

Writes a year of synthetic Iso Omena visits (deploy/sites/iso-omena.yaml, 11 zones) into
a temporary InfluxDB 1.x: about 1.3 million `zone_flow` entries (dir=in, in the zones'
opening hours) and the hourly and daily rollup rows they make. Then times, median of 3:

  report      load_report() for the year: daily rows of the year and the year before,
              the year's hourly rows (the weekday profile) and the per-door query;
  statistics  load_statistics(): the annual visits per unit from the daily rollups;
  raw total   the same annual visits per zone summed from `zone_flow`;
  raw daily   the visits per zone and local day from `zone_flow` (GROUP BY time(1d) with
              the site's tz());
  raw hourly  the same per local hour (time(1h)): with raw daily, what the annual report
              would have to read without rollups (and cannot beyond the raw retention).

    .venv/bin/python -m benchmarks.reports [--entries 1300000] [--year 2025]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from footfall_collector import schema
from footfall_collector.config import InfluxSettings
from footfall_collector.influx import InfluxV1
from footfall_collector.points import Point
from footfall_contract.site import Site, load_site
from footfall_report import load_report, load_statistics
from footfall_report.periods import year_period
from footfall_sim.localservices import Influx

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
SITE_FILE = ROOT / "deploy" / "sites" / "iso-omena.yaml"
SHAPE = [0.5, 0.8, 1.0, 1.2, 1.4, 1.3, 1.1, 1.0, 1.1, 1.3, 1.2, 0.9, 0.7]
"""Relative traffic of the opening hours, morning to evening (stretched to fit)."""


def open_hours(site: Site, year: int) -> list[tuple[str, int]]:
    """(zone, local hour start in epoch ms) of every opening hour of the year."""
    out = []
    day = dt.date(year, 1, 1)
    while day.year == year:
        for zone in site.zones:
            hours = site.hours_on(day, zone.id)
            if hours is None:
                continue
            start, end = hours
            last = 24 if end == dt.time.max else end.hour + (1 if end.minute else 0)
            for hour in range(start.hour, last):
                local = dt.datetime.combine(day, dt.time(hour), tzinfo=site.tz)
                out.append((zone.id, int(local.timestamp() * 1000)))
        day += dt.timedelta(days=1)
    return out


def generate(
    site: Site, year: int, entries: int, seed: int = 1
) -> tuple[list[str], dict[tuple[str, int], int]]:
    """zone_flow lines, and entries per (zone, local hour start ms) (the rollups' truth)."""
    rng = random.Random(seed)
    hours = open_hours(site, year)
    mean = entries / len(hours)
    lines: list[str] = []
    per_hour: dict[tuple[str, int], int] = {}
    seq = 0
    for zone, start_ms in hours:
        local_hour = dt.datetime.fromtimestamp(start_ms / 1000, site.tz).hour
        weight = SHAPE[min(max(local_hour - 8, 0), len(SHAPE) - 1)]
        n = max(0, int(rng.gauss(mean * weight / 1.05, mean * 0.2)))
        per_hour[(zone, start_ms)] = n
        prefix = f"{schema.ZONE_FLOW},agent=a1,dir=in,site={site.site},zone={zone} count=1i "
        for _ in range(n):
            seq += 1
            t_ns = (start_ms + rng.randrange(3_600_000)) * 1_000_000 + seq % 1_000_000
            lines.append(f"{prefix}{t_ns}")
    return lines, per_hour


def rollups(site: Site, year: int, per_hour: dict[tuple[str, int], int]) -> list[Point]:
    """Hourly rows for every hour of the year (0 outside opening hours) and daily rows."""
    points = []
    period = year_period(year, site.tz)
    daily: dict[tuple[str, int], int] = defaultdict(int)
    for zone in site.zones:
        t = period.start_ms
        while t < period.end_ms:
            n = per_hour.get((zone.id, t), 0)
            points.append(
                schema.visits_point(
                    schema.VISITS_HOURLY,
                    site.site,
                    zone.id,
                    t,
                    entries=n,
                    exits=n,
                    peak=n // 3,
                    peak_at_ms=t + 1_800_000,
                    estimated=0,
                )
            )
            day = dt.datetime.fromtimestamp(t / 1000, site.tz).date()
            midnight = dt.datetime.combine(day, dt.time(0), tzinfo=site.tz)
            daily[(zone.id, int(midnight.timestamp() * 1000))] += n
            t += 3_600_000
    for (zone_id, midnight_ms), n in daily.items():
        points.append(
            schema.visits_point(
                schema.VISITS_DAILY,
                site.site,
                zone_id,
                midnight_ms,
                entries=n,
                exits=n,
                peak=n // 10,
                peak_at_ms=midnight_ms + 13 * 3_600_000,
                estimated=0,
            )
        )
    return points


def median_of(runs: int, fn: Callable[[], T]) -> tuple[float, T]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=1_300_000)
    p.add_argument("--year", type=int, default=2025)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    site = load_site(SITE_FILE)
    with tempfile.TemporaryDirectory(prefix="footfall-bench-reports-") as tmp:
        server = Influx(Path(tmp) / "influxdb")
        server.start()
        try:
            # the synthetic year may be older than the default 400 days: keep raw events
            settings = InfluxSettings(
                url=server.url, database="footfall", timeout_s=120, retention_duration="INF"
            )
            influx = InfluxV1(settings)
            influx.ensure_database()  # the raw policy and the rollups policy

            t0 = time.perf_counter()
            lines, per_hour = generate(site, args.year, args.entries)
            points = rollups(site, args.year, per_hour)
            t1 = time.perf_counter()
            for i in range(0, len(lines), 10_000):
                influx.write(lines[i : i + 10_000])
            t2 = time.perf_counter()
            rollup_lines = [pt.line() for pt in points]
            for i in range(0, len(rollup_lines), 10_000):
                influx.write(rollup_lines[i : i + 10_000], rp=schema.ROLLUP_RP)
            t3 = time.perf_counter()
            total = sum(per_hour.values())
            print(
                f"data: {total:,} zone_flow entries ({len(lines) / (t2 - t1):,.0f} points/s "
                f"written), {len(points):,} rollup rows; generated in {t1 - t0:.1f} s, "
                f"written in {t2 - t1:.1f} + {t3 - t2:.1f} s"
            )

            period = year_period(args.year, site.tz)
            now = period.end + dt.timedelta(days=30)
            where = (
                f"\"site\" = '{site.site}' AND \"dir\" = 'in' "
                f"AND time >= {period.start_ms}ms AND time < {period.end_ms}ms"
            )
            raw_total_q = (
                f'SELECT sum("count") FROM "{schema.ZONE_FLOW}" WHERE {where} GROUP BY "zone"'
            )
            raw_daily_q = (
                f'SELECT sum("count") FROM "{schema.ZONE_FLOW}" WHERE {where} '
                f"GROUP BY time(1d), \"zone\" tz('{site.timezone}')"
            )
            raw_hourly_q = raw_daily_q.replace("time(1d)", "time(1h)")
            # warm both paths once (InfluxDB's caches, Python imports)
            load_report(influx, site, period, now=now)
            influx.query(raw_total_q, epoch="ms")

            report_s, report = median_of(
                args.runs, lambda: load_report(influx, site, period, now=now)
            )
            stats_s, stats = median_of(
                args.runs, lambda: load_statistics(influx, site, args.year, now=now)
            )
            raw_total_s, raw = median_of(args.runs, lambda: influx.query(raw_total_q, epoch="ms"))
            raw_daily_s, _ = median_of(args.runs, lambda: influx.query(raw_daily_q, epoch="ms"))
            raw_hourly_s, _ = median_of(args.runs, lambda: influx.query(raw_hourly_q, epoch="ms"))

            # the same visits both ways
            from_raw = {s["tags"]["zone"]: s["values"][0][1] for s in raw}
            from_rollups = {u.zone: u.visits for u in stats.units}
            assert from_raw == from_rollups, (from_raw, from_rollups)
            assert {z.zone: z.entries for z in report.zones} == from_raw
            print(f"annual report, {len(site.zones)} zones, median of {args.runs}:")
            for label, seconds in (
                ("report from rollups (daily + hourly profile + doors)", report_s),
                ("statistics from daily rollups", stats_s),
                ("annual visits from raw zone_flow (sum per zone)", raw_total_s),
                ("daily visits from raw zone_flow (per local day)", raw_daily_s),
                ("hourly visits from raw zone_flow (per local hour)", raw_hourly_s),
            ):
                print(f"  {label:<54} {seconds * 1000:8.0f} ms")
            print(
                f"  ratios: raw sum / statistics {raw_total_s / stats_s:.1f}x, "
                f"raw daily + hourly / report {(raw_daily_s + raw_hourly_s) / report_s:.1f}x"
            )
            influx.close()
        finally:
            server.kill()


if __name__ == "__main__":
    main()
