"""The pages in a real headless Chromium (Debian's, never downloaded): the live board
follows a crossing through the real collector, the public display shows the right level,
language and state, the board needs a login beyond loopback. Screenshots go to
test-artifacts/ for review."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import Browser, Page, expect

from footfall_collector.service import Collector
from footfall_contract.timefmt import format_ts
from footfall_sim.localservices import Influx, Mosquitto
from footfall_web.auth import hash_password
from tests.support.collector import (
    Publisher,
    collector_settings,
    crossing_batch,
    now_ms,
    small_site,
)
from tests.support.web import (
    ALWAYS_OPEN,
    NEVER_OPEN,
    WebServer,
    occupancy,
    screenshot_path,
    seed_recent,
    seed_typical,
    site_with_hours,
    web_server,
    web_settings,
)

pytestmark = pytest.mark.services

OPEN = site_with_hours(ALWAYS_OPEN)
CLOSED = site_with_hours(NEVER_OPEN, "closed-site")
PREFIX = "footfall/v1/test-site"


def only_local_requests(page: Page, server: WebServer) -> list[str]:
    """Every URL the page asks for that is not the server itself (should stay empty)."""
    foreign: list[str] = []
    page.on(
        "request",
        lambda req: None if req.url.startswith(server.url) else foreign.append(req.url),
    )
    return foreign


def test_board_follows_a_crossing_through_the_collector(
    browser: Browser, mosquitto: Mosquitto, influx: Influx
) -> None:
    collector = Collector(collector_settings(mosquitto.port, influx.url), small_site())
    collector.start()
    assert collector.ready.wait(15)
    pub = Publisher(mosquitto.port)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pub.send(
            f"{PREFIX}/agent/pi-1/status",
            json.dumps(
                {"state": "online", "epoch": "e1", "ts": format_ts(now_ms()), "sw": "0.1.0"}
            ),
            retain=True,
        )
        pub.send(
            f"{PREFIX}/agent/pi-2/status",
            json.dumps(
                {"state": "offline", "epoch": "e2", "ts": format_ts(now_ms()), "sw": "0.1.0"}
            ),
            retain=True,
        )
        for zone, peak in (("centre", 400), ("library", 180), ("kela", 30)):
            seed_recent(influx.url, OPEN, zone, hours=6, peak=peak)
        with web_server(web_settings(mosquitto.port, influx.url), [OPEN, CLOSED]) as server:
            page = context.new_page()
            foreign = only_local_requests(page, server)
            page.goto(server.url + "/")
            count = page.locator("#count-test-site-library")
            expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
            expect(count).to_have_text("0", timeout=10_000)  # the collector's first publish
            expect(page.locator("#site-closed-site h2")).to_have_text(
                "Test Service Centreclosed-site"
            )
            expect(page.locator("#agents-test-site .agent.offline")).to_have_text(
                "pi-2 offline Retire"
            )

            for n in range(1, 4):
                sent = time.monotonic()
                pub.send(
                    f"{PREFIX}/agent/pi-1/crossing",
                    crossing_batch("e1", [(n, "library-mall", "in")]),
                )
                page.wait_for_function(
                    "n => document.querySelector('#count-test-site-library').textContent == n",
                    arg=n,
                    timeout=2_000,
                )
                assert time.monotonic() - sent < 2.0
            expect(page.locator("#count-test-site-centre")).to_have_text("3")

            pub.send(
                f"{PREFIX}/alert/over-cap-kela",
                json.dumps(
                    {
                        "id": "over-cap-kela",
                        "rule": "kela over capacity",
                        "kind": "over_capacity",
                        "severity": "critical",
                        "state": "firing",
                        "scope": {"zone": "kela"},
                        "summary": "Kela over capacity: 44 / 40",
                        "started": format_ts(now_ms()),
                        "ts": format_ts(now_ms()),
                    }
                ),
                retain=True,
            )
            expect(page.locator("#alerts-test-site .alert.critical")).to_contain_text(
                "Kela over capacity", timeout=2_000
            )
            page.screenshot(path=screenshot_path("board"), full_page=True)
            assert foreign == []
    finally:
        context.close()
        pub.close()
        collector.stop()


def test_public_display_levels_languages_and_states(
    browser: Browser, mosquitto: Mosquitto, influx: Influx
) -> None:
    pub = Publisher(mosquitto.port)
    pub.send(f"{PREFIX}/zone/library/occupancy", occupancy(220, 250), retain=True)  # 88 %
    pub.send(f"{PREFIX}/zone/kela/occupancy", occupancy(20, 40, now_ms() - 600_000), retain=True)
    seed_typical(influx.url, OPEN, "library")
    settings = web_settings(mosquitto.port, influx.url, crowding={"refresh_s": 1})
    try:
        with web_server(settings, [OPEN, CLOSED]) as server:
            page_url = server.url + "/crowding/test-site/library"

            # a kiosk, Finnish from the browser's language
            kiosk = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="fi-FI")
            page = kiosk.new_page()
            foreign = only_local_requests(page, server)
            page.goto(page_url)
            expect(page.locator("#level")).to_have_text("Ruuhkaista")
            expect(page.locator("#percent")).to_have_text("88 % kapasiteetista")
            expect(page.locator("#peak")).to_have_text("Yleensä vilkkainta klo 15.00")
            assert page.locator("html").get_attribute("lang") == "fi"
            expect(page.locator("body")).to_have_class("crowding state-open level-very_busy")
            size = page.eval_on_selector("#level", "e => parseFloat(getComputedStyle(e).fontSize)")
            assert size >= 120, f"level text {size}px: too small for 5 m"
            page.wait_for_timeout(300)  # the forecast chart draws after load
            page.screenshot(path=screenshot_path("crowding-kiosk-fi"))
            # the numbers follow the sensors without a reload
            pub.send(f"{PREFIX}/zone/library/occupancy", occupancy(40, 250), retain=True)
            expect(page.locator("#level")).to_have_text("Rauhallista", timeout=5_000)
            expect(page.locator("#percent")).to_have_text("16 % kapasiteetista")
            assert foreign == []
            kiosk.close()

            # a phone in English, then Swedish from the switcher (remembered)
            phone = browser.new_context(
                viewport={"width": 390, "height": 844},
                locale="en-US",
                is_mobile=True,
                has_touch=True,
                device_scale_factor=2,
            )
            page = phone.new_page()
            page.goto(page_url)
            expect(page.locator("#level")).to_have_text("Quiet")
            expect(page.locator("#percent")).to_have_text("16% of capacity")
            expect(page.locator("#peak")).to_have_text("Usually busiest at 15:00")
            overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 0, "the phone page scrolls sideways"
            pub.send(f"{PREFIX}/zone/library/occupancy", occupancy(160, 250), retain=True)
            expect(page.locator("#level")).to_have_text("Busy", timeout=5_000)
            page.screenshot(path=screenshot_path("crowding-phone-en"), full_page=True)
            page.click("a[data-lang=sv]")
            expect(page.locator("#level")).to_have_text("Livligt")
            expect(page.locator("#peak")).to_have_text("Oftast mest folk kl. 15.00")
            page.goto(page_url)  # the choice is remembered
            expect(page.locator("#percent")).to_have_text("64 % av kapaciteten")
            assert page.locator("html").get_attribute("lang") == "sv"

            # closed outside opening hours; no data when the sensors are silent
            page.goto(server.url + "/crowding/closed-site/library?lang=en")
            expect(page.locator("#level")).to_have_text("Closed")
            expect(page.locator("#percent")).to_have_text("")
            expect(page.locator("#hours")).to_have_text("Closed today")
            page.screenshot(path=screenshot_path("crowding-phone-closed"))
            page.goto(server.url + "/crowding/test-site/kela")  # 10 min old
            expect(page.locator("#level")).to_have_text("No data")
            expect(page.locator("#percent")).to_have_text("Figures are not available right now")
            assert "50" not in page.locator("main").inner_text()  # the stale 20/40 is not shown
            page.screenshot(path=screenshot_path("crowding-phone-no-data"))
            page.goto(server.url + "/crowding/test-site/centre")  # never reported
            expect(page.locator("#level")).to_have_text("No data")
            phone.close()
    finally:
        pub.close()


def test_board_login_beyond_loopback(
    browser: Browser, mosquitto: Mosquitto, influx: Influx
) -> None:
    settings = web_settings(
        mosquitto.port,
        influx.url,
        http={"host": "0.0.0.0"},
        auth={"users": {"anna": hash_password("s3cret-pass", n=2**12)}},
    )
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        with web_server(settings, [OPEN]) as server:
            page = context.new_page()
            page.goto(server.url + "/")
            expect(page).to_have_url(f"{server.url}/login?next=/")
            page.fill("input[name=user]", "anna")
            page.fill("input[name=password]", "wrong")
            page.click("button[type=submit]")
            expect(page.locator(".error")).to_be_visible()
            page.screenshot(path=screenshot_path("login"))
            page.fill("input[name=user]", "anna")
            page.fill("input[name=password]", "s3cret-pass")
            page.click("button[type=submit]")
            expect(page).to_have_url(server.url + "/")
            expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
            expect(page.locator("#zone-test-site-library")).to_be_visible()
    finally:
        context.close()


def test_public_display_drops_its_figures_when_the_server_is_gone(
    browser: Browser, mosquitto: Mosquitto, influx: Influx
) -> None:
    """A kiosk that loses the server must not keep showing the last level as if live."""
    settings = web_settings(
        mosquitto.port, influx.url, crowding={"refresh_s": 1, "stale_after_s": 60}
    )
    pub = Publisher(mosquitto.port)
    server = WebServer(settings, [OPEN]).start()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    try:
        # valid for about 12 more seconds
        pub.send(
            f"{PREFIX}/zone/library/occupancy",
            occupancy(160, 250, now_ms() - 48_000),
            retain=True,
        )
        page = context.new_page()
        page.goto(server.url + "/crowding/test-site/library")
        expect(page.locator("#level")).to_have_text("Busy", timeout=5_000)
        server.stop()
        expect(page.locator("#level")).to_have_text("No data", timeout=20_000)
        expect(page.locator("#percent")).to_have_text("Figures are not available right now")
        expect(page.locator("body")).to_have_class("crowding state-no_data")
    finally:
        context.close()
        server.stop()
        pub.close()
