"""footfall-report's documents against the known data (tests/report/cli_world.py): the
workbook, the HTML page, which prints on one A4 sheet in Chromium, and the CSV written by
the console script."""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser

from tests.report.cli_world import (
    NOV_5,
    NOV_17,
    NOW,
    World,
    change,
    exits,
    open_days,
    profile_mean,
    run,
    script,
    visits,
    zone_ids,
)
from tests.report.data import ISO_OMENA

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("report_env")]


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


def test_console_script_writes_csv(world: World, tmp_path: Path) -> None:
    env = {**os.environ, "FOOTFALL_INFLUX__URL": world.url}
    out = tmp_path / "nov.csv"
    p = subprocess.run(
        [
            script(),
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
    browser: Browser,
    world: World,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    period: str,
) -> None:
    """Printed by Chromium (Debian's, never downloaded) to A4: one sheet."""
    rc, out, _ = run(capsys, "--period", period, "--format", "html")
    assert rc == 0
    page_file = tmp_path / "report.html"
    page_file.write_text(out)
    context = browser.new_context()
    try:
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_file.as_uri())
        pdf = page.pdf(prefer_css_page_size=True)
    finally:
        context.close()
    assert requests == [page_file.as_uri()]  # nothing else fetched
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert pages == 1
