"""Generate footfall's Grafana dashboards (the one source of truth for their JSON).

    python dashboards/grafana/build.py            # writes dashboards/grafana/dashboards/*.json
    python dashboards/grafana/build.py --check    # exit 1 if the committed JSON is stale

Every query is InfluxQL for the data source provisioned as uid `footfall-influx`
(database `footfall`, schema in docs/collector.md). The dashboards know no site: `site`
and `zone` are variables filled from the tags InfluxDB holds (`SHOW TAG VALUES`), so a
new site file needs no new dashboard. The one thing taken from the site files is the
time zone(s) for `tz(...)` (variable `tz`), so that days and hours are the site's own.

Visits ("visitors", entries) into a zone are `sum("count")` of the collector's `zone_flow`
points with `dir = 'in'`: one point per zone a crossing enters, at the crossing's own
event time (docs/history.md), so late and batched data land in the right hours and never
cancel out. Past occupancy curves read `occupancy_history` (recomputed at event time); the
"now" panels (count, % of capacity) read the live `occupancy`. Hours, months and years
come from the rollups (`visits_hourly`, `visits_daily` in retention policy `rollups`).
docs/dashboards.md, "Grafana", says which panel reads what.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from footfall_collector.schema import (
    AGENT_STATUS,
    ALERT,
    CROSSING,
    FAULT,
    OCCUPANCY,
    OCCUPANCY_HISTORY,
    PRESENCE,
    REJECTED,
    VISITS_DAILY,
    VISITS_HOURLY,
    ZONE_FLOW,
    rollup_from,
)
from footfall_contract.site import site_files
from footfall_web.config import CrowdingSettings

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUT = HERE / "dashboards"
SITES = REPO / "deploy" / "sites"

DS: dict[str, str] = {"type": "influxdb", "uid": "footfall-influx"}
SITE = '"site" =~ /^$site$/'
ZONE = '"zone" =~ /^$zone$/'
SZ = f"{SITE} AND {ZONE}"
TZ = "tz('$tz')"
LIVE = f'"{OCCUPANCY}"'
HISTORY = f'"{OCCUPANCY_HISTORY}"'
FLOW = f'"{ZONE_FLOW}"'
HOURLY = rollup_from(VISITS_HOURLY)
DAILY = rollup_from(VISITS_DAILY)

Json = dict[str, Any]
Thresholds = list[tuple[float | None, str]]


# --- site files: only their time zones -----------------------------------------------


def site_timezones() -> list[str]:
    """The distinct `timezone:` values of deploy/sites/*.yaml, first-seen order (read
    as text: the generator needs no site validation)."""
    zones: list[str] = []
    for path in site_files(SITES):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("timezone:"):
                tz = line.split(":", 1)[1].split("#", 1)[0].strip().strip("\"'")
                if tz and tz not in zones:
                    zones.append(tz)
    return zones or ["UTC"]


# --- queries -------------------------------------------------------------------------


def entries(time_cond: str = "$timeFilter", group: str = "") -> str:
    """Visits: the zone_flow points of people entering, at their event time."""
    q = (
        f'SELECT sum("count") AS "entries" FROM {FLOW} '
        f"WHERE {SZ} AND \"dir\" = 'in' AND {time_cond}"
    )
    return q + (f" GROUP BY {group}" if group else "")


def heatmap_row(hour: int) -> str:
    """Entries in local hour `hour` of each day, at the day's local midnight: the first
    hourly rollup of the day-long buckets that start at that hour, put back into calendar
    days, so that the 24 rows of the heatmap share their timestamps (one column a day).
    The hours are filled with 0 first, so a missing hour cannot pass a later one's value."""
    hourly = (
        f'(SELECT sum("entries") AS "entries" FROM {HOURLY} WHERE {SZ} AND $timeFilter '
        f"GROUP BY time(1h) fill(0) {TZ})"
    )
    at_hour = (
        f'SELECT first("entries") AS "entries" FROM {hourly} '
        f"WHERE $timeFilter GROUP BY time(1d, {hour}h) {TZ}"
    )
    return (
        f'SELECT sum("entries") AS "entries" FROM ({at_hour}) '
        f"WHERE $timeFilter GROUP BY time(1d) fill(none) {TZ}"
    )


def shifted(weeks: int) -> str:
    """The dashboard's range moved back whole weeks (same weekday, same clock time)."""
    if weeks == 0:
        return "$timeFilter"
    return f"time >= ${{__from}}ms - {7 * weeks}d AND time <= ${{__to}}ms - {7 * weeks}d"


def target(ref: str, query: str, alias: str = "", fmt: str = "time_series") -> Json:
    t: Json = {
        "refId": ref,
        "datasource": DS,
        "rawQuery": True,
        "resultFormat": fmt,
        "query": query,
    }
    if alias:
        t["alias"] = alias
    return t


def refs() -> Iterator[str]:
    for i in range(26 * 27):
        yield (chr(65 + i // 26 - 1) if i >= 26 else "") + chr(65 + i % 26)


# --- panels --------------------------------------------------------------------------


class Layout:
    """Panels on Grafana's 24-column grid, left to right, top to bottom; stable ids. After
    a collapsed row, panels go into it (Grafana runs their queries only when it is opened),
    so a collapsed row comes after every open panel."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self.x = self.y = self.row_h = 0
        self.ids = 0
        self._into: list[Json] | None = None

    def add(self, panel: Json, w: int, h: int) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.ids += 1
        panel["id"] = self.ids
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        (self.panels if self._into is None else self._into).append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def row(self, title: str, collapsed: bool = False) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self._into = None
        row: Json = {"type": "row", "title": title, "collapsed": collapsed, "panels": []}
        self.add(row, 24, 1)
        self.x, self.y, self.row_h = 0, self.y + 1, 0
        if collapsed:
            self._into = row["panels"]


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[Json],
    *,
    unit: str = "none",
    decimals: int | None = None,
    minimum: float | None = 0,
    maximum: float | None = None,
    thresholds: Sequence[tuple[float | None, str]] | None = None,
    mappings: list[Json] | None = None,
    options: Json | None = None,
    custom: Json | None = None,
    time_from: str | None = None,
    time_shift: str | None = None,
    repeat: str | None = None,
    no_value: str | None = None,
    transformations: list[Json] | None = None,
    overrides: list[Json] | None = None,
) -> Json:
    steps = [
        {"color": color, "value": value}
        for value, color in (thresholds or [(None, "green"), (80, "red")])
    ]
    defaults: Json = {
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "mappings": mappings or [],
        "color": {
            "mode": "thresholds" if kind in ("stat", "gauge", "bargauge") else "palette-classic"
        },
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if no_value is not None:
        defaults["noValue"] = no_value
    if custom:
        defaults["custom"] = custom
    p: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }
    if time_from:
        p["timeFrom"] = time_from
    if time_shift:
        p["timeShift"] = time_shift
    if repeat:
        p["repeat"] = repeat
        p["repeatDirection"] = "h"
        p["maxPerRow"] = 4
    if transformations:
        p["transformations"] = transformations
    return p


STAT = {
    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
    "colorMode": "value",
    "graphMode": "none",
    "textMode": "auto",
    "justifyMode": "auto",
    "orientation": "auto",
}
BARS = {
    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
    "orientation": "horizontal",
    "displayMode": "gradient",
    "showUnfilled": True,
}
TIMESERIES = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
LINES = {"drawStyle": "line", "lineWidth": 2, "fillOpacity": 10, "showPoints": "never"}
CAPACITY: Thresholds = [(None, "green"), (50, "yellow"), (80, "orange"), (100, "red")]
# The built-in public display's default levels (footfall_web.config), in percent: the
# library dashboard and the kiosk say the same thing.
_LEVELS = CrowdingSettings()
MODERATE, BUSY, VERY_BUSY = (
    round(x * 100) for x in (_LEVELS.moderate, _LEVELS.busy, _LEVELS.very_busy)
)
CROWDING = [
    {"type": "range", "options": {"from": lo, "to": hi, "result": {"text": text, "color": color}}}
    for lo, hi, text, color in (
        (0, MODERATE, "Quiet", "green"),
        (MODERATE, BUSY, "Moderate", "yellow"),
        (BUSY, VERY_BUSY, "Busy", "orange"),
        (VERY_BUSY, 100000, "Very busy", "red"),
    )
]
CROWDING_COLOURS = [(None, "green"), (MODERATE, "yellow"), (BUSY, "orange"), (VERY_BUSY, "red")]


PATTERNS = "Patterns: last 4 weeks, this month (open the row to run its queries)"


def occupancy_now(w: str = SZ) -> str:
    return f'SELECT last("count") AS "count" FROM {LIVE} WHERE {w} AND $timeFilter GROUP BY "zone"'


def ratio_now() -> str:
    return (
        f'SELECT last("ratio") * 100 AS "percent" FROM {LIVE} WHERE {SZ} AND $timeFilter '
        'GROUP BY "zone"'
    )


def occupancy_over_time(field: str = '"peak"', scale: str = "", source: str = HISTORY) -> str:
    """Peak per interval: of the history's minute peaks (at event time, who was in at the
    minute's start included) for people, of the live series for the ratio (the history
    has no capacity)."""
    return (
        f'SELECT max({field}){scale} AS "peak" FROM {source} WHERE {SZ} AND $timeFilter '
        'GROUP BY time($__interval), "zone" fill(none)'
    )


def same_weekday_bars(repeat: str | None) -> Json:
    labels = ["today", "1 week ago", "2 weeks ago", "3 weeks ago", "4 weeks ago"]
    targets = [
        target(ref, entries(shifted(k)), labels[k])
        for k, ref in zip(range(5), refs(), strict=False)
    ]
    return panel(
        "bargauge",
        "Visitors so far: today against the same weekday",
        "Entries into $zone (zone_flow, at event time) from the start of the dashboard's "
        "range to its end (default: today so far), and in the same hours of the same weekday "
        "1-4 weeks before: the typical day is the middle of the four.",
        targets,
        options=BARS,
        thresholds=[(None, "blue")],
        repeat=repeat,
        no_value="0",
    )


def last_week_panel(repeat: str | None) -> Json:
    return panel(
        "timeseries",
        "Occupancy on the same weekday last week",
        "The same hours a week ago (panel time shift 7d), from the occupancy history "
        "recomputed at event time: set beside today's curve.",
        [target("A", occupancy_over_time(), "$tag_zone")],
        time_shift="7d",
        options=TIMESERIES,
        custom=LINES,
        repeat=repeat,
    )


def heatmap(repeat: str | None) -> Json:
    targets = [
        target(ref, heatmap_row(h), f"{h:02d}") for h, ref in zip(range(24), refs(), strict=False)
    ]
    return panel(
        "heatmap",
        "Hourly footfall by weekday (last 4 weeks)",
        "Entries into $zone in each local hour (rows 00-23) of each day (columns, "
        "today and the 27 days before), from the hourly rollups: the weekday pattern shows "
        "as repeating columns.",
        targets,
        # from a local midnight: the first day's buckets must start at their hour
        time_from="now-27d/d",
        repeat=repeat,
        options={
            "calculate": False,
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64, "exponent": 0.5},
            "rowsFrame": {"layout": "auto"},
            "yAxis": {"axisPlacement": "left", "reverse": True},
            "tooltip": {"mode": "single", "yHistogram": False},
            "legend": {"show": True},
            "cellValues": {"unit": "none"},
        },
    )


def busiest_hours(repeat: str | None) -> Json:
    q = (
        'SELECT top("entries", 10) AS "entries", "peak", "estimated" '
        f"FROM {HOURLY} WHERE {SZ} AND $timeFilter"
    )
    return panel(
        "table",
        "Busiest hours this month",
        "The ten hours of this month with the most entries into $zone (hourly rollups; time "
        "= the hour's local start), with the hour's peak occupancy; estimated = an agent of "
        "one of its doors was offline or faulty in that hour.",
        [target("A", q, "entries", "table")],
        time_from="now/M",
        repeat=repeat,
        options={"showHeader": True, "sortBy": [{"displayName": "entries", "desc": True}]},
    )


def alert_annotation(zone_filter: bool) -> Json:
    where = SITE + (f" AND ({ZONE} OR \"zone\" = '')" if zone_filter else "")
    where += " AND (\"state\" = 'firing' OR \"state\" = 'resolved')"
    q = (
        f'SELECT "summary", "state", "rule", "severity", "kind" FROM "{ALERT}" '
        f"WHERE {where} AND $timeFilter"
    )
    return {
        "name": "Alerts",
        "datasource": DS,
        "enable": True,
        "iconColor": "red",
        "query": q,
        "textColumn": "summary",
        "tagsColumn": "state,rule,severity,kind",
        "target": {
            "refId": "Alerts",
            "query": q,
            "rawQuery": True,
            "textColumn": "summary",
            "tagsColumn": "state,rule,severity,kind",
        },
    }


# --- variables -----------------------------------------------------------------------


def query_var(name: str, label: str, query: str, *, multi: bool, current: str | None) -> Json:
    cur: Json = {}
    if current:
        cur = {"selected": True, "text": current, "value": current}
    elif multi:
        cur = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": query,
        "definition": query,
        "refresh": 1,
        "sort": 1,
        "regex": "",
        "multi": multi,
        "includeAll": multi,
        "current": cur,
        "options": [],
        "hide": 0,
    }


def site_var(source: str = LIVE) -> Json:
    return query_var(
        "site",
        "Site",
        f'SHOW TAG VALUES FROM {source} WITH KEY = "site"',
        multi=False,
        current=None,
    )


def zone_var(*, multi: bool, current: str | None = None, source: str = LIVE) -> Json:
    return query_var(
        "zone",
        "Agency / zone",
        f'SHOW TAG VALUES FROM {source} WITH KEY = "zone" WHERE {SITE}',
        multi=multi,
        current=current,
    )


def tz_var() -> Json:
    zones = site_timezones()
    return {
        "name": "tz",
        "label": "Site time zone",
        "type": "custom",
        "query": ",".join(zones),
        "multi": False,
        "includeAll": False,
        "current": {"selected": True, "text": zones[0], "value": zones[0]},
        "options": [{"selected": i == 0, "text": z, "value": z} for i, z in enumerate(zones)],
        "hide": 0 if len(zones) > 1 else 2,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Json],
    variables: list[Json],
    annotation: Json | None,
    time_from: str = "now/d",
    time_to: str = "now",
    refresh: str = "1m",
) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["footfall"],
        "timezone": site_timezones()[0],
        "editable": True,
        "graphTooltip": 1,
        "refresh": refresh,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": time_from, "to": time_to},
        "timepicker": {},
        "templating": {"list": variables},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                *([annotation] if annotation else []),
            ]
        },
        "links": [
            {
                "title": "Footfall",
                "type": "dashboards",
                "tags": ["footfall"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": panels,
    }


# --- the dashboards ------------------------------------------------------------------


def overview() -> Json:
    lay = Layout()
    lay.row("Now")
    lay.add(
        panel(
            "bargauge",
            "Occupancy now",
            "People in each selected agency (zone) now: the last count the collector wrote.",
            [target("A", occupancy_now(), "$tag_zone")],
            options=BARS,
            thresholds=[(None, "blue")],
        ),
        8,
        9,
    )
    lay.add(
        panel(
            "bargauge",
            "% of capacity now",
            "Occupancy now against each zone's capacity from the site file (zones without "
            "a capacity are not shown).",
            [target("A", ratio_now(), "$tag_zone")],
            unit="percent",
            maximum=100,
            thresholds=CAPACITY,
            options=BARS,
        ),
        8,
        9,
    )
    lay.add(
        panel(
            "bargauge",
            "Visitors today",
            "Entries into each zone since local midnight (site time): people coming in "
            "through the doors into the zone from outside it, counted at the time they "
            "walked in (zone_flow), however late their data arrived.",
            [target("A", entries(group='"zone"'), "$tag_zone")],
            options=BARS,
            thresholds=[(None, "purple")],
            time_from="now/d",
            no_value="0",
        ),
        8,
        9,
    )
    lay.row("Over the day")
    lay.add(
        panel(
            "timeseries",
            "Occupancy",
            "Peak occupancy per interval in each selected zone, from the occupancy history "
            "(recomputed at event time: a late backlog lands where people really were).",
            [target("A", occupancy_over_time(), "$tag_zone")],
            options=TIMESERIES,
            custom=LINES,
        ),
        12,
        9,
    )
    lay.add(
        panel(
            "timeseries",
            "% of capacity",
            "Peak occupancy per interval against the zone's capacity (the live series, "
            "which carries the capacity).",
            [target("A", occupancy_over_time('"ratio"', " * 100", LIVE), "$tag_zone")],
            unit="percent",
            thresholds=CAPACITY,
            options=TIMESERIES,
            custom={**LINES, "thresholdsStyle": {"mode": "line"}},
        ),
        12,
        9,
    )
    lay.add(
        panel(
            "timeseries",
            "Visitors per hour",
            "Entries into each zone per local hour, at event time (zone_flow).",
            [target("A", entries(group=f'time(1h), "zone" fill(0) {TZ}'), "$tag_zone")],
            options=TIMESERIES,
            custom={"drawStyle": "bars", "fillOpacity": 60, "lineWidth": 1},
        ),
        12,
        9,
    )
    lay.add(last_week_panel(None), 12, 9)
    lay.row("Against a typical day ($zone)")
    lay.add(same_weekday_bars("zone"), 6, 8)
    lay.row(PATTERNS + " ($zone)", collapsed=True)
    lay.add(heatmap("zone"), 16, 10)
    lay.add(busiest_hours("zone"), 8, 10)
    return dashboard(
        "footfall-overview",
        "Service centre overview",
        "Occupancy, % of capacity and visitors per agency: now, over the day, against the "
        "same weekday and over the month. Alerts from footfall-alerts are annotations.",
        lay.panels,
        [site_var(), zone_var(multi=True), tz_var()],
        alert_annotation(True),
    )


def library() -> Json:
    lay = Layout()
    lay.add(
        panel(
            "stat",
            "Crowding",
            f"Quiet below {MODERATE}% of capacity, moderate from {MODERATE}%, busy from {BUSY}%, "
            f"very busy from {VERY_BUSY}% (the public display's levels).",
            [target("A", ratio_now(), "$zone")],
            unit="percent",
            mappings=CROWDING,
            thresholds=CROWDING_COLOURS,
            options={**STAT, "colorMode": "background"},
        ),
        6,
        6,
    )
    lay.add(
        panel(
            "gauge",
            "% of capacity now",
            "Occupancy now against the capacity in the site file.",
            [target("A", ratio_now(), "$zone")],
            unit="percent",
            maximum=100,
            thresholds=CROWDING_COLOURS,
            options={"reduceOptions": STAT["reduceOptions"], "showThresholdMarkers": True},
        ),
        6,
        6,
    )
    lay.add(
        panel(
            "stat",
            "People in now",
            "The last count the collector wrote.",
            [target("A", occupancy_now(), "$zone")],
            options=STAT,
            thresholds=[(None, "blue")],
        ),
        6,
        6,
    )
    lay.add(
        panel(
            "stat",
            "Visitors today",
            "Entries since local midnight (site time), at event time (zone_flow).",
            [target("A", entries(), "entries")],
            options=STAT,
            thresholds=[(None, "purple")],
            time_from="now/d",
            no_value="0",
        ),
        6,
        6,
    )
    cap = (
        f'SELECT last("capacity") AS "capacity" FROM {LIVE} WHERE {SZ} AND $timeFilter '
        "GROUP BY time($__interval) fill(previous)"
    )
    lay.add(
        panel(
            "timeseries",
            "Occupancy today",
            "Peak occupancy per interval (occupancy history, at event time), and the capacity.",
            [target("A", occupancy_over_time(), "occupancy"), target("B", cap, "capacity")],
            options=TIMESERIES,
            custom=LINES,
        ),
        12,
        9,
    )
    lay.add(last_week_panel(None), 12, 9)
    lay.add(same_weekday_bars(None), 6, 10)
    presence = (
        f'SELECT last("value") AS "occupied" FROM "{PRESENCE}" WHERE {SZ} AND $timeFilter '
        'GROUP BY time($__interval), "sensor" fill(previous)'
    )
    lay.add(
        panel(
            "state-timeline",
            "Study and group rooms",
            "Presence sensors in the zone: occupied (1) or free (0).",
            [target("A", presence, "$tag_sensor")],
            maximum=1,
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "free", "color": "green"},
                        "1": {"text": "occupied", "color": "orange"},
                    },
                }
            ],
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        ),
        18,
        10,
    )
    lay.row(PATTERNS, collapsed=True)
    lay.add(heatmap(None), 16, 10)
    lay.add(busiest_hours(None), 8, 10)
    return dashboard(
        "footfall-library",
        "Library crowding",
        "How full the library is now, over today and usually: % of capacity, visitors, "
        "the same weekday before, hourly patterns and study rooms.",
        lay.panels,
        [site_var(), zone_var(multi=False, current="library"), tz_var()],
        alert_annotation(True),
    )


def sensors() -> Json:
    lay = Layout()
    online_sub = f'(SELECT last("value") FROM "{AGENT_STATUS}" WHERE {SITE} GROUP BY "agent")'
    faults_sub = (
        f'(SELECT last("value") FROM "{FAULT}" WHERE {SITE} GROUP BY "agent", "source", "fault")'
    )
    stats: list[tuple[str, str, Thresholds]] = [
        ("Agents online", f'SELECT sum("last") AS "online" FROM {online_sub}', [(None, "green")]),
        ("Agents known", f'SELECT count("last") AS "agents" FROM {online_sub}', [(None, "blue")]),
        (
            "Faults active",
            f'SELECT sum("last") AS "active" FROM {faults_sub}',
            [(None, "green"), (1, "red")],
        ),
        (
            "Rejected input",
            f'SELECT count("count") AS "rejected" FROM "{REJECTED}" WHERE {SITE} AND $timeFilter',
            [(None, "green"), (1, "orange")],
        ),
    ]
    for title, q, th in stats:
        lay.add(
            panel(
                "stat",
                title,
                {
                    "Agents online": "Agents whose last status is online (status topic, Last "
                    "Will, data resuming; silent after 90 s without health or data).",
                    "Agents known": "Agents that ever reported a status.",
                    "Faults active": "Faults (beam blocked, ...) whose last event is active.",
                    "Rejected input": "Messages or events the collector refused in the range.",
                }[title],
                [target("A", q, title)],
                options=STAT,
                thresholds=th,
                no_value="0",
            ),
            6,
            5,
        )
    status = (
        'SELECT last("value") AS "online", last("reason") AS "reason", last("sw") AS "sw" '
        f'FROM "{AGENT_STATUS}" WHERE {SITE} GROUP BY "agent"'
    )
    health = (
        'SELECT last("uptime_s") AS "uptime_s", last("queue_depth") AS "queue_depth", '
        'last("crossings_in") AS "in", last("crossings_out") AS "out" '
        f'FROM "agent_health" WHERE {SITE} AND $timeFilter GROUP BY "agent"'
    )
    lay.add(
        panel(
            "table",
            "Agent status",
            "Each agent's last status: online (1) or not, why, and its software version.",
            [target("A", status, "", "table")],
            options={"showHeader": True},
        ),
        12,
        8,
    )
    lay.add(
        panel(
            "table",
            "Last health",
            "Each agent's last health message in the range (time), uptime, outbox queue "
            "depth and its counters since start.",
            [target("A", health, "", "table")],
            options={"showHeader": True},
        ),
        12,
        8,
    )
    timeline = (
        f'SELECT last("value") FROM "{AGENT_STATUS}" WHERE {SITE} AND $timeFilter '
        'GROUP BY time($__interval), "agent" fill(previous)'
    )
    lay.add(
        panel(
            "state-timeline",
            "Agent status over time",
            "Status changes per agent.",
            [target("A", timeline, "$tag_agent")],
            maximum=1,
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "offline", "color": "red"},
                        "1": {"text": "online", "color": "green"},
                    },
                }
            ],
            options={"showValue": "never", "mergeValues": True},
        ),
        12,
        8,
    )
    queue = (
        f'SELECT max("queue_depth") FROM "agent_health" WHERE {SITE} AND $timeFilter '
        'GROUP BY time($__interval), "agent" fill(none)'
    )
    lay.add(
        panel(
            "timeseries",
            "Queue depth",
            "Events waiting in each agent's outbox (rises while the broker is unreachable).",
            [target("A", queue, "$tag_agent")],
            options=TIMESERIES,
            custom=LINES,
        ),
        12,
        8,
    )
    faults = (
        f'SELECT last("value") AS "active" FROM "{FAULT}" '
        f'WHERE {SITE} GROUP BY "agent", "source", "fault"'
    )
    lay.add(
        panel(
            "table",
            "Faults",
            "Each fault's last state (1 = active) and when it changed.",
            [target("A", faults, "", "table")],
            options={"showHeader": True},
        ),
        12,
        8,
    )
    rejected = (
        f'SELECT count("count") FROM "{REJECTED}" WHERE {SITE} AND $timeFilter '
        'GROUP BY time($__interval), "reason" fill(none)'
    )
    lay.add(
        panel(
            "timeseries",
            "Rejected input by reason",
            "Refusals by reason (docs/collector.md, Validation).",
            [target("A", rejected, "$tag_reason")],
            options=TIMESERIES,
            custom={"drawStyle": "bars", "fillOpacity": 60, "lineWidth": 1},
        ),
        12,
        8,
    )
    doors = (
        f'SELECT count("count") AS "crossings" FROM "{CROSSING}" WHERE {SITE} AND $timeFilter '
        'GROUP BY "door", "dir"'
    )
    lay.add(
        panel(
            "table",
            "Crossings per door",
            "In and out through each door in the range: a door far from in = out, or silent "
            "while open, needs a look.",
            [target("A", doors, "", "table")],
            options={"showHeader": True},
        ),
        12,
        8,
    )
    drift = (
        f'SELECT last("clamped") AS "clamped" FROM "occupancy_drift" WHERE {SITE} '
        'AND $timeFilter GROUP BY "zone"'
    )
    lay.add(
        panel(
            "table",
            "Count drift",
            "People not subtracted since the last reset because the zone was already at 0: "
            "a growing figure means missed entries or extra exits at some door.",
            [target("A", drift, "", "table")],
            options={"showHeader": True},
        ),
        12,
        8,
    )
    return dashboard(
        "footfall-sensors",
        "Sensors",
        "Agents online, last health, outbox queues, faults, rejected input and door counts.",
        lay.panels,
        [site_var(), tz_var()],
        alert_annotation(False),
        time_from="now-24h",
    )


ESTIMATED_COLUMN = "estimated_hours"
ESTIMATED = [
    {
        "matcher": {"id": "byName", "options": ESTIMATED_COLUMN},
        "properties": [
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            {
                "id": "thresholds",
                "value": {
                    "mode": "absolute",
                    "steps": [
                        {"color": "transparent", "value": None},
                        {"color": "orange", "value": 1},
                    ],
                },
            },
        ],
    }
]
"""Hours with an agent offline or a fault in the figure: coloured, so an estimate shows."""

MONTH_OF_DAY = [
    # InfluxQL has no calendar months: Grafana sums the daily rollups by local month
    # (the dashboard's time zone is the site's), then makes one column per zone.
    {
        "id": "formatTime",
        "options": {"timeField": "Time", "outputFormat": "YYYY-MM", "useTimezone": True},
    },
    {
        "id": "groupBy",
        "options": {
            "fields": {
                "Time": {"operation": "groupby", "aggregations": []},
                "zone": {"operation": "groupby", "aggregations": []},
                "visits": {"operation": "aggregate", "aggregations": ["sum"]},
            }
        },
    },
    {
        "id": "groupingToMatrix",
        "options": {"columnField": "zone", "rowField": "Time", "valueField": "visits (sum)"},
    },
]


def daily_visits() -> str:
    """The daily rollups as they are (one point per zone and local day, at its midnight)."""
    return f'SELECT "entries" AS "visits" FROM {DAILY} WHERE {SZ} AND $timeFilter GROUP BY "zone"'


def visits_per_zone() -> str:
    return (
        f'SELECT sum("entries") AS "visits", sum("{ESTIMATED_COLUMN}") AS "{ESTIMATED_COLUMN}", '
        f'max("peak") AS "peak" FROM {DAILY} WHERE {SZ} AND $timeFilter GROUP BY "zone"'
    )


def visits() -> Json:
    lay = Layout()
    table = {"showHeader": True, "sortBy": [{"displayName": "visits", "desc": True}]}
    lay.row("Month (the dashboard's range: this month unless another is picked)")
    lay.add(
        panel(
            "timeseries",
            "Visits per day",
            "Entries into each selected agency (zone) per local day, from the daily rollups "
            "(counted at the time people walked in). Nested zones each count their own "
            "entries: the centre is not the sum of the agencies.",
            [target("A", daily_visits(), "$tag_zone")],
            options=TIMESERIES,
            custom={"drawStyle": "bars", "fillOpacity": 60, "lineWidth": 1},
        ),
        16,
        10,
    )
    lay.add(
        panel(
            "table",
            "Visits in the range per agency",
            "Entries per zone over the range, its highest occupancy, and the hours whose "
            "counts are estimates (an agent offline or a door faulty): coloured when any.",
            [target("A", visits_per_zone(), "", "table")],
            options=table,
            overrides=ESTIMATED,
        ),
        8,
        10,
    )
    lay.row("Year (this year so far)")
    lay.add(
        panel(
            "barchart",
            "Visits per month",
            "Entries into each selected zone per calendar month of this year: the daily "
            "rollups summed by local month in Grafana (InfluxQL has no calendar months).",
            [target("A", daily_visits(), "", "table")],
            time_from="now/y",
            transformations=MONTH_OF_DAY,
            options={
                "orientation": "vertical",
                "groupWidth": 0.8,
                "barWidth": 0.9,
                "showValue": "never",
                "stacking": "none",
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "none"},
            },
        ),
        16,
        10,
    )
    lay.add(
        panel(
            "table",
            "Visits this year per agency",
            "Entries per zone since 1 January (site time), the year's highest occupancy, and "
            "the estimated hours in the figure: coloured when any.",
            [target("A", visits_per_zone(), "", "table")],
            time_from="now/y",
            options=table,
            overrides=ESTIMATED,
        ),
        8,
        10,
    )
    return dashboard(
        "footfall-visits",
        "Visits per agency",
        "Visits (entries) per agency per day and month, and the year's totals, from the "
        "hourly and daily rollups kept for years; estimated hours flagged.",
        lay.panels,
        [site_var(DAILY), zone_var(multi=True, source=DAILY)],
        None,
        time_from="now/M",
        refresh="15m",
    )


DASHBOARDS = {
    "service-centre-overview.json": overview,
    "library-crowding.json": library,
    "sensors.json": sensors,
    "visits-per-agency.json": visits,
}


def render() -> dict[str, str]:
    """File name -> JSON text, exactly as committed."""
    return {
        name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = args.out / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"stale: {', '.join(stale)}: run python dashboards/grafana/build.py", file=sys.stderr)
        return 1
    print(f"{'stale' if args.check else 'written'}: {len(stale)} of {len(DASHBOARDS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
