"""`footfall-sim --backfill DAYS`: weeks of simulated history written straight to
InfluxDB, so that dashboards and forecasts have data on a fresh installation.

The collector would refuse week-old events (`max_age_days`), so this path skips MQTT: each
past day is simulated (visits, beam traces, the real detectors) and the points the
collector would have written are computed by `history.History` and written with the
collector's own InfluxDB adapter, thousands of points a request, one request at a time,
retrying what InfluxDB 1.x answers with 5xx under load (re-writing a point is
idempotent, and the same seed gives the same points: a backfill run twice adds nothing).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from footfall_collector.influx import Influx, RetryableWriteError
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

    def as_json(self) -> dict[str, Any]:
        elapsed = self.simulate_s + self.write_s
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
) -> BackfillStats:
    """The `days` local days before `today` (default: the site's today), oldest first."""
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
    return stats
