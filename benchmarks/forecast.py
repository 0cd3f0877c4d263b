"""Forecast error: how well the typical day (median of the last N same weekdays, per
15-minute slot, `footfall_web.forecast`) predicts a zone's occupancy, against the naive
forecast "the same as last week".

One run: a real InfluxDB 1.x in a temporary folder, `weeks + 1` weeks of simulated Iso
Omena history written by `footfall-sim --backfill`'s own code, the last week held out.
For each held-out day and zone, both forecasts come from `Forecaster` as the web board
would ask for them on that day (the median one with `weeks`, the naive one with 1 week),
and are compared with the day's actual slot means from the same query. Mean absolute
error in people, per zone and overall, over every slot of the day and over the zone's
opening hours only.

    .venv/bin/python -m benchmarks.forecast [--weeks 4] [--seed 1] [--step 15]
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
from footfall_contract.site import Site, load_site
from footfall_sim.backfill import backfill
from footfall_sim.crowd import CROWD
from footfall_sim.localservices import Influx
from footfall_sim.runner import agent_ids
from footfall_sim.visitors import VisitorModel
from footfall_web.forecast import Forecaster, slot_means
from tests.support.grafana import dashboards, panel_queries

SITE = Path(__file__).parents[1] / "deploy" / "sites" / "iso-omena.yaml"


class Errors:
    def __init__(self) -> None:
        self.sum = 0.0
        self.actual = 0.0
        self.n = 0

    def add(self, forecast: float | None, actual: float | None) -> None:
        if forecast is None or actual is None:
            return
        self.sum += abs(forecast - actual)
        self.actual += actual
        self.n += 1

    @property
    def mae(self) -> float | None:
        return self.sum / self.n if self.n else None


def open_slot(site: Site, zone: str, day: dt.date, slot: int, step: int) -> bool:
    hours = site.hours_on(day, zone)
    if hours is None:
        return False
    minutes = slot * step
    start = hours[0].hour * 60 + hours[0].minute
    end = 24 * 60 if hours[1] == dt.time.max else hours[1].hour * 60 + hours[1].minute
    return start <= minutes < end


def evaluate(influx: InfluxV1, site: Site, today: dt.date, weeks: int, step: int) -> dict[str, Any]:
    clock = [0.0]
    median = Forecaster(influx, site, weeks=weeks, step_min=step, cache_s=0, now=lambda: clock[0])
    naive = Forecaster(influx, site, weeks=1, step_min=step, cache_s=0, now=lambda: clock[0])
    keys = ("median_all", "naive_all", "median_open", "naive_open")
    per_zone: dict[str, dict[str, Errors]] = {z.id: {k: Errors() for k in keys} for z in site.zones}
    started = time.monotonic()
    queries = 0
    for back in range(7, 0, -1):
        day = today - dt.timedelta(days=back)
        clock[0] = dt.datetime.combine(day, dt.time(6), tzinfo=site.tz).timestamp()
        for zone in per_zone:
            m = median.typical(zone)
            nv = naive.typical(zone)
            actual = slot_means(median.samples(zone, [day]), site.tz, step).get(day)
            queries += 3
            if actual is None:
                continue
            e = per_zone[zone]
            for slot, value in enumerate(actual):
                e["median_all"].add(m.values[slot], value)
                e["naive_all"].add(nv.values[slot], value)
                if open_slot(site, zone, day, slot, step):
                    e["median_open"].add(m.values[slot], value)
                    e["naive_open"].add(nv.values[slot], value)
    elapsed = time.monotonic() - started

    def summary(errors: dict[str, Errors]) -> dict[str, Any]:
        out: dict[str, Any] = {k: _r(errors[k].mae) for k in keys}
        for scope in ("all", "open"):
            m, n = errors[f"median_{scope}"].mae, errors[f"naive_{scope}"].mae
            out[f"ratio_{scope}"] = _r(m / n) if m is not None and n else None
        opened = errors["median_open"]
        out["slots_open"] = opened.n
        out["mean_open"] = _r(opened.actual / opened.n) if opened.n else None
        return out

    overall = {k: Errors() for k in keys}
    for errors in per_zone.values():
        for k in keys:
            overall[k].sum += errors[k].sum
            overall[k].actual += errors[k].actual
            overall[k].n += errors[k].n
    return {
        "zones": {z: summary(e) for z, e in per_zone.items()},
        "overall": summary(overall),
        "forecast_queries": queries,
        "query_ms_mean": round(elapsed / queries * 1000, 2),
    }


def dashboard_times(influx: InfluxV1, site: Site, day: dt.date) -> dict[str, Any]:
    """Every provisioned dashboard's queries at 16:30 on `day`, one after the other (Grafana
    runs a dashboard's panels concurrently: the sum is an upper bound), over the history
    in the database; the slowest panels."""
    now = dt.datetime.combine(day, dt.time(16, 30), tzinfo=site.tz)
    zones = [z.id for z in site.zones]
    out: dict[str, Any] = {}
    one = "library" if "library" in zones else zones[0]  # for panels repeated per zone
    for board in dashboards().values():
        per_panel: dict[str, float] = {}
        for panel, _ref, q in panel_queries(board, now, site.tz, site.site, zones, one):
            started = time.monotonic()
            influx.query(q)
            per_panel[panel["title"]] = per_panel.get(panel["title"], 0.0) + (
                time.monotonic() - started
            )
        slowest = sorted(per_panel.items(), key=lambda kv: -kv[1])[:3]
        out[board["title"]] = {
            "queries_s": round(sum(per_panel.values()), 2),
            "slowest": {k: round(v, 2) for k, v in slowest},
        }
    return out


def _r(x: float | None) -> float | None:
    return round(x, 2) if x is not None else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--weeks", type=int, default=4, help="same weekdays in the median")
    p.add_argument("--step", type=int, default=15, help="slot length in minutes")
    p.add_argument("--seed", default="1")
    p.add_argument("--site", type=Path, default=SITE)
    p.add_argument("--json", action="store_true", help="print JSON only")
    args = p.parse_args(argv)
    site = load_site(args.site)
    days = 7 * (args.weeks + 1)
    today = dt.datetime.now(site.tz).date()
    with tempfile.TemporaryDirectory() as tmp:
        server = Influx(Path(tmp) / "influxdb")
        server.start()
        try:
            influx = InfluxV1(InfluxSettings(url=server.url, database="footfall"))
            agent_of = agent_ids([d.id for d in site.doors], "door")
            started = time.monotonic()
            stats = backfill(
                VisitorModel(site), influx, days, args.seed, agent_of, CROWD, lambda _m: None, today
            )
            backfill_s = time.monotonic() - started
            result = evaluate(influx, site, today, args.weeks, args.step)
            result["dashboards"] = dashboard_times(influx, site, today - dt.timedelta(days=1))
        finally:
            server.kill()
    result = {
        "site": site.site,
        "history_days": days,
        "held_out": [str(today - dt.timedelta(days=7)), str(today - dt.timedelta(days=1))],
        "weeks": args.weeks,
        "step_min": args.step,
        "seed": args.seed,
        "visits": stats.visits,
        "backfill_s": round(backfill_s, 1),
        **result,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{site.site}: {days} days of history ({stats.visits} visits), held out "
        f"{result['held_out'][0]}..{result['held_out'][1]}, median of {args.weeks} same "
        f"weekdays vs last week's, {args.step}-min slots; mean absolute error in people"
    )
    print(
        f"{'zone':<20} {'median':>8} {'naive':>8} {'ratio':>6}   "
        f"{'open: median':>12} {'naive':>8} {'ratio':>6} {'mean occupancy':>15}"
    )
    rows = [*result["zones"].items(), ("overall", result["overall"])]
    for zone, s in rows:
        print(
            f"{zone:<20} {s['median_all']!s:>8} {s['naive_all']!s:>8} {s['ratio_all']!s:>6}   "
            f"{s['median_open']!s:>12} {s['naive_open']!s:>8} {s['ratio_open']!s:>6} "
            f"{s['mean_open']!s:>15}"
        )
    for title, d in result["dashboards"].items():
        slow = ", ".join(f"{k} {v} s" for k, v in d["slowest"].items())
        print(f"dashboard {title!r}: all queries {d['queries_s']} s in a row; slowest: {slow}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
