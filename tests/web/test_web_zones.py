"""The agency page (`/zones/{site}/{zone}`), the index of a site's public displays
(`/crowding/{site}`) and the public display's forecast chart (its "now" marker, labels
that do not collide at 1920 px), in Debian's Chromium against the real server, Mosquitto
and InfluxDB, on a clock fixed at a Wednesday afternoon.

The agency page's figures are checked against a truth worked out here from the door
events the test writes into InfluxDB (as the collector and the history worker would:
`zone_flow` per crossing, `occupancy_history` replayed per reset window from 0)."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from footfall_sim.localservices import Influx, Mosquitto
from footfall_web.auth import hash_password
from tests.support.collector import Publisher
from tests.support.influxdata import create_database, replay_door, reset_times, write_lines
from tests.support.web import (
    ALWAYS_OPEN,
    board,
    occupancy,
    screenshot_path,
    seed_typical,
    site_with_hours,
    web_server,
    web_settings,
)

pytestmark = pytest.mark.services

SITE = site_with_hours(ALWAYS_OPEN)
TZ = SITE.tz
ZONE = "library"
DOOR = "library-mall"  # from the street straight into the library (and the centre)
MONDAY, WEDNESDAY = dt.date(2026, 11, 23), dt.date(2026, 11, 25)
NOW = dt.datetime(2026, 11, 25, 14, 20, tzinfo=TZ)
PREFIX = "footfall/v1/test-site"


def local_ms(day: dt.date, hour: int = 0, minute: int = 0) -> int:
    return int(dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ).timestamp() * 1000)


def fixed_clock(at: dt.datetime) -> Callable[[], float]:
    """A clock that starts at `at` and runs on (the page's "now" and "today")."""
    start = time.time()
    return lambda: at.timestamp() + (time.time() - start)


@dataclass(frozen=True)
class Truth:
    """The library's levels (ms, count, ascending) and entries (ms)."""

    levels: list[tuple[int, int]]
    entries: list[int]

    def level_at(self, ms: int) -> int | None:
        """The level after every point at or before `ms`."""
        i = bisect_right([t for t, _ in self.levels], ms)
        return self.levels[i - 1][1] if i else None

    def hour(self, a: int, b: int) -> dict[str, Any]:
        """[a, b): the level at the end, the highest level held in it, the entries."""
        times = [t for t, _ in self.levels]
        inside = [c for t, c in self.levels[bisect_right(times, a) : bisect_left(times, b)]]
        start = self.level_at(a)
        held = [c for c in [start, *inside] if c is not None]
        return {
            "count": self.level_at(b - 1),
            "max": max(held) if held else None,
            "visits": bisect_left(self.entries, b) - bisect_left(self.entries, a),
        }


def write_week(url: str, now_ms: int) -> Truth:
    """Monday to Wednesday: visitors through the street door from 08:00 (Wednesday's until
    now, and one walking in at 14:50, after now, who must not count yet), a night
    visitor at 01:30 on Wednesday who stays past the 03:00 reset (the level restarts at
    0, and their exit is then drift: the level never goes below 0)."""
    rng = random.Random(12)
    events: list[tuple[int, str]] = []
    for k in range(3):
        day = MONDAY + dt.timedelta(days=k)
        for _ in range(rng.randint(20, 40)):
            t_in = local_ms(day, 8) + rng.randrange(12 * 3600 * 1000)
            if day == WEDNESDAY and t_in >= now_ms:
                continue
            stay = rng.randrange(5, 150) * 60_000
            events.append((t_in, "in"))
            if t_in + stay < now_ms:
                events.append((t_in + stay, "out"))
    events.append((local_ms(WEDNESDAY, 1, 30), "in"))
    events.append((local_ms(WEDNESDAY, 5, 0), "out"))  # after the reset: drift
    events.append((local_ms(WEDNESDAY, 14, 50), "in"))  # after "now"
    events.sort()
    resets = reset_times(SITE, local_ms(MONDAY) - 86_400_000, local_ms(WEDNESDAY, 23))
    replay = replay_door(SITE, DOOR, ZONE, events, resets)  # from Sunday 03:00
    write_lines(url, replay.lines)
    levels = [(t // 1_000_000, count) for t, count in replay.levels]
    return Truth(levels, [t // 1_000_000 for t in replay.entries])


def cells(page: Page, selector: str) -> list[list[str]]:
    return [
        [c.strip() for c in row]
        for row in page.eval_on_selector_all(
            selector,
            "rows => rows.map(r => Array.from(r.querySelectorAll('th, td'))"
            ".map(c => c.textContent))",
        )
    ]


def test_agency_page_today_and_this_week_match_the_door_events(
    browser: Browser, mosquitto: Mosquitto, influx: Influx
) -> None:
    clock = fixed_clock(NOW)
    now_ms = int(NOW.timestamp() * 1000)
    truth = write_week(influx.url, now_ms)
    live = truth.level_at(now_ms)
    assert live is not None and live > 0
    pub = Publisher(mosquitto.port)
    pub.send(
        f"{PREFIX}/zone/{ZONE}/occupancy", occupancy(live, 250, int(clock() * 1000)), retain=True
    )
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    try:
        with board(mosquitto.port, influx.url, [SITE], now=clock) as (server, http):
            page = context.new_page()
            answer = page.goto(server.url + "/zones/test-site/library?lang=en")
            assert answer is not None and answer.status == 200
            expect(page.locator("h1")).to_have_text("Library")
            expect(page.locator(".crumb").first).to_have_text(
                "Test Service Centre · in Service Centre"
            )
            expect(page.locator("#now-count")).to_have_text(f"{live} in")
            expect(page.locator("#now-pct")).to_have_text(
                f"{round(live / 250 * 100)}% of capacity (250)"
            )

            # today, hour by hour from local midnight to now
            today = local_ms(WEDNESDAY)
            bounds = [today + h * 3_600_000 for h in range(15)] + [now_ms + 60_000]
            expected = []
            for a, b in itertools.pairwise(bounds):
                h = truth.hour(a, b)
                local = dt.datetime.fromtimestamp(a / 1000, TZ).strftime("%H:%M")
                expected.append([local, str(h["count"]), str(h["max"]), str(h["visits"])])
            assert cells(page, "#hours tbody tr") == expected
            visits_today = sum(int(r[3]) for r in expected)
            assert visits_today == bisect_left(truth.entries, now_ms) - bisect_left(
                truth.entries, today
            )
            expect(page.locator("#visits-today")).to_have_text(str(visits_today))
            peak = max(int(r[2]) for r in expected)
            peak_at = next(r[0] for r in expected if int(r[2]) == peak)
            expect(page.locator("#peak-today")).to_have_text(f"{peak} at {peak_at}")
            # the chart's text alternative says the same
            label = (
                f"People in per hour today: most {peak} at {peak_at}, now {live}; "
                f"{visits_today} visits"
            )
            expect(page.locator("#today-chart")).to_have_attribute("aria-label", label)
            expect(page.locator("#today-caption")).to_have_text(label)
            expect(page.locator("#today-chart canvas").first).to_be_visible()

            # this week, Monday to Sunday; the days to come have no figure yet
            week = []
            for k in range(7):
                day = MONDAY + dt.timedelta(days=k)
                start, end = local_ms(day), min(local_ms(day + dt.timedelta(days=1)), now_ms)
                n = bisect_left(truth.entries, end) - bisect_left(truth.entries, start)
                label_day = f"{day.strftime('%a')} {day.day}/{day.month}"
                week.append([label_day, "–" if day > WEDNESDAY else str(n), ""])
            assert cells(page, "#week-table tbody tr") == week
            total = sum(int(r[1]) for r in week if r[1] != "–")
            expect(page.locator("#week-total")).to_have_text(str(total))
            expect(page.locator("#week-table tr[aria-current=date] th")).to_have_text("Wed 25/11")

            # the same figures as the history API gives
            history = http.get(
                "/api/v1/sites/test-site/zones/library/history",
                params={"from": "2026-11-23T00:00:00+02:00", "every": "1d"},
            ).json()
            assert [p["visits"] for p in history["points"]] == [int(r[1]) for r in week[:3]]

            # links: its public display, its reports, today's CSV
            expect(page.locator("#link-public")).to_have_attribute(
                "href", "/crowding/test-site/library"
            )
            expect(page.locator("#link-report-week")).to_have_attribute(
                "href", "/reports/test-site?period=this-week&zone=library"
            )
            csv = http.get(str(page.locator("#link-csv").get_attribute("href")))
            assert csv.status_code == 200
            rows = csv.text.strip().splitlines()[1:]
            assert [r.split(",")[4] for r in rows] == [r[3] for r in expected]
            page.screenshot(path=screenshot_path("zone-page-en"), full_page=True)

            # Finnish; a zone without a public display has no such link
            page.goto(server.url + "/zones/test-site/youth?lang=fi")
            expect(page.locator("h1")).to_have_text("Youth services")
            expect(page.locator("#now-count")).to_have_text("ei tietoa")
            expect(page.locator("#link-public")).to_have_count(0)
            expect(page.locator("#week-table thead th").first).to_have_text("Päivä")
            # the board links every zone card to its page
            page.goto(server.url + "/?lang=en")
            page.click("#zone-test-site-library h3 a")
            expect(page).to_have_url(server.url + "/zones/test-site/library")
            expect(page.locator("#visits-today")).to_have_text(str(visits_today))

            # an unknown zone or site: a page that says what is wrong
            answer = page.goto(server.url + "/zones/test-site/nope?lang=en")
            assert answer is not None and answer.status == 404
            expect(page.locator("#zone-error")).to_have_text(
                "No such unit: unknown zone 'nope' in site 'test-site'"
            )
            answer = page.goto(server.url + "/zones/elsewhere/library?lang=en")
            assert answer is not None and answer.status == 404
            expect(page.locator("#zone-error")).to_contain_text("unknown site 'elsewhere'")
    finally:
        context.close()
        pub.close()


def test_agency_page_needs_the_boards_login(mosquitto: Mosquitto, influx: Influx) -> None:
    settings = web_settings(
        mosquitto.port,
        influx.url,
        http={"host": "0.0.0.0"},
        auth={"users": {"anna": hash_password("s3cret-pass", n=2**12)}},
    )
    with (
        web_server(settings, [SITE]) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        r = http.get("/zones/test-site/library")
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=/zones/test-site/library"
        r = http.post(
            "/login",
            data={"user": "anna", "password": "s3cret-pass", "next": "/zones/test-site/library"},
        )
        assert r.status_code == 303 and r.headers["location"] == "/zones/test-site/library"
        r = http.get("/zones/test-site/library?lang=en")
        # no database yet: the page still shows what it has and says what is missing
        assert r.status_code == 503
        assert (
            "History is not available right now: InfluxDB unavailable: query error: "
            "database not found: footfall"
        ) in r.text
        create_database(influx.url)
        r = http.get("/zones/test-site/library")
        assert r.status_code == 200 and 'id="visits-today"' in r.text


def test_crowding_index_lists_the_public_displays(
    browser: Browser, mosquitto: Mosquitto, influx: Influx
) -> None:
    other = site_with_hours(ALWAYS_OPEN, "other-site", public=("kela",))
    hidden = site_with_hours(ALWAYS_OPEN, "hidden-site", public=())
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fi-FI")
    try:
        with web_server(web_settings(mosquitto.port, influx.url), [SITE, other, hidden]) as server:
            page = context.new_page()
            answer = page.goto(server.url + "/crowding/test-site")
            assert answer is not None and answer.status == 200
            expect(page.locator("h1")).to_have_text("Test Service Centre")
            expect(page.locator("h2")).to_have_text("Julkiset näytöt")
            # the zones marked public, in site-file order; youth has no display
            links = page.locator("#displays a")
            expect(links).to_have_text(["Service Centre", "Library", "Kela"])
            assert [links.nth(i).get_attribute("href") for i in range(3)] == [
                "/crowding/test-site/centre",
                "/crowding/test-site/library",
                "/crowding/test-site/kela",
            ]
            page.screenshot(path=screenshot_path("crowding-index-fi"))
            links.nth(1).click()
            expect(page).to_have_url(server.url + "/crowding/test-site/library")
            expect(page.locator("#zone-name")).to_have_text("Library")
            # with a trailing slash; every site's at /crowding
            page.goto(server.url + "/crowding/other-site/")
            expect(page.locator("#displays a")).to_have_text(["Kela"])
            page.goto(server.url + "/crowding?lang=en")
            expect(page.locator("#displays a")).to_have_text(
                [
                    "Service Centre · Test Service Centre",
                    "Library · Test Service Centre",
                    "Kela · Test Service Centre",
                    "Kela · Test Service Centre",
                ]
            )
            # a site without public displays, an unknown site: the friendly 404
            for path in ("/crowding/hidden-site", "/crowding/nowhere"):
                answer = page.goto(server.url + path + "?lang=en")
                assert answer is not None and answer.status == 404, path
                expect(page.locator("h1")).to_have_text("Page not found")
    finally:
        context.close()


# -- the forecast chart ---------------------------------------------------------------


@pytest.fixture
def display(mosquitto: Mosquitto, influx: Influx) -> Iterator[tuple[str, Publisher]]:
    """The library's display on a clock fixed just after midnight (an always-open site:
    the forecast runs the whole day, 24 hourly labels to fit)."""
    at = dt.datetime(2026, 11, 25, 0, 10, tzinfo=TZ)
    clock = fixed_clock(at)
    seed_typical(influx.url, SITE, ZONE, now_s=at.timestamp())
    pub = Publisher(mosquitto.port)
    pub.send(
        f"{PREFIX}/zone/{ZONE}/occupancy", occupancy(150, 250, int(clock() * 1000)), retain=True
    )
    try:
        with web_server(web_settings(mosquitto.port, influx.url), [SITE], now=clock) as server:
            yield server.url, pub
    finally:
        pub.close()


def label_boxes(page: Page) -> list[dict[str, Any]]:
    boxes: list[dict[str, Any]] = page.evaluate("window.footfallForecast.labels()")
    return boxes


def assert_no_collisions(page: Page, what: str) -> None:
    boxes = label_boxes(page)
    xs = sorted((b for b in boxes if b["axis"] == "x"), key=lambda b: b["left"])
    ys = sorted((b for b in boxes if b["axis"] == "y"), key=lambda b: b["top"])
    assert len(xs) >= 4 and len(ys) >= 3, f"{what}: {boxes}"
    for a, b in itertools.pairwise(xs):
        assert b["left"] - a["right"] >= 6, f"{what}: x labels {a['text']} and {b['text']} touch"
    for a, b in itertools.pairwise(ys):
        assert b["top"] - a["bottom"] >= 4, f"{what}: y labels {a['text']} and {b['text']} touch"
    chart = page.locator("#forecast").bounding_box()
    assert chart is not None
    assert xs[0]["left"] >= chart["x"] - 1 and xs[-1]["right"] <= chart["x"] + chart["width"] + 1
    assert ys[0]["left"] >= chart["x"] - 1, f"{what}: y labels cut off"


def test_forecast_has_a_now_marker_and_labels_that_do_not_collide(
    browser: Browser, display: tuple[str, Publisher]
) -> None:
    url, _pub = display
    api = httpx.get(url + "/api/v1/public/sites/test-site/zones/library/crowding?lang=en").json()
    assert api["now_time"] == "00:10"
    forecast = [p for p in api["forecast"] if p["percent"] is not None]
    assert forecast[0]["time"] == "00:00" and forecast[-1]["time"] == "23:45"
    for lang, now_word in (("en", "now"), ("fi", "nyt"), ("sv", "nu")):
        context = browser.new_context(viewport={"width": 1920, "height": 1080})
        try:
            page = context.new_page()
            page.goto(f"{url}/crowding/test-site/library?lang={lang}&kiosk=1")
            marker = page.locator("#now-marker")
            expect(marker).to_have_text(now_word)
            expect(marker).to_have_attribute("data-time", "00:10")
            # at 00:10 on an axis from 00:00 to 23:45
            over = page.locator("#forecast .u-over").bounding_box()
            box = marker.bounding_box()
            assert over is not None and box is not None
            expected_x = over["x"] + over["width"] * (10 / 60) / (23.75 - 0)
            assert abs(box["x"] - expected_x) <= 3, (box, over)
            assert box["height"] == pytest.approx(over["height"], abs=2)
            assert_no_collisions(page, f"1920x1080 {lang}")
            # the forecast as a table for screen readers
            rows = page.locator("#forecast-table tbody tr")
            expect(rows).to_have_count(len(forecast))
            first = "00:00" if lang == "en" else "00.00"
            expect(rows.first.locator("th")).to_have_text(first)
            if lang == "en":
                expect(rows.first.locator("td")).to_have_text(
                    f"{forecast[0]['percent']}% of capacity"
                )
            page.screenshot(path=screenshot_path(f"crowding-kiosk-1920-{lang}"))
        finally:
            context.close()
    # a phone and a portrait kiosk: the same rules
    for width, height in ((390, 844), (1080, 1920)):
        context = browser.new_context(viewport={"width": width, "height": height})
        try:
            page = context.new_page()
            page.goto(f"{url}/crowding/test-site/library?lang=en")
            expect(page.locator("#now-marker")).to_have_text("now")
            assert_no_collisions(page, f"{width}x{height}")
            page.screenshot(path=screenshot_path(f"crowding-{width}x{height}-en"))
        finally:
            context.close()
