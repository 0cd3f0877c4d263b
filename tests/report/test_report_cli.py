"""footfall-report end to end against a real InfluxDB: known crossings of October and
November 2026 at Iso Omena, the rollups they make (counted by hand through the door
algebra in tests/report/data.py), and the CLI's figures in every format checked against
that truth."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from footfall_contract.site import Site
from footfall_report.cli import main
from tests.report.data import (
    ISO_OMENA,
    Scenario,
    admin,
    build_month,
    iso_omena,
    load,
    local_day,
    ms,
    prepare_database,
)
from tests.support.services import Influx, free_port

pytestmark = pytest.mark.services

NOW = "2026-12-01T06:30:00Z"
NOV_17 = dt.date(2026, 11, 17)
NOV_5 = dt.date(2026, 11, 5)
OCT_25 = dt.date(2026, 10, 25)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class World:
    url: str
    site: Site
    oct: Scenario
    nov: Scenario


def local_ms(day: dt.date, hour: int, minute: int = 0, fold: int = 0) -> int:
    site = iso_omena()
    return ms(dt.datetime.combine(day, dt.time(hour, minute, fold=fold), tzinfo=site.tz))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = Influx(tmp_path_factory.mktemp("report") / "influxdb")
    server.start()
    try:
        prepare_database(server.url)
        site = iso_omena()
        # two people come in at 03:30 on 25 Oct, once in each of the two 03:00 hours
        dst = [
            (local_ms(OCT_25, 3, 30, fold=0), "library-mall", "in"),
            (local_ms(OCT_25, 3, 30, fold=1), "library-mall", "in"),
        ]
        assert dst[1][0] - dst[0][0] == 3_600_000
        october = build_month(site, 2026, 10, seed=8, extra=dst)
        october.outside_crossings = []
        november = build_month(site, 2026, 11, seed=7)
        # no rollups at all on 17 Nov, and none for HUSLAB on the 11th either
        november.missing = {(z.id, NOV_17) for z in site.zones} | {
            ("huslab", dt.date(2026, 11, 11))
        }
        for hour in (10, 11):  # Kela's agent offline 10:00-12:00 on 5 Nov
            november.hours["kela"][local_ms(NOV_5, hour)].estimated = True
        # a year before: the library only, 25 a day, one estimated hour on the 3rd
        november.extra_daily = [
            ("library", dt.date(2025, 11, d), 25, 1 if d == 3 else 0) for d in range(1, 31)
        ]
        load(server.url, october)
        load(server.url, november)
        yield World(server.url, site, october, november)
    finally:
        server.kill()


@pytest.fixture(autouse=True)
def _settings(world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FOOTFALL_INFLUX__URL", world.url)
    monkeypatch.setenv("FOOTFALL_STATE_DIR", str(tmp_path / "state"))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["--site", str(ISO_OMENA), "--now", NOW, *args])
    out, err = capsys.readouterr()
    return rc, out, err


# --- the truth, from the scenario ------------------------------------------------------


def visits(sc: Scenario, zone: str) -> int:
    return sc.visits(zone)


def exits(sc: Scenario, zone: str) -> int:
    return sum(
        h.exits
        for s, h in sc.hours[zone].items()
        if (zone, local_day(s, sc.site)) not in sc.missing
    )


def open_days(world: World, zone: str) -> tuple[int, int, int]:
    """(open, closed, no data) days of November."""
    days = world.nov.days
    is_open = [world.site.hours_on(d, zone) is not None for d in days]
    no_data = sum(
        1 for d, o in zip(days, is_open, strict=True) if o and (zone, d) in world.nov.missing
    )
    return sum(is_open), len(days) - sum(is_open), no_data


def change(now: int, then: int) -> float:
    return round((now - then) / then * 100, 1)


def profile_mean(sc: Scenario, zone: str, weekday: int, hour: int) -> float | None:
    values = []
    for day in sc.days:
        if day.weekday() != weekday or (zone, day) in sc.missing:
            continue
        values.append(sc.hours[zone][local_ms(day, hour)].entries)
    return round(sum(values) / len(values), 2) if values else None


def zone_ids(world: World) -> list[str]:
    return [z.id for z in world.site.zones]


# --- every format ----------------------------------------------------------------------


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


def test_xlsx(world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "nov.xlsx"
    rc, out, _ = run(capsys, "--period", "2026-11", "--format", "xlsx", "-o", str(path))
    assert rc == 0 and out == ""
    wb = load_workbook(path)
    assert wb.sheetnames == ["Summary", "Daily", "Hourly profile", "Doors"]
    summary = wb["Summary"]
    header = [c.value for c in summary[5]]
    assert header[:4] == ["Zone", "Name", "Parent", "Visits"]
    rows: dict[Any, dict[Any, Any]] = {
        r[0]: dict(zip(header, r, strict=True))
        for r in summary.iter_rows(min_row=6, values_only=True)
    }
    for zone in zone_ids(world):
        r = rows[zone]
        assert r["Visits"] == visits(world.nov, zone) and isinstance(r["Visits"], int)
        assert r["Exits"] == exits(world.nov, zone)
        peak, peak_at = world.nov.peak(zone)
        assert r["Peak"] == peak
        local = dt.datetime.fromtimestamp(peak_at / 1000, world.site.tz).replace(tzinfo=None)
        assert r["Peak at"] == local
        assert (r["Open days"], r["Closed days"], r["No-data days"]) == open_days(world, zone)
        then = visits(world.oct, zone)
        assert r["Visits month before"] == then
        assert r["Change vs month before"] == pytest.approx(
            change(visits(world.nov, zone), then) / 100
        )
    assert rows["kela"]["Estimated hours"] == 2
    assert "estimated (2 h)" in rows["kela"]["Flags"]
    assert rows["library"]["Visits year before"] == 750
    assert rows["kela"]["Visits year before"] is None
    assert rows["kohtaamo"]["Parent"] == "Iso Omena Library"
    daily = wb["Daily"]
    head = [c.value for c in daily[1]]
    cells: dict[tuple[Any, dt.date], dict[Any, Any]] = {}
    for line in daily.iter_rows(min_row=2, values_only=True):
        assert isinstance(line[0], dt.datetime)
        cells[(line[2], line[0].date())] = dict(zip(head, line, strict=True))
    assert len(cells) == 11 * 30
    sunday = cells[("kela", dt.date(2026, 11, 8))]
    assert sunday["Status"] == "closed" and sunday["Visits"] is None
    assert sunday["Opening hours"] == "closed"
    nodata = cells[("centre", NOV_17)]
    assert nodata["Status"] == "no data" and nodata["Visits"] is None
    day5 = cells[("kela", NOV_5)]
    assert day5["Visits"] == world.nov.day_visits("kela", NOV_5) and day5["Estimated hours"] == 2
    assert day5["Opening hours"] == "07:00-20:00"
    profile = wb["Hourly profile"]
    hours = [c.value for c in profile[2]]
    for values in profile.iter_rows(min_row=3, values_only=True):
        if values[0] == "library" and values[2] == "Mon":
            assert values[hours.index("12")] == profile_mean(world.nov, "library", 0, 12)
            assert values[hours.index("03")] == 0  # hourly rows of night hours: 0, not missing
    doors = {r[0]: (r[2], r[3]) for r in wb["Doors"].iter_rows(min_row=2, values_only=True)}
    truth = world.nov.door_counts()
    assert doors["library-mall"] == (truth[("library-mall", "in")], truth[("library-mall", "out")])


class _Rows(HTMLParser):
    """The text cells of every <tr data-...> row, keyed by that attribute's value."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.current: list[str] | None = None
        self.cell: list[str] | None = None
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)
        if tag == "tr":
            key = next((v for n, v in attrs if n.startswith("data-") and v), None)
            self.current = [] if key else None
            if key:
                self.rows[key] = self.current  # type: ignore[assignment]
        elif tag == "td" and self.current is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.cell is not None and self.current is not None:
            self.current.append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def test_html(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "--period", "2026-11", "--format", "html")
    assert rc == 0
    assert out.startswith("<!DOCTYPE html>") and "@media print" in out
    parser = _Rows()
    parser.feed(out)
    assert parser.urls == []  # self-contained: nothing fetched
    assert "<script" not in out and "http" not in out
    for zone in world.site.zones:
        cells = parser.rows[zone.id]
        assert cells[0] == zone.name
        mark = "*" if zone.id == "kela" else ""
        assert cells[1] == f"{visits(world.nov, zone.id)}{mark}"
        assert cells[3] == str(world.nov.peak(zone.id)[0])
        oct_visits = visits(world.oct, zone.id)
        assert cells[9] == str(oct_visits)
        assert cells[10] == f"{change(visits(world.nov, zone.id), oct_visits):+.1f} %"
    day = parser.rows["2026-11-17"]
    assert day[1:] == ["no data"] * 11
    sunday = parser.rows["2026-11-01"]
    assert sunday[10] == "1!"  # Kela, closed: the one visit shown and flagged
    assert sunday[4] == "closed"  # the Service Point
    truth = world.nov.door_counts()
    door = parser.rows["kela-door"]
    assert door[2:] == [str(truth[("kela-door", "in")]), str(truth[("kela-door", "out")])]


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


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2026-13"], "bad period '2026-13': the month must be 01 to 12"),
        (["--period", "soon"], "use a day 2026-11-23, an ISO week 2026-W47"),
        (["--period", "2026-11", "--zone", "cafe"], "unknown zone 'cafe' in site 'iso-omena'"),
    ],
)
def test_bad_input_exits_2_with_the_reason(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rc, out, err = run(capsys, *args)
    assert rc == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_bad_year_and_missing_site(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--site", str(ISO_OMENA), "--statistics", "26"])
    assert exit_.value.code == 2
    assert "bad year '26'" in capsys.readouterr().err
    rc = main(["--site", str(tmp_path / "nowhere.yaml"), "--period", "2026-11"])
    assert rc == 2 and "no such site file" in capsys.readouterr().err
    rc = main(
        [
            "--site",
            str(ISO_OMENA),
            "--period",
            "2026-11",
            "--format",
            "xlsx",
            "-o",
            str(tmp_path / "no" / "x.xlsx"),
        ]
    )
    assert rc == 2 and "no such folder" in capsys.readouterr().err


def _script() -> str:
    return str(Path(sys.executable).with_name("footfall-report"))


def test_unreachable_influxdb_is_a_message_not_a_traceback(world: World) -> None:
    env = {**os.environ, "FOOTFALL_INFLUX__URL": f"http://127.0.0.1:{free_port()}"}
    p = subprocess.run(
        [_script(), "--site", str(ISO_OMENA), "--period", "2026-11"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert "footfall-report: cannot read from InfluxDB" in p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
    env["FOOTFALL_INFLUX__TIMEOUT_S"] = "-1"
    p = subprocess.run(
        [_script(), "--site", str(ISO_OMENA), "--period", "2026-11"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "influx.timeout_s" in p.stderr and "Traceback" not in p.stderr


def test_console_script_writes_csv(world: World, tmp_path: Path) -> None:
    env = {**os.environ, "FOOTFALL_INFLUX__URL": world.url}
    out = tmp_path / "nov.csv"
    p = subprocess.run(
        [
            _script(),
            "--site",
            str(ISO_OMENA),
            "--period",
            "2026-11",
            "--now",
            NOW,
            "--format",
            "csv",
            "-o",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    totals = {r["zone"]: r for r in csv.DictReader(out.open()) if r["section"] == "total"}
    assert int(totals["library"]["entries"]) == visits(world.nov, "library")


@pytest.mark.parametrize("period", ["2026-11", "2026-W47", "2026-11-23", "2026"])
def test_html_prints_on_one_page(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path, period: str
) -> None:
    """Printed by Chromium (Debian's, never downloaded) to A4: one sheet."""
    from playwright.sync_api import sync_playwright

    from tests.support.web import CHROMIUM, CHROMIUM_ARGS, chromium_available

    if not chromium_available():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); never downloaded")
    rc, out, _ = run(capsys, "--period", period, "--format", "html")
    assert rc == 0
    page_file = tmp_path / "report.html"
    page_file.write_text(out)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            pdf = page.pdf(prefer_css_page_size=True)
        finally:
            browser.close()
    assert requests == [page_file.as_uri()]  # nothing else fetched
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert pages == 1
