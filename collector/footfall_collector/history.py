"""Occupancy history and visit rollups, recomputed at event time (docs/history.md).

The pure part replays one reset window's `zone_flow` per zone with the live engine's
rule, and turns it into hourly and daily rows. `HistoryWorker` is the thin adapter: it
reads what the collector marked pending, reads the window from InfluxDB, writes
`occupancy_history` and the rollups, and only then clears the marks it read, so a crash
anywhere just means the window is done again (every write is idempotent)."""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping
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

from .influx import Influx, PermanentWriteError
from .points import Point
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
    occupancy_history_point,
    rollup_from,
    visits_point,
)

log = logging.getLogger(__name__)

Flow = tuple[int, str, str]
"""(point time in ns, zone, "in" or "out")"""
Level = tuple[int, int, int]
"""(time in ns, count after it, drift after it)"""

MINUTE_MS = 60_000
LOOKBACK_MS = 31 * 86_400_000
"""How far before a window an agent's last status or a fault's last state is looked for."""


# -- pure --------------------------------------------------------------------------------


def replay(zones: Iterable[str], window: Window, flows: Iterable[Flow]) -> dict[str, list[Level]]:
    """Per zone, the count after each of its events, from 0 at the window's start. A count
    never goes below 0 (the drift counts who it would have gone below), as live. At one
    instant entries come before exits, so a tie never makes drift."""
    levels: dict[str, list[Level]] = {z: [(window.start_ms * 1_000_000, 0, 0)] for z in zones}
    state = {z: [0, 0] for z in levels}
    for t, zone, direction in sorted(flows, key=lambda f: (f[0], f[2] != "in", f[1])):
        s = state.get(zone)
        if s is None:  # a zone no longer in the site file: its flows stay, not replayed
            continue
        if direction == "in":
            s[0] += 1
        elif s[0] > 0:
            s[0] -= 1
        else:
            s[1] += 1
        levels[zone].append((t, s[0], s[1]))
    return levels


def minutes(window: Window, series: list[Level], from_ms: int) -> list[tuple[int, int, int, int]]:
    """(minute start ms, count at its end, peak within it, drift at its end) for the
    minutes of a zone's levels from `from_ms`'s minute on, and the window's start: one
    point a minute however busy the door, enough for charts and typical days (the
    hourly rollups take their peaks from every event)."""
    first = window.start_ms + (from_ms - window.start_ms) // MINUTE_MS * MINUTE_MS
    out: dict[int, list[int]] = {}
    carried = 0
    for t, count, drift in series:
        m = window.start_ms + (t // 1_000_000 - window.start_ms) // MINUTE_MS * MINUTE_MS
        if m < first and m != window.start_ms:
            carried = count
            continue
        row = out.get(m)
        if row is None:
            out[m] = [count, max(carried, count), drift]
        else:
            row[0], row[1], row[2] = count, max(row[1], count), drift
        carried = count
    return [(m, c, p, d) for m, (c, p, d) in sorted(out.items())]


def minute_points(
    site: str, window: Window, levels: Mapping[str, list[Level]], from_ms: int
) -> list[Point]:
    return [
        occupancy_history_point(site, zone, count, drift, m * 1_000_000, peak=peak)
        for zone, series in levels.items()
        for m, count, peak, drift in minutes(window, series, from_ms)
    ]


@dataclass(frozen=True)
class HourRow:
    entries: int
    exits: int
    peak: int
    peak_at_ms: int
    estimated: bool


def hour_rows(
    levels: Mapping[str, list[Level]],
    flows: Iterable[Flow],
    hours: list[int],
    estimated: Mapping[str, set[int]] | None = None,
) -> dict[tuple[str, int], HourRow]:
    """Entries, exits and the peak (with who was already in at the start) of each zone in
    each local hour starting at `hours` (epoch ms)."""
    counts: dict[tuple[str, int, str], int] = defaultdict(int)
    first = hours[0] if hours else 0
    for t, zone, direction in flows:
        h = first + (t // 1_000_000 - first) // HOUR_MS * HOUR_MS
        counts[(zone, h, direction)] += 1
    rows: dict[tuple[str, int], HourRow] = {}
    for zone, series in levels.items():
        times = [lv[0] for lv in series]
        for h in hours:
            lo = bisect_left(times, h * 1_000_000)
            hi = bisect_left(times, (h + HOUR_MS) * 1_000_000)
            peak, peak_at = (series[lo - 1][1], h) if lo > 0 else (0, h)
            for t, count, _ in series[lo:hi]:
                if count > peak:
                    peak, peak_at = count, t // 1_000_000
            rows[(zone, h)] = HourRow(
                counts[(zone, h, "in")],
                counts[(zone, h, "out")],
                peak,
                peak_at,
                h in (estimated or {}).get(zone, set()),
            )
    return rows


@dataclass(frozen=True)
class DayRow:
    entries: int
    exits: int
    peak: int
    peak_at_ms: int
    estimated_hours: int


def day_row(hours: Iterable[HourRow]) -> DayRow:
    entries = exits = estimated = 0
    peak, peak_at = -1, 0
    for r in hours:
        entries += r.entries
        exits += r.exits
        estimated += r.estimated
        if r.peak > peak:
            peak, peak_at = r.peak, r.peak_at_ms
    return DayRow(entries, exits, max(peak, 0), peak_at, estimated)


def bad_hours(initial: bool, changes: Iterable[tuple[int, bool]], hours: list[int]) -> set[int]:
    """The hours during which a state (agent offline, fault active) was bad at any time:
    `initial` before the first hour, then `changes` (epoch ms, bad)."""
    ordered = sorted(changes)
    out: set[int] = set()
    i, bad = 0, initial
    for h in hours:
        hit = bad
        while i < len(ordered) and ordered[i][0] < h + HOUR_MS:
            bad = ordered[i][1]
            hit = hit or bad
            i += 1
        if hit:
            out.add(h)
    return out


def zones_of_door(site: Site, door: str) -> set[str]:
    entered, left = site.door_effects(door)
    return {*entered, *left}


# -- InfluxDB ----------------------------------------------------------------------------


def _q(text: str) -> str:
    """An InfluxQL string literal (ids are [a-z0-9-], checked against the site file)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


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
        self._where = f'"site" = {_q(site.site)}'

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
            f"AND time >= {window.start_ms}ms AND time < {window.end_ms}ms"
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
            f"AND time >= {start}ms AND time < {end}ms"
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
        span = f"AND time >= {window.start_ms}ms AND time < {window.end_ms}ms"
        before = f"AND time >= {window.start_ms - LOOKBACK_MS}ms AND time < {window.start_ms}ms"
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
