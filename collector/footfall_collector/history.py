"""Occupancy history and visit rollups, recomputed at event time (docs/history.md).

The pure part (`replay.py`) replays one reset window's `zone_flow` per zone with the live
engine's rule, and turns it into hourly and daily rows. `HistoryWorker` is the thin
adapter: it reads what the collector marked pending, reads the window from InfluxDB,
writes `occupancy_history` and the rollups, and only then clears the marks it read, so a
crash anywhere just means the window is done again (every write is idempotent)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from footfall_contract.hours import (
    HOUR_MS,
    Window,
    local_date,
    local_day_bounds,
    window_of,
)
from footfall_contract.site import Site

from .influx import Influx, PermanentWriteError, influxql_string
from .influxql import time_range
from .points import Point
from .replay import (
    Flow,
    HourRow,
    bad_hours,
    day_row,
    hour_rows,
    minute_points,
    replay,
    zones_of_door,
)
from .schema import (
    AGENT_RETIRED,
    AGENT_STATUS,
    CROSSING,
    FAULT,
    HISTORY_PENDING,
    ROLLUP_RP,
    VISITS_DAILY,
    VISITS_HOURLY,
    ZONE_FLOW,
    rollup_from,
    visits_point,
)

log = logging.getLogger(__name__)

LOOKBACK_MS = 31 * 86_400_000
"""How far before a window an agent's last status or a fault's last state is looked for."""


# -- InfluxDB ----------------------------------------------------------------------------


def _rows(series: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Rows of InfluxDB's JSON series, with the series' tags in each row."""
    for s in series:
        tags = s.get("tags") or {}
        for values in s["values"]:
            yield {**dict(zip(s["columns"], values, strict=True)), **tags}


def _int(value: Any) -> int:
    return int(value)


@dataclass
class _State:
    initial: bool
    changes: list[tuple[int, bool]]


@dataclass
class Pending:
    windows: dict[int, int]
    """window start -> earliest event time (ms) in it that is not in history yet"""
    up_to_ns: int
    """the newest mark read: marks up to it are cleared once the windows are done"""


class HistoryWorker:
    """Recomputes pending windows of one site."""

    def __init__(self, influx: Influx, site: Site) -> None:
        self.influx = influx
        self.site = site
        self._where = f'"site" = {influxql_string(site.site)}'

    def pending(self) -> Pending:
        q = f'SELECT "window_ms", "from_ms" FROM "{HISTORY_PENDING}" WHERE {self._where}'
        windows: dict[int, int] = {}
        newest = -1
        for row in _rows(self.influx.query(q, epoch="ns")):
            w, f = int(row["window_ms"]), int(row["from_ms"])
            windows[w] = min(f, windows.get(w, f))
            newest = max(newest, int(row["time"]))
        return Pending(windows, newest)

    def run_once(self, now_ms: int) -> int:
        """Every pending window, oldest first; the number of windows done."""
        p = self.pending()
        for start in sorted(p.windows):
            self.recompute(window_of(self.site, start), p.windows[start], now_ms)
        if p.windows:
            self.influx.query(
                f'DELETE FROM "{HISTORY_PENDING}" WHERE {self._where} AND time <= {p.up_to_ns}'
            )
        return len(p.windows)

    def rebuild(self, first: date, last: date, now_ms: int) -> int:
        """Every window from the one holding local `first` to the one holding `last`."""
        start = window_of(self.site, local_day_bounds(self.site, first)[0]).start_ms
        end = window_of(self.site, local_day_bounds(self.site, last)[1] - 1).end_ms
        done = 0
        while start < end and start <= now_ms:
            w = window_of(self.site, start)
            self.recompute(w, w.start_ms, now_ms)
            start = w.end_ms
            done += 1
        return done

    def _write(self, points: list[Point], rp: str | None = None) -> None:
        """A window at the edge of the raw retention starts before it: InfluxDB 1.x
        stores the rest of such a write and refuses those points ("partial write ...
        beyond retention policy"); that must not keep the window pending for ever."""
        try:
            self.influx.write([p.line() for p in points], rp=rp)
        except PermanentWriteError as exc:
            log.warning("history: InfluxDB kept only part of a write: %s", exc)

    def flows(self, window: Window) -> list[Flow]:
        q = (
            f'SELECT "count", "zone", "dir" FROM "{ZONE_FLOW}" WHERE {self._where} '
            f"AND {time_range(window.start_ms, window.end_ms)}"
        )
        return [
            (int(r["time"]), str(r["zone"]), str(r["dir"]))
            for r in _rows(self.influx.query(q, epoch="ns"))
        ]

    def recompute(self, window: Window, from_ms: int, now_ms: int) -> None:
        """History of `window` from `from_ms` on, and the rollups of the hours touched."""
        site = self.site.site
        zones = [z.id for z in self.site.zones]
        from_ms = max(from_ms, window.start_ms)
        flows = self.flows(window)
        levels = replay(zones, window, flows)
        points = minute_points(site, window, levels, from_ms)
        self._write(points)
        first_hour = window.start_ms + (from_ms - window.start_ms) // HOUR_MS * HOUR_MS
        hours = [h for h in window.hours() if first_hour <= h < now_ms]
        if not hours:
            return
        estimated = self.estimated(window, hours)
        rows = hour_rows(levels, flows, hours, estimated)
        hourly = [
            visits_point(
                VISITS_HOURLY,
                site,
                zone,
                h,
                entries=r.entries,
                exits=r.exits,
                peak=r.peak,
                peak_at_ms=r.peak_at_ms,
                estimated=int(r.estimated),
            )
            for (zone, h), r in rows.items()
        ]
        self._write(hourly, ROLLUP_RP)
        for day in sorted({local_date(self.site, h) for h in hours}):
            self.roll_day(day)

    def roll_day(self, day: date) -> None:
        """`visits_daily` of one calendar day from its stored hours (which may come from
        two reset windows)."""
        start, end = local_day_bounds(self.site, day)
        q = (
            'SELECT "entries", "exits", "peak", "peak_at", "estimated", "zone" '
            f"FROM {rollup_from(VISITS_HOURLY)} WHERE {self._where} "
            f"AND {time_range(start, end)}"
        )
        by_zone: dict[str, list[HourRow]] = defaultdict(list)
        for r in _rows(self.influx.query(q, epoch="ms")):
            by_zone[str(r["zone"])].append(
                HourRow(
                    int(r["entries"]),
                    int(r["exits"]),
                    int(r["peak"]),
                    int(r["peak_at"]),
                    bool(r["estimated"]),
                )
            )
        points: list[Point] = []
        for zone, hour_list in by_zone.items():
            d = day_row(hour_list)
            points.append(
                visits_point(
                    VISITS_DAILY,
                    self.site.site,
                    zone,
                    start,
                    entries=d.entries,
                    exits=d.exits,
                    peak=d.peak,
                    peak_at_ms=d.peak_at_ms,
                    estimated=d.estimated_hours,
                )
            )
        self._write(points, ROLLUP_RP)

    # -- estimated hours ---------------------------------------------------------------

    def agent_doors(self) -> dict[str, set[str]]:
        """Which doors each agent has reported crossings for (its series)."""
        out: dict[str, set[str]] = defaultdict(set)
        for row in _rows(self.influx.query(f'SHOW SERIES FROM "{CROSSING}" WHERE {self._where}')):
            tags = dict(
                part.split("=", 1) for part in str(row["key"]).split(",")[1:] if "=" in part
            )
            if "agent" in tags and "door" in tags:
                out[tags["agent"]].add(tags["door"])
        return out

    def estimated(self, window: Window, hours: list[int]) -> dict[str, set[int]]:
        """Per zone, the hours in which an agent serving one of its doors was offline or
        one of its doors had an active fault: their counts are estimates."""
        doors = {d.id for d in self.site.doors}
        out: dict[str, set[int]] = defaultdict(set)
        span = f"AND {time_range(window.start_ms, window.end_ms)}"
        before = f"AND {time_range(window.start_ms - LOOKBACK_MS, window.start_ms)}"
        agent_doors = self.agent_doors()

        def states(measurement: str, keys: tuple[str, ...]) -> dict[tuple[str, ...], _State]:
            group = ", ".join(f'"{k}"' for k in keys)
            agents = measurement == AGENT_STATUS
            bad_value = 0 if agents else 1  # offline; fault active

            def bad(r: dict[str, Any]) -> bool:
                # a retired agent serves no door any more: its counts are not estimates
                return _int(r["value"]) == bad_value and r.get("reason") != AGENT_RETIRED

            fields = ('"value", "reason"', 'last("value") AS "value", last("reason") AS "reason"')
            if not agents:
                fields = ('"value"', 'last("value") AS "value"')
            found: dict[tuple[str, ...], _State] = {}
            q0 = (
                f'SELECT {fields[1]} FROM "{measurement}" WHERE {self._where} '
                f"{before} GROUP BY {group}"
            )
            for r in _rows(self.influx.query(q0, epoch="ms")):
                k = tuple(str(r.get(x, "")) for x in keys)
                found[k] = _State(bad(r), [])
            q1 = (
                f'SELECT {fields[0]} FROM "{measurement}" WHERE {self._where} {span} '
                f"GROUP BY {group}"
            )
            for r in _rows(self.influx.query(q1, epoch="ms")):
                k = tuple(str(r.get(x, "")) for x in keys)
                found.setdefault(k, _State(False, [])).changes.append((_int(r["time"]), bad(r)))
            return found

        for (agent,), st in states(AGENT_STATUS, ("agent",)).items():
            bad = bad_hours(st.initial, st.changes, hours)
            if bad:
                for door in agent_doors.get(agent, ()):
                    if door in doors:
                        for z in zones_of_door(self.site, door):
                            out[z] |= bad
        for (_agent, source, _fault), st in states(FAULT, ("agent", "source", "fault")).items():
            door = source.split("/", 1)[0]
            if door not in doors:
                continue
            bad = bad_hours(st.initial, st.changes, hours)
            if bad:
                for z in zones_of_door(self.site, door):
                    out[z] |= bad
        return out
