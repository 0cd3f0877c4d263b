"""footfall-report end to end against a real InfluxDB: known crossings of October and
November 2026 at Iso Omena, the rollups they make (counted by hand through the door
algebra in tests/report/data.py), and the CLI's figures as JSON, table and CSV, the
statistics, a DST day and the doors checked against that truth (the workbook and the page:
test_report_documents.py; errors: test_report_errors.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from tests.report.cli_world import (
    NOV_5,
    NOV_17,
    OCT_25,
    WEEKDAYS,
    World,
    change,
    exits,
    local_ms,
    open_days,
    profile_mean,
    run,
    visits,
    zone_ids,
)
from tests.report.data import admin

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("report_env")]


def test_json_has_the_true_figures(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "--period", "2026-11", "--format", "json")
    assert rc == 0
    report = json.loads(out)
    assert report["period"]["key"] == "2026-11" and report["period"]["hours"] == 720
    assert [z["zone"] for z in report["zones"]] == [
        "centre",
        "library",
        "kohtaamo",
        "service-point",
        "employment-corner",
        "health-centre",
        "child-health",
        "huslab",
        "mental-health",
        "kela",
        "ohjaamo",
    ]
    nov, oct_ = world.nov, world.oct
    for z in report["zones"]:
        zone = z["zone"]
        assert z["entries"] == visits(nov, zone), zone
        assert z["exits"] == exits(nov, zone), zone
        assert (z["days_open"], z["days_closed"], z["days_no_data"]) == open_days(world, zone)
        assert z["estimated_hours"] == (2 if zone == "kela" else 0)
        peak, peak_at = nov.peak(zone)
        assert z["peak"] == peak
        local_peak = dt.datetime.fromtimestamp(peak_at / 1000, world.site.tz)
        assert z["peak_at"] == local_peak.isoformat(timespec="seconds")
        mb = z["month_before"]
        assert mb["period"] == "2026-10" and mb["entries"] == visits(oct_, zone)
        assert mb["change_pct"] == change(visits(nov, zone), visits(oct_, zone))
        yb = z["year_before"]
        assert yb["period"] == "2025-11"
        if zone == "library":
            assert (yb["entries"], yb["estimated"]) == (750, True)
            assert yb["change_pct"] == change(visits(nov, zone), 750)
        else:
            assert yb["entries"] is None and yb["change_pct"] is None
        day17 = next(d for d in z["days"] if d["date"] == "2026-11-17")
        assert day17["status"] == "no_data" and day17["entries"] is None
    kela = next(z for z in report["zones"] if z["zone"] == "kela")
    assert kela["closed_with_visits"] == ["2026-11-01"]  # the one let in on a Sunday
    day5 = next(d for d in kela["days"] if d["date"] == "2026-11-05")
    assert day5["estimated"] and day5["estimated_hours"] == 2
    assert day5["entries"] == nov.day_visits("kela", NOV_5)
    library = report["zones"][1]
    for weekday in range(7):
        for hour in (9, 12, 15, 19):
            cell = library["profile"][WEEKDAYS[weekday]][hour]
            assert cell["mean"] == profile_mean(nov, "library", weekday, hour)
    doors = {d["door"]: (d["in"], d["out"]) for d in report["doors"]["doors"]}
    truth = nov.door_counts()
    assert report["doors"]["status"] == "available"
    assert doors == {
        d.id: (truth.get((d.id, "in"), 0), truth.get((d.id, "out"), 0)) for d in world.site.doors
    }


def test_table(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "--period", "2026-11")
    assert rc == 0
    lines = out.splitlines()
    start = lines.index("Visits per zone") + 3
    rows = {}
    for line in lines[start : start + 11]:
        cells = [c for c in line.strip().split("  ") if c.strip()]
        rows[cells[0].strip()] = [c.strip() for c in cells[1:]]
    for zone in world.site.zones:
        cells = rows[zone.name]
        mark = "*" if zone.id == "kela" else ""
        assert cells[0] == f"{visits(world.nov, zone.id)}{mark}", zone.id
        assert cells[1] == str(exits(world.nov, zone.id))
        assert [int(c) for c in cells[4:7]] == list(open_days(world, zone.id))
        oct_visits = visits(world.oct, zone.id)
        assert cells[8] == f"{oct_visits} ({change(visits(world.nov, zone.id), oct_visits):+.1f} %)"
    assert "Kela: estimated (2 h); 1 day with no data; visits on closed days: 2026-11-01" in out
    assert "HUSLAB Laboratory and X-ray: 2 days with no data" in out
    # the daily table: the closed Sunday, the no-data Tuesday
    sunday = next(line for line in lines if line.startswith("Sun 2026-11-08"))
    assert (
        "closed" in sunday and f"{world.nov.day_visits('library', dt.date(2026, 11, 8))}" in sunday
    )
    tuesday = next(line for line in lines if line.startswith("Tue 2026-11-17"))
    assert tuesday.split()[2:] == ["no", "data"] * 11


def test_csv(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "--period", "2026-11", "--format", "csv")
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [
        "section",
        "site",
        "period",
        "zone",
        "zone_name",
        "parent",
        "door",
        "date",
        "weekday",
        "hour",
        "entries",
        "exits",
        "peak",
        "peak_at",
        "estimated",
        "estimated_hours",
        "change_pct",
        "days_open",
        "days_closed",
        "days_no_data",
        "status",
    ]
    totals = {r["zone"]: r for r in rows if r["section"] == "total"}
    for zone in zone_ids(world):
        t = totals[zone]
        assert int(t["entries"]) == visits(world.nov, zone)
        assert int(t["exits"]) == exits(world.nov, zone)
        assert int(t["peak"]) == world.nov.peak(zone)[0]
        assert (int(t["days_open"]), int(t["days_closed"]), int(t["days_no_data"])) == open_days(
            world, zone
        )
        assert t["estimated"] == ("yes" if zone == "kela" else "")
    month_before = {r["zone"]: r for r in rows if r["section"] == "month_before"}
    for zone in zone_ids(world):
        then = visits(world.oct, zone)
        assert (month_before[zone]["date"], int(month_before[zone]["entries"])) == ("2026-10", then)
        assert float(month_before[zone]["change_pct"]) == change(visits(world.nov, zone), then)
    year_before = {r["zone"]: r for r in rows if r["section"] == "year_before"}
    assert year_before["library"]["entries"] == "750" and year_before["library"]["estimated"]
    assert year_before["kela"]["entries"] == "" and year_before["kela"]["status"] == "no data"
    days = {(r["zone"], r["date"]): r for r in rows if r["section"] == "day"}
    assert len(days) == 11 * 30
    assert days[("huslab", "2026-11-11")]["status"] == "no data"
    assert days[("huslab", "2026-11-11")]["entries"] == ""
    assert days[("service-point", "2026-11-08")]["status"] == "closed"
    assert days[("service-point", "2026-11-08")]["entries"] == ""
    centre_sunday = days[("centre", "2026-11-08")]
    assert centre_sunday["status"] == "closed, visits counted"
    assert int(centre_sunday["entries"]) == world.nov.day_visits("centre", dt.date(2026, 11, 8))
    for day in world.nov.days:
        row = days[("library", day.isoformat())]
        if day != NOV_17:
            assert int(row["entries"]) == world.nov.day_visits("library", day)
    doors = {
        r["door"]: (int(r["entries"]), int(r["exits"])) for r in rows if r["section"] == "door"
    }
    truth = world.nov.door_counts()
    assert doors == {
        d.id: (truth.get((d.id, "in"), 0), truth.get((d.id, "out"), 0)) for d in world.site.doors
    }
    profile = {
        (r["zone"], r["weekday"], int(r["hour"])): float(r["entries"])
        for r in rows
        if r["section"] == "profile"
    }
    assert profile[("library", "Sat", 12)] == profile_mean(world.nov, "library", 5, 12)
    assert ("library", "Sat", 12) in profile and ("service-point", "Sun", 12) in profile


def test_a_dst_day_and_one_zone(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(
        capsys,
        "--period",
        "2026-10-25",
        "--zone",
        "library",
        "--zone",
        "centre",
        "--format",
        "json",
    )
    assert rc == 0
    report = json.loads(out)
    assert report["period"]["hours"] == 25
    assert [z["zone"] for z in report["zones"]] == ["centre", "library"]
    library = report["zones"][1]
    assert library["entries"] == world.oct.day_visits("library", OCT_25)
    # both 03:00 hours of the day, one visitor each, are that day's 03:00
    assert library["profile"]["Sun"][3] == {"mean": 2.0, "days": 1, "estimated": False}
    centre = report["zones"][0]
    assert centre["days"][0]["status"] == "closed_with_visits"
    # every door of the site opens into the centre or the library (or out of them)
    assert [d["door"] for d in report["doors"]["doors"]] == [d.id for d in world.site.doors]
    rc, out, _ = run(capsys, "--period", "2026-10-25", "--zone", "kela", "--format", "json")
    kela = json.loads(out)
    assert [d["door"] for d in kela["doors"]["doors"]] == ["kela-door"]
    assert kela["zones"][0]["status"] == "closed"  # a closed Sunday, nobody counted
    # the spring day has 23 hours, and no data here: "no data", not 0
    rc, out, _ = run(capsys, "--period", "2026-03-29", "--zone", "library", "--format", "json")
    spring = json.loads(out)
    assert spring["period"]["hours"] == 23
    assert spring["zones"][0]["entries"] is None and spring["zones"][0]["status"] == "no_data"


def test_statistics(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "--statistics", "2026", "--format", "csv")
    assert rc == 0
    rows = {r["unit"]: r for r in csv.DictReader(io.StringIO(out))}
    assert list(rows) == [
        "centre",
        "library",
        "kohtaamo",
        "service-point",
        "employment-corner",
        "health-centre",
        "child-health",
        "huslab",
        "mental-health",
        "kela",
        "ohjaamo",
    ]
    before_oct = ", ".join(f"2026-{m:02d}" for m in range(1, 10))
    for zone in zone_ids(world):
        r = rows[zone]
        assert r["year"] == "2026"
        assert int(r["visits"]) == visits(world.oct, zone) + visits(world.nov, zone)
        assert int(r["visits_10"]) == visits(world.oct, zone)
        assert int(r["visits_11"]) == visits(world.nov, zone)
        assert r["visits_01"] == "" and r["visits_12"] == ""
        assert r["no_data_months"] == f"{before_oct}, 2026-11"
        assert r["closed_months"] == ""
    assert rows["kela"]["estimated_months"] == "2026-11" and rows["kela"]["estimated"] == "yes"
    assert rows["library"]["estimated_months"] == ""
    rc, out, _ = run(capsys, "--statistics", "2026")
    assert rc == 0
    line = next(x for x in out.splitlines() if x.strip().startswith("Kela"))
    kela_total = visits(world.oct, "kela") + visits(world.nov, "kela")
    assert f"{kela_total}*" in line and "2026-11" in line
    rc, out, _ = run(capsys, "--statistics", "2026", "--format", "json")
    stats = json.loads(out)
    assert stats["units"][9]["estimated_months"] == [11]


def test_doors_beyond_the_raw_retention(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    admin(world.url, 'ALTER RETENTION POLICY "autogen" ON "footfall" DURATION 400d')
    try:
        # 400 days before 15 Jan 2028 12:00 is 11 Dec 2026 12:00: whole days from the
        # 12th are kept, November's crossings are gone
        rc, out, _ = run(
            capsys, "--period", "2026-11", "--format", "json", "--now", "2028-01-15T12:00:00Z"
        )
        assert rc == 0
        doors = json.loads(out)["doors"]
        assert doors["status"] == "not_available" and doors["available_from"] == "2026-12-12"
        assert all(d["in"] is None and d["out"] is None for d in doors["doors"])
        rc, out, _ = run(capsys, "--period", "2026-11", "--now", "2028-01-15T12:00:00Z")
        assert "Per-door figures are not available for this period" in out
        # 400 days before 10 Dec 2027 12:00 is 5 Nov 2026 12:00: whole days from the 6th
        rc, out, _ = run(
            capsys, "--period", "2026-11", "--format", "json", "--now", "2027-12-10T12:00:00Z"
        )
        doors = json.loads(out)["doors"]
        assert doors["status"] == "partial" and doors["available_from"] == "2026-11-06"
        since = local_ms(dt.date(2026, 11, 6), 0)
        truth = {
            (door, direction): sum(
                1 for t, d, r in world.nov.crossings if t >= since and (d, r) == (door, direction)
            )
            for door, direction in world.nov.door_counts()
        }
        got = {(d["door"], "in"): d["in"] for d in doors["doors"]}
        got |= {(d["door"], "out"): d["out"] for d in doors["doors"]}
        assert {k: v for k, v in got.items() if k in truth} == truth
    finally:
        admin(world.url, 'ALTER RETENTION POLICY "autogen" ON "footfall" DURATION INF')
