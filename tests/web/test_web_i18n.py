"""Names per language, the board in fi/sv/en with site-local times, the public display's
friendly answers (a language it does not speak, a display that does not exist) and its
privacy (only zones the site file makes public; no count beside a percent), against the
real server, Mosquitto, InfluxDB and Debian's Chromium."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, expect

from footfall_contract.site import load_site
from footfall_contract.timefmt import format_ts
from footfall_sim.localservices import Influx, Mosquitto
from footfall_web import i18n
from tests.support.collector import Publisher, now_ms, wait_for
from tests.support.web import (
    ALWAYS_OPEN,
    occupancy,
    screenshot_path,
    seed_typical,
    site_with_hours,
    web_server,
    web_settings,
)

pytestmark = pytest.mark.services

HELSINKI = ZoneInfo("Europe/Helsinki")
ISO_OMENA = load_site(Path(__file__).parents[2] / "deploy" / "sites" / "iso-omena.yaml")
PUBLIC_API = "/api/v1/public/sites/{site}/zones/{zone}/crowding"


def noon_clock() -> tuple[float, Callable[[], float]]:
    """Today 12:00 in Helsinki, and a clock that runs on from it: every shipped zone
    that opens at all today is open then, whatever the hour the test runs at."""
    noon = dt.datetime.combine(dt.datetime.now(HELSINKI).date(), dt.time(12), HELSINKI)
    start = time.time()
    return noon.timestamp(), lambda: noon.timestamp() + (time.time() - start)


def typical_at(minute: int, peak: int, peak_hour: int = 15) -> int | None:
    """The level `seed_typical` wrote at `minute` of the day (06:00-21:45), else None."""
    if not 6 * 60 <= minute < 22 * 60:
        return None
    return max(0, round(peak * (1 - abs(minute - peak_hour * 60) / 60 / 9)))


def helsinki_label(ts_ms: int, lang: str) -> str:
    """How the board writes an instant: the site's wall clock and its zone, as the
    browser's Intl formats it for fi-FI ("10.18 UTC+2") and en-GB ("10:18 EET")."""
    local = dt.datetime.fromtimestamp(ts_ms / 1000, HELSINKI)
    hours = int((local.utcoffset() or dt.timedelta()).total_seconds() // 3600)
    if lang == "fi":
        return f"{local:%H.%M} UTC+{hours}"
    return f"{local:%H:%M} {'EEST' if hours == 3 else 'EET'}"


# -- the language rules -------------------------------------------------------------------


def test_board_texts_complete_and_language_codes_in_any_case() -> None:
    def placeholders(text: str) -> set[str]:
        return set(re.findall(r"\{(\w+)\}", text))

    for lang in i18n.LANGS:
        assert i18n.BOARD_TEXTS[lang].keys() == i18n.BOARD_TEXTS["en"].keys(), lang
        for key, text in i18n.BOARD_TEXTS[lang].items():
            assert placeholders(text) == placeholders(i18n.BOARD_TEXTS["en"][key]), (lang, key)
    assert [i18n.parse_lang(v) for v in ("FI", " sv ", "En", "fi-FI", "de", "", None)] == [
        "fi",
        "sv",
        "en",
        None,
        None,
        None,
        None,
    ]
    assert i18n.choose("de", None, None) == "fi"  # nothing it speaks: Finnish
    assert i18n.choose("de", None, "de-DE,de;q=0.9") == "fi"
    assert i18n.choose("de", "sv", "en") == "sv"  # passed over, the cookie decides
    assert i18n.choose("EN", "sv", "fi") == "en"


# -- privacy and the JSON API -----------------------------------------------------------


def test_public_endpoints_only_for_public_zones_and_no_count_beside_a_percent(
    mosquitto: Mosquitto, influx: Influx
) -> None:
    # library (capacity 250) and youth (no capacity) public; centre and kela not
    site = site_with_hours(ALWAYS_OPEN, public=("library", "youth"))
    noon, clock = noon_clock()
    topic = "footfall/v1/test-site/zone"
    pub = Publisher(mosquitto.port)
    pub.send(f"{topic}/library/occupancy", occupancy(160, 250, int(noon * 1000)), retain=True)
    pub.send(f"{topic}/kela/occupancy", occupancy(20, 40, int(noon * 1000)), retain=True)
    pub.send(f"{topic}/youth/occupancy", occupancy(7, None, int(noon * 1000)), retain=True)
    seed_typical(influx.url, site, "library", peak_count=200, now_s=noon)
    seed_typical(influx.url, site, "youth", peak_count=20, now_s=noon)
    try:
        with (
            web_server(web_settings(mosquitto.port, influx.url), [site], now=clock) as server,
            httpx.Client(base_url=server.url, timeout=10) as http,
        ):
            url = PUBLIC_API.format(site="test-site", zone="library") + "?lang=en"
            wait_for(lambda: http.get(url).json()["state"] == "open", 10, "library reading")
            library = http.get(url).json()
            assert (library["percent"], library["count"], library["level"]) == (64, None, "busy")
            # the rest of today from 12:00, every 15 minutes: a percent, never a count
            times = [p["time"] for p in library["forecast"]]
            assert times == [f"{m // 60:02d}:{m % 60:02d}" for m in range(12 * 60, 24 * 60, 15)]
            for point in library["forecast"]:
                assert point["count"] is None, point  # count and percent give the capacity
                hh, mm = point["time"].split(":")
                value = typical_at(int(hh) * 60 + int(mm), 200)
                if value is not None:
                    assert point["percent"] == round(value / 250 * 100), point

            youth = http.get(PUBLIC_API.format(site="test-site", zone="youth")).json()
            assert (youth["count"], youth["percent"]) == (7, None)  # no capacity: people
            assert len(youth["forecast"]) == 48
            for point in youth["forecast"]:
                assert point["percent"] is None, point
                hh, mm = point["time"].split(":")
                value = typical_at(int(hh) * 60 + int(mm), 20)
                if value is not None:
                    assert point["count"] == value, point

            # not public (centre, kela), unknown: the same 404, no figures
            for zone in ("kela", "centre", "nope"):
                r = http.get(PUBLIC_API.format(site="test-site", zone=zone))
                assert r.status_code == 404, (zone, r.text)
                assert r.json() == {
                    "detail": f"no public display for zone {zone!r} of site 'test-site'"
                }
                page = http.get(f"/crowding/test-site/{zone}")
                assert page.status_code == 404 and page.headers["content-type"].startswith(
                    "text/html"
                )
                # it lists the public displays, and only those
                assert "Library" in page.text and "Youth services" in page.text
                assert "Kela" not in page.text and "Service Centre</a>" not in page.text
            r = http.get(PUBLIC_API.format(site="nowhere", zone="library"))
            assert r.status_code == 404 and "unknown site 'nowhere'" in r.json()["detail"]

            # the API names a bad language; any case of a good one is that language
            r = http.get(PUBLIC_API.format(site="test-site", zone="library") + "?lang=de")
            assert r.status_code == 400
            assert r.json()["detail"] == "lang must be one of fi, sv, en, not 'de'"
            r = http.get(PUBLIC_API.format(site="test-site", zone="library") + "?lang=FI")
            assert r.status_code == 200 and r.json()["lang"] == "fi"
            assert r.json()["label"] == "Vilkasta"

            sites = http.get("/api/v1/sites").json()["sites"]
            assert {z["id"]: z["public"] for z in sites[0]["zones"]} == {
                "centre": False,
                "library": True,
                "kela": False,
                "youth": True,
            }

        # crowding.public_zones narrows the site file's choice, never widens it
        narrowed = web_settings(
            mosquitto.port,
            influx.url,
            crowding={"public_zones": ["test-site/library", "test-site/kela"]},
        )
        with (
            web_server(narrowed, [site], now=clock) as server,
            httpx.Client(base_url=server.url, timeout=10) as http,
        ):
            status = {
                zone: http.get(PUBLIC_API.format(site="test-site", zone=zone)).status_code
                for zone in ("library", "youth", "kela", "centre")
            }
            assert status == {"library": 200, "youth": 404, "kela": 404, "centre": 404}
    finally:
        pub.close()


# -- the public display in Chromium -----------------------------------------------------


def test_public_display_speaks_the_zone_name_and_answers_people_not_json(
    browser: Browser, mosquitto: Mosquitto, influx: Influx
) -> None:
    noon, clock = noon_clock()
    pub = Publisher(mosquitto.port)
    pub.send(
        "footfall/v1/iso-omena/zone/library/occupancy",
        occupancy(100, 350, int(noon * 1000)),  # 29 %: quiet
        retain=True,
    )
    finnish = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fi-FI")
    german = browser.new_context(viewport={"width": 390, "height": 844}, locale="de-DE")
    try:
        settings = web_settings(mosquitto.port, influx.url)
        with web_server(settings, [ISO_OMENA], now=clock) as server:
            page = finnish.new_page()
            page.goto(server.url + "/crowding/iso-omena/library")
            expect(page.locator("#zone-name")).to_have_text("Iso Omenan kirjasto")
            expect(page.locator("#level")).to_have_text("Rauhallista")
            expect(page).to_have_title("Iso Omenan kirjasto · Rauhallista")
            page.click("a[data-lang=sv]")
            expect(page.locator("#zone-name")).to_have_text("Iso Omena bibliotek")
            page.click("a[data-lang=en]")
            expect(page.locator("#zone-name")).to_have_text("Iso Omena Library")

            # ?lang=FI is Finnish (and remembered); ?lang=de falls back: neither the
            # cookie nor the browser (de-DE) names a language it speaks, so Finnish
            page = german.new_page()
            answer = page.goto(server.url + "/crowding/iso-omena/library?lang=de")
            assert answer is not None and answer.status == 200
            expect(page.locator("#zone-name")).to_have_text("Iso Omenan kirjasto")
            assert page.locator("html").get_attribute("lang") == "fi"
            assert not [c for c in german.cookies() if c["name"] == "footfall_lang"]
            page.goto(server.url + "/crowding/iso-omena/library?lang=SV")
            expect(page.locator("#level")).to_have_text("Lugnt")
            page.goto(server.url + "/crowding/iso-omena/library")  # remembered as sv
            expect(page.locator("#zone-name")).to_have_text("Iso Omena bibliotek")
            page.goto(server.url + "/crowding/iso-omena/library?lang=FI")
            expect(page.locator("#zone-name")).to_have_text("Iso Omenan kirjasto")
            assert page.locator("html").get_attribute("lang") == "fi"

            # a display that is not public, an unknown one, a wrong path: one friendly
            # page in the visitor's language, listing the displays there are
            page = finnish.new_page()
            page.goto(server.url + "/crowding/iso-omena/library?lang=fi")
            for path in (
                "/crowding/iso-omena/mental-health",
                "/crowding/iso-omena/no-such-zone",
                "/crowding/nowhere/library",
                "/crowding/iso-omena/library/extra",
            ):
                answer = page.goto(server.url + path)
                assert answer is not None and answer.status == 404, path
                assert answer.headers["content-type"].startswith("text/html"), path
                expect(page.locator("h1")).to_have_text("Sivua ei löytynyt")
                expect(page.locator("#not-found-text")).to_have_text(
                    "Tällä osoitteella ei ole julkista näyttöä."
                )
                expect(page.locator("#displays a")).to_have_text(
                    ["Palvelutori", "Iso Omenan kirjasto"]
                )
                assert "Mielenterveys" not in page.content()
            page.screenshot(path=screenshot_path("crowding-not-found-fi"))
            page.click("a[data-lang=en]")
            expect(page.locator("h1")).to_have_text("Page not found")
            expect(page.locator("#displays a")).to_have_text(
                ["Service Centre", "Iso Omena Library"]
            )
            page.click("#displays a >> nth=1")
            expect(page).to_have_url(server.url + "/crowding/iso-omena/library")
            expect(page.locator("#level")).to_have_text("Quiet")
    finally:
        finnish.close()
        german.close()
        pub.close()


# -- the live board in Chromium ---------------------------------------------------------


def test_board_in_finnish_with_names_and_site_local_times(
    browser: Browser, mosquitto: Mosquitto, influx: Influx
) -> None:
    started = now_ms() - 5_000
    silenced = started + 90 * 60_000
    pub = Publisher(mosquitto.port)
    prefix = "footfall/v1/iso-omena"
    pub.send(f"{prefix}/zone/library/occupancy", occupancy(120, 350), retain=True)
    pub.send(
        f"{prefix}/agent/pi-kela/status",
        json.dumps({"state": "offline", "epoch": "e1", "ts": format_ts(started), "sw": "0.3.1"}),
        retain=True,
    )
    pub.send(
        f"{prefix}/alert/over-cap-kela",
        json.dumps(
            {
                "id": "over-cap-kela",
                "rule": "kela over capacity",
                "kind": "over_capacity",
                "severity": "critical",
                "state": "firing",
                "scope": {"zone": "kela"},
                "summary": "Kela over capacity: 55 / 50",
                "started": format_ts(started),
                "ts": format_ts(started),
                "silenced_until": format_ts(silenced),
            }
        ),
        retain=True,
    )
    # a browser in New York: the board must still show Helsinki's clock, and say so
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, locale="fi-FI", timezone_id="America/New_York"
    )
    try:
        with web_server(web_settings(mosquitto.port, influx.url), [ISO_OMENA]) as server:
            page = context.new_page()
            page.goto(server.url + "/")
            assert page.locator("html").get_attribute("lang") == "fi"
            expect(page.locator("h1")).to_have_text("Kävijätilanne nyt")
            expect(page.locator("#conn")).to_have_text("ajantasalla", timeout=10_000)
            expect(page.locator("#site-iso-omena h2")).to_have_text(
                "Iso Omenan palvelutoriiso-omena"
            )
            expect(page.locator("#tz-iso-omena")).to_have_text("Ajat: Europe/Helsinki")

            library = page.locator("#zone-iso-omena-library h3")
            expect(library).to_have_text("Iso Omenan kirjasto osa: Palvelutori")
            expect(page.locator("#zone-iso-omena-kohtaamo h3")).to_have_text(
                "Kohtaamo osa: Iso Omenan kirjasto"
            )
            clinic = page.locator("#zone-iso-omena-mental-health h3")
            expect(clinic).to_have_attribute(
                "title", "Mielenterveys- ja päihdepalvelut (osa: Palvelutori)"
            )
            expect(page.locator("#count-iso-omena-library")).to_have_text("120")
            expect(page.locator("#zone-iso-omena-library .meta")).to_have_text(
                re.compile(r"^päivitetty \d+ s sitten$")
            )

            alert = page.locator("#alerts-iso-omena .alert.critical")
            expect(alert).to_contain_text(f"({helsinki_label(started, 'fi')} alkaen)")
            expect(alert.locator(".silenced")).to_have_text(
                f"vaiennettu klo {helsinki_label(silenced, 'fi')} asti"
            )
            expect(alert.locator("b")).to_have_text("kriittinen")
            agent = page.locator("#agents-iso-omena .agent.offline")
            expect(agent).to_have_text("pi-kela ei verkossa Poista käytöstä")
            expect(agent).to_have_attribute(
                "title", f"ei verkossa {helsinki_label(started, 'fi')} alkaen · ohjelmisto 0.3.1"
            )
            page.screenshot(path=screenshot_path("board-fi"), full_page=True)

            # the switcher: English, remembered in the same cookie as the public display's
            page.click("a[data-lang=en]")
            expect(page.locator("h1")).to_have_text("Live occupancy")
            expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
            expect(page.locator("#zone-iso-omena-library h3")).to_have_text(
                "Iso Omena Library in Service Centre"
            )
            alert = page.locator("#alerts-iso-omena .alert.critical")
            expect(alert).to_contain_text(f"(since {helsinki_label(started, 'en')})")
            page.goto(server.url + "/crowding/iso-omena/library")
            expect(page.locator("#zone-name")).to_have_text("Iso Omena Library")
            page.goto(server.url + "/?lang=sv")
            expect(page.locator("h1")).to_have_text("Besökarläget nu")
            expect(page.locator("#zone-iso-omena-library h3")).to_have_text(
                "Iso Omena bibliotek i Servicetorget"
            )
    finally:
        context.close()
        pub.close()
