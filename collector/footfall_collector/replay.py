"""Visits and occupancy history of one reset window, pure: its `zone_flow` replayed per
zone with the live engine's rule (docs/history.md), turned into a point a minute and into
hourly and daily rows; and the hours an agent or a sensor was not counting, which make
an hour estimated. No clock, no I/O: `history.HistoryWorker` reads and writes."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from footfall_contract.hours import HOUR_MS, Window
from footfall_contract.site import Site

from .points import Point
from .schema import occupancy_history_point

Flow = tuple[int, str, str]
"""(point time in ns, zone, "in" or "out")"""
Level = tuple[int, int, int]
"""(time in ns, count after it, drift after it)"""

MINUTE_MS = 60_000


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
