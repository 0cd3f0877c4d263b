"""`footfall-sim --backfill DAYS`: months of simulated history written straight to
InfluxDB, so that dashboards, forecasts and reports have data on a fresh installation.

The collector would take these events too (anything within the raw retention, 400
days), but this path needs neither a broker nor a running collector, nor the agents'
outboxes, so it skips them: each past day is simulated (visits, beam traces, the real
detectors), the points the collector would have written (`crossing` with its
`zone_flow`, `fault`, live `occupancy`) are computed by `history.History` and written
with the collector's own InfluxDB adapter, thousands of points a request, one request at
a time, retrying what InfluxDB 1.x answers with 5xx under load. Then the collector's own
history worker (`HistoryWorker.rebuild`) recomputes those days' `occupancy_history` and
hourly and daily visit rollups from the `zone_flow` written, as the collector's worker
would once the data had arrived. Re-writing a point is idempotent, and the same seed
gives the same points: a backfill run twice adds nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from footfall_collector.history import HistoryWorker
from footfall_collector.influx import Influx, RetryableWriteError
from footfall_contract.hours import local_day_bounds
from footfall_contract.site import Site
from footfall_edge.simulation.doorway import DoorwayProfile

from .history import History
from .scenario import day_window, simulate_day
from .visitors import VisitorModel

Progress = Callable[[str], None]


@dataclass
class BackfillStats:
    days: int = 0
    visits: int = 0
    true_crossings: int = 0
    detected: dict[str, dict[str, int]] = field(default_factory=dict)
    points: int = 0
    requests: int = 0
    retries: int = 0
    simulate_s: float = 0.0
    write_s: float = 0.0
    history_windows: int = 0
    """Reset windows whose occupancy history and visit rollups were recomputed."""
    history_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        elapsed = self.simulate_s + self.write_s + self.history_s
        return {
            "days": self.days,
            "visits": self.visits,
            "true_crossings": self.true_crossings,
            "detected": self.detected,
            "points": self.points,
            "write_requests": self.requests,
            "write_retries": self.retries,
            "simulate_s": round(self.simulate_s, 2),
            "write_s": round(self.write_s, 2),
            "history_windows": self.history_windows,
            "history_s": round(self.history_s, 2),
            "history_s_per_day": round(self.history_s / self.days, 3) if self.days else None,
            "days_per_minute": round(self.days / elapsed * 60.0, 2) if elapsed else None,
        }


class BatchWriter:
    """Lines to InfluxDB in bounded batches, one request at a time, retrying 5xx."""

    def __init__(
        self, influx: Influx, stats: BackfillStats, batch: int = 5000, attempts: int = 8
    ) -> None:
        self.influx = influx
        self.stats = stats
        self.batch = batch
        self.attempts = attempts
        self._lines: list[str] = []

    def add(self, line: str) -> None:
        self._lines.append(line)
        if len(self._lines) >= self.batch:
            self.flush()

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if not lines:
            return
        started = time.monotonic()
        delay = 0.2
        for attempt in range(self.attempts):
            try:
                self.influx.write(lines)
                break
            except RetryableWriteError:
                if attempt + 1 == self.attempts:
                    raise
                self.stats.retries += 1
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.stats.requests += 1
        self.stats.points += len(lines)
        self.stats.write_s += time.monotonic() - started


def rebuild_history(
    influx: Influx,
    site: Site,
    first: dt.date,
    last: dt.date,
    now_ms: int,
    stats: BackfillStats,
    attempts: int = 4,
) -> None:
    """The collector's history worker over the days written. A 5xx from an overloaded
    InfluxDB 1.x redoes the rebuild (every write of it is idempotent)."""
    started = time.monotonic()
    delay = 1.0
    for attempt in range(attempts):
        try:
            stats.history_windows = HistoryWorker(influx, site).rebuild(first, last, now_ms)
            break
        except RetryableWriteError:
            if attempt + 1 == attempts:
                raise
            stats.retries += 1
            time.sleep(delay)
            delay *= 2
    stats.history_s += time.monotonic() - started


def backfill(
    model: VisitorModel,
    influx: Influx,
    days: int,
    seed: int | str,
    agent_of: Mapping[str, str],
    profile: DoorwayProfile,
    progress: Progress,
    today: dt.date | None = None,
    batch: int = 5000,
    now_ms: int | None = None,
) -> BackfillStats:
    """The `days` local days before `today` (default: the site's today), oldest first,
    then their occupancy history and visit rollups. `now_ms` is the history worker's
    now (only the hours before it are rolled up); default the later of the clock and the
    end of the last day, which the simulation has finished (a `today` ahead of the clock
    backfills days that have not happened yet, for tests and benchmarks)."""
    site = model.site
    today = today or dt.datetime.now(site.tz).date()
    influx.ensure_database()
    stats = BackfillStats()
    writer = BatchWriter(influx, stats, batch)
    history = History(site, agent_of)
    for back in range(days, 0, -1):
        day = today - dt.timedelta(days=back)
        started = time.monotonic()
        sim = simulate_day(model, day, seed, profile)
        start, end = day_window(model, day)
        written = stats.points
        write_before = stats.write_s
        for point in history.points(sim.events, round(start * 1000), round(end * 1000)):
            writer.add(point.line())
        writer.flush()
        stats.simulate_s += time.monotonic() - started - (stats.write_s - write_before)
        stats.days += 1
        stats.visits += len(sim.plan.visits)
        stats.true_crossings += len(sim.plan.crossings)
        for door, counts in sim.detected_counts().items():
            total = stats.detected.setdefault(door, {"in": 0, "out": 0})
            total["in"] += counts["in"]
            total["out"] += counts["out"]
        progress(
            f"{day} ({day:%a}): {len(sim.plan.visits)} visits, {len(sim.plan.crossings)} "
            f"crossings, {stats.points - written} points written"
        )
    if days > 0:
        first, last = today - dt.timedelta(days=days), today - dt.timedelta(days=1)
        end_ms = local_day_bounds(site, last)[1]
        now = now_ms if now_ms is not None else max(time.time_ns() // 1_000_000, end_ms)
        rebuild_history(influx, site, first, last, now, stats)
        progress(
            f"history: occupancy_history and hourly and daily visits of {first} to {last} "
            f"({stats.history_windows} reset windows) in {stats.history_s:.1f} s"
        )
    return stats
