"""Grafana's side of the provisioned dashboards, for tests and benchmarks: the generator,
the committed JSON, and each query as Grafana would send it to InfluxDB for a panel —
time range (relative time, time shift), macros and template variables substituted."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).parents[2]
GRAFANA = REPO / "dashboards" / "grafana"
INTERVAL = "5m"
"""$__interval: what Grafana picks for a day on a panel about 1,000 pixels wide, roughly."""

Json = dict[str, Any]


def load_build() -> ModuleType:
    """dashboards/grafana/build.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("footfall_grafana_build", GRAFANA / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboards() -> dict[str, Json]:
    """The committed dashboards by file name."""
    return {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def all_panels(board: Json) -> list[Json]:
    """Every panel, those inside collapsed rows too."""
    out: list[Json] = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def panel_range(now: dt.datetime, tz: ZoneInfo, board: Json, panel: Json) -> tuple[int, int]:
    """Grafana's time range (ms) for a panel at `now`: the dashboard's or the panel's
    relative time, moved back by the panel's time shift; days in the dashboard's zone."""
    now = now.astimezone(tz)
    spec = panel.get("timeFrom") or board["time"]["from"]
    start_of_day = dt.datetime.combine(now.date(), dt.time(0), tzinfo=tz)
    starts = {
        "now/d": start_of_day,
        "now/M": start_of_day.replace(day=1),
        "now/y": start_of_day.replace(month=1, day=1),
        "now-24h": now - dt.timedelta(hours=24),
        "now-27d/d": start_of_day - dt.timedelta(days=27),  # wall-clock: stays at midnight
    }
    start = starts[spec]
    shift = panel.get("timeShift")
    if shift:
        delta = dt.timedelta(days=int(shift.rstrip("d")))
        start, now = start - delta, now - delta
    return ms(start), ms(now)


def regex_value(values: Sequence[str]) -> str:
    """How Grafana writes a variable into `/^$var$/`: one value, or (a|b|...) escaped."""
    if len(values) == 1:
        return re.escape(values[0])
    return "(" + "|".join(re.escape(v) for v in values) + ")"


def substitute(query: str, rng: tuple[int, int], values: dict[str, str]) -> str:
    start, end = rng
    q = query.replace("$timeFilter", f"time >= {start}ms and time <= {end}ms")
    q = q.replace("${__from}", str(start)).replace("${__to}", str(end))
    q = q.replace("$__interval", INTERVAL)
    for name, value in values.items():
        q = q.replace(f"${name}", value)
    assert not re.search(r"\$[\w{]", q), q  # no variable left (a regex's $ stays)
    return q


def panel_queries(
    board: Json, now: dt.datetime, tz: ZoneInfo, site: str, zones: Sequence[str], zone: str
) -> Iterator[tuple[Json, str, str]]:
    """(panel, refId, InfluxQL) for every target: a panel repeated per zone and a
    single-zone dashboard get `zone`, the others every zone in `zones`."""
    variables = {v["name"]: v for v in board["templating"]["list"]}
    multi = bool(variables.get("zone", {}).get("multi"))
    for panel in all_panels(board):
        single = panel.get("repeat") == "zone" or not multi
        values = {
            "site": regex_value([site]),
            "zone": regex_value([zone] if single else zones),
            "tz": str(tz),
        }
        for t in panel.get("targets", []):
            yield (
                panel,
                t["refId"],
                substitute(t["query"], panel_range(now, tz, board, panel), values),
            )


def annotation_queries(
    board: Json, now: dt.datetime, site: str, zone: str
) -> Iterator[tuple[str, str]]:
    """(name, InfluxQL) of the InfluxDB annotations, over the day before `now`."""
    rng = ms(now - dt.timedelta(days=1)), ms(now)
    for ann in board["annotations"]["list"]:
        if ann.get("datasource", {}).get("type") == "influxdb":
            values = {"site": regex_value([site]), "zone": regex_value([zone])}
            yield ann["name"], substitute(ann["target"]["query"], rng, values)
