"""Reports on the web board against a real InfluxDB: known daily and hourly rollups (as
the history worker writes them) for November 2026 and the periods it is compared with,
the report API in every format (values checked against the sums made here), the 400s,
the login rule, and the reports page in Debian's Chromium."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser, expect

from footfall_collector.config import InfluxSettings
from footfall_collector.influx import connect
from footfall_collector.schema import (
    ROLLUP_RP,
    VISITS_DAILY,
    VISITS_HOURLY,
    crossing_point,
    visits_point,
)
from footfall_sim.localservices import Influx, Mosquitto
from footfall_web.auth import hash_password
from tests.support.web import (
    ALWAYS_OPEN,
    screenshot_path,
    site_with_hours,
    web_server,
    web_settings,
)

pytestmark = pytest.mark.services

SITE = site_with_hours(ALWAYS_OPEN)
TZ = SITE.tz
ZONES = [z.id for z in SITE.zones]  # centre, library, kela, youth
NOVEMBER = [dt.date(2026, 11, d) for d in range(1, 31)]
OCTOBER = [dt.date(2026, 10, d) for d in range(1, 32)]
NOVEMBER_2025 = [dt.date(2025, 11, d) for d in range(1, 31)]
MISSING = {("kela", dt.date(2026, 11, 12)), ("kela", dt.date(2026, 11, 13))}
"""Open days without rollups: "no data", not 0."""
ESTIMATED = ("library", dt.date(2026, 11, 10), 14)
"""One hour whose figure is estimated (an agent was offline)."""
TOKEN = "report-token-0123456789"
API = "/api/v1/sites/test-site/reports"


def ms(day: dt.date, hour: int = 0) -> int:
    return int(dt.datetime.combine(day, dt.time(hour), tzinfo=TZ).timestamp() * 1000)


def hourly(zone: str, day: dt.date) -> dict[int, int]:
    """Entries by local hour: a zone's own pattern, different every day."""
    base = {"centre": 40, "library": 17, "kela": 5, "youth": 2}[zone]
    grown = day.year - 2025  # a year later, a few more in the morning
    return {
        hour: base + (day.toordinal() * 7 + hour * 3 + len(zone)) % (base + 3) + grown * (hour < 12)
        for hour in (9, 11, 14, 17)
    }


@dataclass(frozen=True)
class Truth:
    def visits(self, zone: str, days: list[dt.date]) -> int:
        return sum(sum(hourly(zone, d).values()) for d in days if (zone, d) not in MISSING)

    def month(self, zone: str) -> int:
        return self.visits(zone, NOVEMBER)


def write_rollups(url: str) -> Truth:
    """`visits_hourly` and `visits_daily` rows in the rollups policy (daily = the sum of
    its hours, peak = the busiest hour), and a few raw crossings for the door table."""
    hourly_lines: list[str] = []
    daily_lines: list[str] = []
    for day in [*NOVEMBER, *OCTOBER, *NOVEMBER_2025]:
        for zone in ZONES:
            if (zone, day) in MISSING:
                continue
            hours = hourly(zone, day)
            estimated = 0
            for hour, entries in hours.items():
                flag = int((zone, day, hour) == ESTIMATED)
                estimated += flag
                hourly_lines.append(
                    visits_point(
                        VISITS_HOURLY,
                        SITE.site,
                        zone,
                        ms(day, hour),
                        entries=entries,
                        exits=entries,
                        peak=entries,
                        peak_at_ms=ms(day, hour) + 60_000,
                        estimated=flag,
                    ).line()
                )
            top = max(hours, key=lambda h: hours[h])
            daily_lines.append(
                visits_point(
                    VISITS_DAILY,
                    SITE.site,
                    zone,
                    ms(day),
                    entries=sum(hours.values()),
                    exits=sum(hours.values()),
                    peak=hours[top],
                    peak_at_ms=ms(day, top) + 60_000,
                    estimated=estimated,
                ).line()
            )
    crossings = [
        crossing_point(
            SITE.site, "library-mall", "in", "pi-1", ms(dt.date(2026, 11, 2), 10) * 10**6 + i
        )
        for i in range(3)
    ]
    influx = connect(InfluxSettings(url=url, database="footfall"))
    try:
        influx.ensure_database()
        for i in range(0, len(hourly_lines), 5000):
            influx.write(hourly_lines[i : i + 5000], rp=ROLLUP_RP)
        influx.write(daily_lines, rp=ROLLUP_RP)
        influx.write([p.line() for p in crossings])
    finally:
        influx.close()
    return Truth()


@pytest.fixture
def served(mosquitto: Mosquitto, influx: Influx) -> Iterator[tuple[httpx.Client, Truth]]:
    truth = write_rollups(influx.url)
    with (
        web_server(web_settings(mosquitto.port, influx.url), [SITE]) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        yield http, truth


def test_visits_report_json_csv_xlsx_html(served: tuple[httpx.Client, Truth]) -> None:
    http, truth = served
    r = http.get(f"{API}/visits", params={"period": "2026-11"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"]["key"] == "2026-11" and body["timezone"] == "Europe/Helsinki"
    zones = {z["zone"]: z for z in body["zones"]}
    assert set(zones) == set(ZONES)
    for zone in ZONES:
        assert zones[zone]["entries"] == truth.month(zone), zone
    library, kela = zones["library"], zones["kela"]
    assert library["estimated_hours"] == 1 and library["estimated"] is True
    assert kela["days_no_data"] == 2 and library["days_no_data"] == 0
    before = truth.visits("library", OCTOBER[:30])  # October's first 30 days (November's length)
    month_before = library["month_before"]
    assert month_before["period"] == "2026-10"
    assert month_before["entries"] in (before, truth.visits("library", OCTOBER))
    year_before = library["year_before"]
    assert (year_before["period"], year_before["entries"]) == (
        "2025-11",
        truth.visits("library", NOVEMBER_2025),
    )
    expected_change = round(
        (library["entries"] - year_before["entries"]) / year_before["entries"] * 100, 1
    )
    assert year_before["change_pct"] == pytest.approx(expected_change, abs=0.051)
    assert expected_change > 0
    day = {d["date"]: d for d in kela["days"]}
    assert day["2026-11-12"]["status"] == "no_data" and day["2026-11-12"]["entries"] is None
    assert day["2026-11-11"]["entries"] == sum(hourly("kela", dt.date(2026, 11, 11)).values())

    # one zone (and its figure is the same)
    one = http.get(f"{API}/visits", params={"period": "2026-11", "zone": "library"}).json()
    assert [z["zone"] for z in one["zones"]] == ["library"]
    assert one["zones"][0]["entries"] == truth.month("library")

    # CSV: the total row of each zone
    r = http.get(f"{API}/visits", params={"period": "2026-11", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "test-site-visits-2026-11.csv" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    totals = {row["zone"]: int(row["entries"]) for row in rows if row["section"] == "total"}
    assert totals == {zone: truth.month(zone) for zone in ZONES}

    # XLSX opens in openpyxl, the first sheet has each zone's visits
    r = http.get(f"{API}/visits", params={"period": "2026-11", "format": "xlsx"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(r.content))
    sheet = book.worksheets[0]
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    header = next(row for row in values if "Visits" in row)
    col = header.index("Visits")
    xlsx_totals = {row[0]: row[col] for row in values if row and row[0] in ZONES}
    assert xlsx_totals == {zone: truth.month(zone) for zone in ZONES}

    # printable HTML, shown in the browser
    r = http.get(f"{API}/visits", params={"period": "2026-11", "format": "html"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "content-disposition" not in r.headers
    assert 'data-zone="library"' in r.text and str(truth.month("library")) in r.text


def test_statistics(served: tuple[httpx.Client, Truth]) -> None:
    http, truth = served
    body = http.get(f"{API}/statistics", params={"year": "2026"}).json()
    units = {u["zone"]: u for u in body["units"]}
    year_visits = {zone: truth.visits(zone, OCTOBER + NOVEMBER) for zone in ZONES}
    assert {zone: units[zone]["visits"] for zone in ZONES} == year_visits
    november = next(m for m in units["library"]["months"] if m["month"] == "2026-11")
    assert november["entries"] == truth.month("library")
    r = http.get(f"{API}/statistics", params={"year": "2026", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {row["unit"]: int(row["visits"]) for row in rows} == year_visits
    assert {row["unit"]: int(row["visits_11"]) for row in rows} == {
        zone: truth.month(zone) for zone in ZONES
    }


def test_bad_requests_are_400_with_what_is_accepted(served: tuple[httpx.Client, Truth]) -> None:
    http, _ = served
    accepted = "a month 2026-11"
    for path, params, status, message in [
        ("visits", {}, 400, "period is required"),
        ("visits", {"period": "November"}, 400, accepted),
        ("visits", {"period": "2026-13"}, 400, accepted),
        ("visits", {"period": "2026-02-30"}, 400, "February 2026 has days 1 to 28"),
        ("visits", {"period": "1999"}, 400, "2000"),
        ("visits", {"period": "2026-11", "zone": "nope"}, 400, "unknown zone 'nope'"),
        (
            "visits",
            {"period": "2026-11", "format": "pdf"},
            400,
            "format must be one of json, csv, xlsx, html",
        ),
        ("statistics", {}, 400, "year is required"),
        ("statistics", {"year": "26"}, 400, "year must be a calendar year like 2026"),
        ("statistics", {"year": "1900"}, 400, "2000"),
        ("statistics", {"year": "2026", "format": "xlsx"}, 400, "format must be one of json, csv"),
    ]:
        r = http.get(f"{API}/{path}", params=params)
        assert r.status_code == status, (path, params, r.text)
        assert message in r.json()["detail"], (path, params, r.text)
    r = http.get("/api/v1/sites/nope/reports/visits", params={"period": "2026-11"})
    assert r.status_code == 404 and "unknown site 'nope'" in r.json()["detail"]
    # the page words it in the visitor's language (tests/web/test_web_reports_i18n.py)
    shown = http.get("/reports/test-site", params={"period": "soon", "lang": "en"})
    assert shown.status_code == 400 and accepted in shown.text


def test_reports_need_a_login_and_the_page_shows_the_figures(
    browser: Browser, mosquitto: Mosquitto, influx: Influx
) -> None:
    truth = write_rollups(influx.url)
    settings = web_settings(
        mosquitto.port,
        influx.url,
        http={"host": "0.0.0.0"},
        auth={"users": {"anna": hash_password("s3cret-pass", n=2**12)}, "tokens": [TOKEN]},
    )
    with (
        web_server(settings, [SITE]) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        r = http.get(f"{API}/visits", params={"period": "2026-11"})
        assert r.status_code == 401 and "login required" in r.json()["detail"]
        assert http.get(f"{API}/statistics", params={"year": "2026"}).status_code == 401
        redirect = http.get("/reports/test-site", params={"period": "2026-11"})
        assert redirect.status_code == 303
        assert redirect.headers["location"] == "/login?next=/reports/test-site%3Fperiod%3D2026-11"
        ok = http.get(
            f"{API}/visits",
            params={"period": "2026-11", "zone": "kela"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert ok.status_code == 200 and ok.json()["zones"][0]["entries"] == truth.month("kela")

        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            page.goto(server.url + "/reports/test-site")
            expect(page.locator("input[name=user]")).to_be_visible()
            page.fill("input[name=user]", "anna")
            page.fill("input[name=password]", "s3cret-pass")
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Reports · Test Service Centre")
            page.fill("#period", "2026-11")
            page.click("#picker button[type=submit]")
            expect(page.locator("#report")).to_have_attribute("data-period", "2026-11")
            library = page.locator("#zones tr[data-zone=library] .visits")
            expect(library).to_have_text(f"{truth.month('library')}*")  # one estimated hour
            expect(page.locator("#zones tr[data-zone=kela] .visits")).to_have_text(
                str(truth.month("kela"))
            )
            expect(
                page.locator("#days tr[data-date='2026-11-12'] td[data-zone=kela]")
            ).to_have_text("no data")
            page.screenshot(path=screenshot_path("reports"), full_page=True)
            # the downloads go through the same login
            href = page.locator("#download-csv").get_attribute("href")
            assert href is not None and "format=csv" in href and "period=2026-11" in href
            answer = page.request.get(server.url + href)
            assert answer.status == 200
            totals = {
                row["zone"]: int(row["entries"])
                for row in csv.DictReader(io.StringIO(answer.text()))
                if row["section"] == "total"
            }
            assert totals["library"] == truth.month("library")
            xlsx = page.locator("#download-xlsx").get_attribute("href")
            assert xlsx is not None and page.request.get(server.url + xlsx).status == 200
            # a bad period on the page: the accepted forms, not a crash
            page.fill("#period", "next tuesday")
            page.click("#picker button[type=submit]")
            expect(page.locator("#report-error")).to_contain_text("an ISO week 2026-W47")
        finally:
            context.close()
