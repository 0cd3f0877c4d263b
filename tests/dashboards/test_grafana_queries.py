"""Grafana provisioning: the committed dashboard JSON is the generator's output, the
provisioning YAML matches the compose file and the JSON files, and every InfluxQL query of
every panel, variable and annotation — with Grafana's macros and variables substituted as
Grafana would — runs against a real InfluxDB holding simulated Iso Omena history and
returns what its panel needs."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards.conftest import History
from tests.support.collector import InfluxQuery
from tests.support.grafana import (
    GRAFANA,
    all_panels,
    annotation_queries,
    dashboards,
    load_build,
    ms,
    panel_queries,
    regex_value,
)

pytestmark = pytest.mark.services

REPO = Path(__file__).parents[2]
COMPOSE = REPO / "deploy" / "server" / "docker-compose.yml"


# --- files ---------------------------------------------------------------------------


def test_committed_json_is_the_generators_output(tmp_path: Path) -> None:
    build = load_build()
    rendered: dict[str, str] = build.render()
    committed = {p.name: p.read_text(encoding="utf-8") for p in (GRAFANA / "dashboards").glob("*")}
    assert committed == rendered, "run: python dashboards/grafana/build.py"
    assert build.main(["--check"]) == 0
    assert build.main(["--out", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == set(rendered)


def test_provisioning_matches_compose_and_files() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    grafana = compose["services"]["grafana"]
    env: dict[str, str] = grafana["environment"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"] if v.startswith(".")}
    assert (COMPOSE.parent / mounts["/etc/grafana/provisioning"]).resolve() == (
        GRAFANA / "provisioning"
    )
    dash_dir = env["FOOTFALL_DASHBOARDS_DIR"]
    assert (COMPOSE.parent / mounts[dash_dir]).resolve() == GRAFANA / "dashboards"

    files = sorted((GRAFANA / "provisioning").rglob("*.yaml"))
    assert {p.parent.name for p in files} == {"datasources", "dashboards"}
    for path in files:
        text = "\n".join(line.split("#")[0] for line in path.read_text().splitlines())
        for var in re.findall(r"\$\{?([A-Z_]+)", text):
            assert var in env, f"{path.name}: ${var} is not in the grafana container's env"

    (ds_file,) = (GRAFANA / "provisioning" / "datasources").glob("*.yaml")
    (source,) = yaml.safe_load(ds_file.read_text())["datasources"]
    assert source["type"] == "influxdb" and source["uid"] == "footfall-influx"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["jsonData"]["dbName"] == "$FOOTFALL_INFLUX_DATABASE"
    assert source["secureJsonData"]["password"] == "$FOOTFALL_INFLUX_PASSWORD"

    (prov_file,) = (GRAFANA / "provisioning" / "dashboards").glob("*.yaml")
    (provider,) = yaml.safe_load(prov_file.read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "$FOOTFALL_DASHBOARDS_DIR"

    boards = dashboards()
    assert {b["title"] for b in boards.values()} == {
        "Service centre overview",
        "Library crowding",
        "Sensors",
        "Visits per agency",
    }
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    for board in boards.values():
        names = {v["name"] for v in board["templating"]["list"]}
        assert "site" in names
        if board["title"] != "Sensors":
            assert "zone" in names
        titles = [p["title"] for p in all_panels(board)]
        assert len(titles) == len(set(titles)), board["title"]
        ids = [p["id"] for p in all_panels(board)]
        assert len(ids) == len(set(ids)), board["title"]
        for row in board["panels"]:  # the heavy 4-week queries only when asked for
            kinds = {p["type"] for p in row.get("panels", [])}
            assert row["type"] == "row" or "heatmap" not in kinds
        assert all(p["type"] != "heatmap" for p in board["panels"])
        for panel in all_panels(board):
            ids = [t["refId"] for t in panel.get("targets", [])]
            assert len(ids) == len(set(ids)), panel["title"]
            for t in panel.get("targets", []):
                assert t["datasource"]["uid"] == source["uid"]


# --- queries -------------------------------------------------------------------------


def run(q: InfluxQuery, query: str) -> list[dict[str, Any]]:
    return q.rows(query)


def number_columns(rows: list[dict[str, Any]]) -> Iterator[tuple[str, float]]:
    for row in rows:
        for k, v in row.items():
            if k != "time" and isinstance(v, int | float) and not isinstance(v, bool):
                yield k, float(v)


@pytest.fixture(scope="module")
def query(history: History) -> InfluxQuery:
    return InfluxQuery(history.server.url)


@pytest.fixture(scope="module")
def zones(history: History, query: InfluxQuery) -> list[str]:
    board = dashboards()["service-centre-overview.json"]
    (zone_var,) = [v for v in board["templating"]["list"] if v["name"] == "zone"]
    (site_var,) = [v for v in board["templating"]["list"] if v["name"] == "site"]
    sites = [r["value"] for r in run(query, site_var["query"])]
    assert sites == [history.site.site]
    q = zone_var["query"].replace("$site", regex_value(sites))
    found = sorted(r["value"] for r in run(query, q))
    assert found == sorted(z.id for z in history.site.zones)
    return found


def results(
    history: History, query: InfluxQuery, zones: list[str], name: str
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(panel title, refId) -> rows, for every query of a dashboard; a repeated panel and
    a single-zone dashboard run for the library, the others for every zone."""
    board = dashboards()[name]
    h = history
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for panel, ref, q in panel_queries(board, h.now, h.site.tz, h.site.site, zones, "library"):
        out[(panel["title"], ref)] = run(query, q)
    for ann, q in annotation_queries(board, h.now, h.site.site, "library"):
        out[("annotation " + ann, "")] = run(query, q)
    return out


def entries_truth(history: History, query: InfluxQuery, zone: str, start: int, end: int) -> int:
    """Entries by docs/spec.md §3 from the crossings: `in` through doors into the zone from
    outside it, `out` through doors out of a zone inside it to outside it."""
    site = history.site
    total = 0
    rows = query.rows(
        f'SELECT count("count") FROM "crossing" WHERE "site" = \'{site.site}\' '
        f'AND time >= {start}ms AND time <= {end}ms GROUP BY "door", "dir"'
    )
    for r in rows:
        door = site.door(r["door"])
        inside, outside = site.contains(zone, door.inside), site.contains(zone, door.outside)
        if (r["dir"] == "in" and inside and not outside) or (
            r["dir"] == "out" and outside and not inside
        ):
            total += r["count"]
    return total


def hourly_truth(
    history: History, query: InfluxQuery, zone: str, start: int, end: int
) -> dict[int, int]:
    """Entries by hour (ns of the hour's start; the site's offsets are whole hours, so UTC
    hours are its local hours), by the same door rule as `entries_truth`."""
    site = history.site
    out: dict[int, int] = {}
    rows = query.rows(
        f'SELECT count("count") FROM "crossing" WHERE "site" = \'{site.site}\' '
        f'AND time >= {start}ms AND time <= {end}ms GROUP BY time(1h), "door", "dir" fill(none)'
    )
    for r in rows:
        door = site.door(r["door"])
        inside, outside = site.contains(zone, door.inside), site.contains(zone, door.outside)
        if (r["dir"] == "in" and inside and not outside) or (
            r["dir"] == "out" and outside and not inside
        ):
            out[r["time"]] = out.get(r["time"], 0) + r["count"]
    return out


def check_generic(out: dict[tuple[str, str], list[dict[str, Any]]], may_be_empty: set[str]) -> None:
    for (title, ref), rows in out.items():
        if title not in may_be_empty:
            assert rows, f"{title} {ref}: no data"
        for col, v in number_columns(rows):
            assert v >= 0, (title, ref, col, v)
            if col == "percent" or "capacity" in title:
                assert v <= 150, (title, ref, col, v)


def test_overview_queries(history: History, query: InfluxQuery, zones: list[str]) -> None:
    out = results(history, query, zones, "service-centre-overview.json")
    bars = "Visitors so far: today against the same weekday"
    check_generic(out, {bars})  # 2-4 weeks back are before the ten simulated days
    assert out[(bars, "C")] == [] and out[(bars, "E")] == []
    assert out[(bars, "A")][0]["entries"] > 200 and out[(bars, "B")][0]["entries"] > 200

    now = {r["zone"]: r["count"] for r in out[("Occupancy now", "A")]}
    assert set(now) == set(zones) and now["library"] > 20 and now["centre"] >= now["library"]
    pct = {r["zone"]: r["percent"] for r in out[("% of capacity now", "A")]}
    assert set(pct) == set(zones)  # every Iso Omena zone has a capacity
    assert 0 < pct["library"] <= 100

    start, end = ms(history.local(0)), ms(history.now)
    visitors = {r["zone"]: r["entries"] for r in out[("Visitors today", "A")]}
    for zone in ("centre", "library", "kela", "kohtaamo"):
        assert visitors[zone] == entries_truth(history, query, zone, start, end), zone
    assert visitors["centre"] > 1000

    hourly = out[("Visitors per hour", "A")]
    per_zone: dict[str, float] = {}
    for r in hourly:
        per_zone[r["zone"]] = per_zone.get(r["zone"], 0) + r["entries"]
    assert per_zone == pytest.approx(visitors)
    hours = {dt.datetime.fromtimestamp(r["time"] / 1e9, history.site.tz).minute for r in hourly}
    assert hours == {0}  # local whole hours

    series = {r["zone"] for r in out[("Occupancy", "A")]}
    assert series == set(zones)
    assert {r["zone"] for r in out[("Occupancy on the same weekday last week", "A")]} == set(zones)


def test_library_queries(history: History, query: InfluxQuery, zones: list[str]) -> None:
    out = results(history, query, zones, "library-crowding.json")
    check_generic(out, {"Visitors so far: today against the same weekday"})
    (crowding,) = out[("Crowding", "A")]
    assert 0 < crowding["percent"] <= 100
    (visitors,) = out[("Visitors today", "A")]
    start, end = ms(history.local(0)), ms(history.now)
    assert visitors["entries"] == entries_truth(history, query, "library", start, end)

    # heatmap: 24 rows (hours), one value a day; a day's rows add up to its entries
    heat = {ref: rows for (title, ref), rows in out.items() if title.startswith("Hourly")}
    assert len(heat) == 24
    day_start = ms(history.local(0, day=history.day - dt.timedelta(days=1)))
    day_end = ms(history.local(0)) - 1
    by_hour = []
    for rows in heat.values():
        for r in rows:  # one column a day: every row at the local midnights
            local = dt.datetime.fromtimestamp(r["time"] / 1e9, history.site.tz)
            assert local.time() == dt.time(0), local
        day_rows = [
            r
            for r in rows
            if dt.datetime.fromtimestamp(r["time"] / 1e9, history.site.tz).date()
            == history.day - dt.timedelta(days=1)
        ]
        assert len(day_rows) == 1
        by_hour.append(day_rows[0]["entries"] or 0)
    assert sum(by_hour) == entries_truth(history, query, "library", day_start, day_end)
    assert max(by_hour[:8]) == 0 and max(by_hour[12:18]) > 30  # closed at night

    # the ten hours with the most entries this month (from the hourly rollups), as the
    # crossings say; compared as values, so a tie at the tenth place cannot matter
    busiest = out[("Busiest hours this month", "A")]
    month = history.local(0).replace(day=1)
    hour_end = ms(history.now.replace(minute=0)) + 3_600_000 - 1  # a rollup is its whole hour
    truth = hourly_truth(history, query, "library", ms(month), hour_end)
    assert sorted(r["entries"] for r in busiest) == sorted(truth.values())[-10:]
    assert all(r["entries"] == truth[r["time"]] for r in busiest)
    assert all(0 < r["peak"] <= 350 * 1.5 and r["estimated"] in (True, False) for r in busiest)

    rooms = {r["sensor"] for r in out[("Study and group rooms", "A")]}
    assert rooms == {"study-room-1", "study-room-2"}
    capacity = [r["capacity"] for r in out[("Occupancy today", "B")] if r["capacity"]]
    assert set(capacity) == {350}
    annotations = out[("annotation Alerts", "")]
    assert {r["state"] for r in annotations} == {"firing", "resolved"}
    assert all(r["summary"] for r in annotations)
    assert {r["rule"] for r in annotations} == {"zone_over_capacity", "agent_offline"}


def test_visits_queries(history: History, query: InfluxQuery, zones: list[str]) -> None:
    """The daily rollups of the simulated days, per day and per zone, equal the crossings'
    entries; a day's point (at its local midnight) carries the whole day."""
    board = dashboards()["visits-per-agency.json"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert [r["value"] for r in run(query, variables["site"]["query"])] == [history.site.site]
    zone_q = variables["zone"]["query"].replace("$site", history.site.site)
    assert sorted(r["value"] for r in run(query, zone_q)) == zones

    out = results(history, query, zones, "visits-per-agency.json")
    check_generic(out, set())
    tz = history.site.tz
    month, year = history.local(0).replace(day=1), history.local(0).replace(month=1, day=1)
    day_end = ms(history.local(0) + dt.timedelta(days=1)) - 1
    per_day: dict[tuple[str, dt.date], float] = {}
    for r in out[("Visits per day", "A")]:
        local = dt.datetime.fromtimestamp(r["time"] / 1e9, tz)
        assert local.time() == dt.time(0)
        per_day[(r["zone"], local.date())] = r["visits"]
    for zone in ("centre", "library", "kela"):
        truth: dict[tuple[str, dt.date], int] = {}
        for t, n in hourly_truth(history, query, zone, ms(month), day_end).items():
            key = (zone, dt.datetime.fromtimestamp(t / 1e9, tz).date())
            truth[key] = truth.get(key, 0) + n
        assert {k: v for k, v in per_day.items() if k[0] == zone and v} == truth, zone
    for title, start in (
        ("Visits in the range per agency", month),
        ("Visits this year per agency", year),
    ):
        table = {r["zone"]: r for r in out[(title, "A")]}
        assert set(table) == set(zones)
        for zone in zones:
            assert table[zone]["visits"] == entries_truth(history, query, zone, ms(start), day_end)
        # the test day's fault at kela-door 09:00-09:03, and huslab-door's from 16:00 on
        assert table["kela"]["estimated_hours"] >= 1 and table["huslab"]["estimated_hours"] >= 8
        assert table["library"]["peak"] > 20


def test_sensor_queries(history: History, query: InfluxQuery, zones: list[str]) -> None:
    out = results(history, query, zones, "sensors.json")
    check_generic(out, {"Count drift"})  # drift points only when it changes
    agents = len(history.site.doors)
    assert out[("Agents online", "A")][0]["online"] == agents - 1
    assert out[("Agents known", "A")][0]["agents"] == agents
    active = out[("Faults active", "A")][0]["active"]
    assert active >= 1  # huslab-door's beam, still blocked
    assert active == sum(r["active"] for r in out[("Faults", "A")])
    assert out[("Rejected input", "A")][0]["rejected"] == 3
    status = {r["agent"]: r for r in out[("Agent status", "A")]}
    assert len(status) == agents and sum(r["online"] for r in status.values()) == agents - 1
    health = out[("Last health", "A")]
    assert len(health) == agents and all(r["queue_depth"] == 0 for r in health)
    assert max(r["max"] for r in out[("Queue depth", "A")]) == 40
    assert {r["reason"] for r in out[("Rejected input by reason", "A")]} == {
        "schema",
        "unknown_door",
    }
    doors = {(r["door"], r["dir"]) for r in out[("Crossings per door", "A")]}
    assert doors == {(d.id, k) for d in history.site.doors for k in ("in", "out")}
    assert {r["zone"] for r in out[("Count drift", "A")]} <= set(zones)
    assert {r["state"] for r in out[("annotation Alerts", "")]} == {"firing", "resolved"}
