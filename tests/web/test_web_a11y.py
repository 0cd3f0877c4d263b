"""Accessibility (WCAG 2.1 AA) in Debian's Chromium: axe-core (vendored in
tests/web/vendor/axe-core, so no download at test time) finds nothing serious or
critical on the board (also with its Retire dialog open), the public display (light and
dark), the login page, the reports page, the agency page and the display index; Tab
reaches every zone link, every alert button and an offline agent's Retire button with a
visible focus ring; agent state is in words, not only in colour; the
charts have text alternatives; dark mode follows the screen or `?theme=`."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from footfall_contract.timefmt import format_ts
from footfall_sim.localservices import Influx, Mosquitto
from tests.support.collector import Publisher, now_ms
from tests.support.web import (
    ALWAYS_OPEN,
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

SITE = site_with_hours(ALWAYS_OPEN)
PREFIX = "footfall/v1/test-site"
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate(
        """async tags => {
            const r = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + ": " + n.failureSummary)
            }));
        }""",
        WCAG_TAGS,
    )
    return violations


def problems(page: Page, what: str) -> list[str]:
    """Every violation; the serious and critical ones first. None of lesser impact is
    allowed either, so that one does not creep in unnoticed."""
    found = sorted(axe(page), key=lambda v: v["impact"] not in ("serious", "critical"))
    return [f"{what}: " + json.dumps(v, indent=1, ensure_ascii=False) for v in found]


def alert_payload(alert_id: str, summary: str) -> str:
    return json.dumps(
        {
            "id": alert_id,
            "rule": alert_id,
            "kind": "over_capacity",
            "severity": "critical",
            "state": "firing",
            "scope": {"zone": "kela"},
            "summary": summary,
            "started": format_ts(now_ms()),
            "ts": format_ts(now_ms()),
        }
    )


def publish_world(pub: Publisher) -> None:
    """Two agents (one offline), four zones with and without readings, an alert."""
    for agent, state in (("pi-1", "online"), ("pi-2", "offline")):
        pub.send(
            f"{PREFIX}/agent/{agent}/status",
            json.dumps({"state": state, "epoch": "e1", "ts": format_ts(now_ms()), "sw": "0.1.0"}),
            retain=True,
        )
    pub.send(f"{PREFIX}/zone/library/occupancy", occupancy(220, 250), retain=True)
    pub.send(f"{PREFIX}/zone/centre/occupancy", occupancy(310, 600), retain=True)
    pub.send(f"{PREFIX}/zone/kela/occupancy", occupancy(44, 40), retain=True)
    pub.send(
        f"{PREFIX}/alert/over-cap-kela",
        alert_payload("over-cap-kela", "Kela over capacity: 44 / 40"),
        retain=True,
    )


@dataclass
class World:
    server: WebServer
    pub: Publisher

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def world(mosquitto: Mosquitto, influx: Influx) -> Iterator[World]:
    pub = Publisher(mosquitto.port)
    publish_world(pub)
    seed_recent(influx.url, SITE, "library", hours=6, peak=180)
    seed_typical(influx.url, SITE, "library")
    # buttons need an alerts API to be configured (not called here)
    settings = web_settings(mosquitto.port, influx.url, alerts={"url": "http://127.0.0.1:9"})
    try:
        with web_server(settings, [SITE]) as server:
            yield World(server, pub)
    finally:
        pub.close()


def new_context(browser: Browser, **kw: Any) -> BrowserContext:
    # axe is injected as an inline script, which the pages' CSP forbids (rightly)
    return browser.new_context(bypass_csp=True, **kw)


def test_vendored_axe_is_the_recorded_file_and_finds_what_it_should(browser: Browser) -> None:
    recorded = (AXE.parent / "VERSION").read_text().split()
    digest = base64.b64encode(hashlib.sha256(AXE.read_bytes()).digest()).decode()
    assert f"sha256-{digest}" in recorded, "axe.min.js is not the file VERSION names"
    context = new_context(browser)
    try:
        page = context.new_page()
        page.set_content(
            '<html lang="en"><title>t</title><main><img src="data:,">'
            '<p style="color:#777;background:#888">faint</p></main></html>'
        )
        ids = {v["id"]: v["impact"] for v in axe(page)}
        assert ids == {"image-alt": "critical", "color-contrast": "serious"}, ids
    finally:
        context.close()


def test_axe_finds_nothing_serious_on_any_page(browser: Browser, world: World) -> None:
    url = world.url
    pages = [
        ("board", "/?lang=en", "#alerts-test-site .alert"),
        ("board-fi", "/?lang=fi", "#alerts-test-site .alert"),
        ("display", "/crowding/test-site/library?lang=en", "#forecast canvas"),
        ("display-over", "/crowding/test-site/kela?lang=fi", "#level"),
        ("display-dark", "/crowding/test-site/library?lang=sv&theme=dark", "#forecast canvas"),
        ("display-index", "/crowding/test-site", "#displays"),
        ("not-found", "/crowding/test-site/nope", "#displays"),
        ("login", "/login?error=1", "form"),
        ("reports", "/reports/test-site?period=last-week", "#report"),
        ("agency", "/zones/test-site/library?lang=en", "#week-table"),
        # with their language switchers, in the other languages
        ("reports-fi", "/reports/test-site?period=last-week&lang=fi", "#report"),
        ("login-sv", "/login?error=1&lang=sv", "form"),
    ]
    found: list[str] = []
    for scheme in ("light", "dark"):
        context = new_context(
            browser, viewport={"width": 1400, "height": 1000}, color_scheme=scheme
        )
        try:
            page = context.new_page()
            for name, path, ready in pages:
                page.goto(url + path)
                expect(page.locator(ready).first).to_be_attached(timeout=10_000)
                page.wait_for_timeout(300)  # charts and the stream settle
                found += problems(page, f"{name} ({scheme})")
            # the board with the Retire dialog open (modal: the rest is inert)
            page.goto(url + "/?lang=sv")
            page.get_by_role("button", name="Avveckla enheten pi-2").click()
            expect(page.get_by_role("dialog", name="Avveckla enheten pi-2?")).to_be_visible()
            found += problems(page, f"board-retire-dialog ({scheme})")
        finally:
            context.close()
    assert not found, "\n".join(found)


def focused(page: Page) -> dict[str, Any]:
    info: dict[str, Any] = page.evaluate(
        """() => {
            const e = document.activeElement, s = getComputedStyle(e);
            return {tag: e.tagName, cls: e.className, text: e.textContent.trim(),
                    href: e.getAttribute("href"), outline: s.outlineStyle,
                    width: parseFloat(s.outlineWidth), visible: e.matches(":focus-visible")};
        }"""
    )
    return info


def test_keyboard_reaches_every_zone_and_alert_action(browser: Browser, world: World) -> None:
    context = new_context(browser, viewport={"width": 1400, "height": 1000}, locale="en-GB")
    try:
        page = context.new_page()
        page.goto(world.url + "/?lang=en")
        expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
        expect(page.locator("#alerts-test-site .act-ack")).to_be_visible()
        seen = []
        for _ in range(40):
            page.keyboard.press("Tab")
            info = focused(page)
            if info["tag"] == "BODY":
                break
            # every stop shows where the focus is: a solid ring of at least 3 px
            assert info["visible"] and info["outline"] == "solid" and info["width"] >= 3, info
            seen.append(info)
            if info["text"] == "Acknowledge":
                page.screenshot(path=screenshot_path("board-keyboard"))
        hrefs = [s["href"] for s in seen if s["tag"] == "A"]
        for zone in ("centre", "library", "kela", "youth"):
            assert f"/zones/test-site/{zone}" in hrefs, (zone, seen)
        buttons = [s["text"] for s in seen if s["tag"] == "BUTTON"]
        # the offline agent's Retire (the agents come first), then the alert's buttons
        assert buttons == ["Retire", "Acknowledge", "Silence 1 h", "Silence 4 h"], seen
        assert "/reports/test-site" in hrefs
        # Enter on a zone link opens its page, Shift+Tab goes back through the buttons
        page.focus("#zone-test-site-library h3 a")
        page.keyboard.press("Enter")
        expect(page).to_have_url(world.url + "/zones/test-site/library")
        page.go_back()
        # the live snapshot renders the alerts anew: focus one of those, not of the page
        # as it came from the back/forward cache
        expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
        expect(page.locator("#alerts-test-site .act-silence >> nth=1")).to_be_visible()
        page.focus("#alerts-test-site .act-silence >> nth=1")
        page.keyboard.press("Shift+Tab")
        assert focused(page)["text"] == "Silence 1 h"
    finally:
        context.close()


def test_state_in_words_and_charts_in_text(browser: Browser, world: World) -> None:
    context = new_context(browser, viewport={"width": 1400, "height": 1000}, locale="en-GB")
    try:
        page = context.new_page()
        page.goto(world.url + "/?lang=en")
        expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
        online = page.locator("#agents-test-site .agent.online")
        offline = page.locator("#agents-test-site .agent.offline")
        expect(online).to_have_attribute("aria-label", "pi-1: online")
        expect(offline).to_have_attribute("aria-label", "pi-2: offline")
        expect(online).to_have_text("pi-1 online")  # "online" for screen readers only
        expect(offline).to_have_text("pi-2 offline Retire")  # and its Retire button
        # a mark that differs in shape, not only in colour
        marks = [
            page.eval_on_selector(sel, "e => getComputedStyle(e, '::before').content")
            for sel in ("#agents-test-site .agent.online", "#agents-test-site .agent.offline")
        ]
        assert marks[0] != marks[1] and "✓" in marks[0] and "✕" in marks[1], marks
        # the bar's colour in words: 220/250 = 88 % is very busy, 310/600 = 52 % moderate
        expect(page.locator("#zone-test-site-library .level-word")).to_have_text("Very busy")
        expect(page.locator("#zone-test-site-centre .level-word")).to_have_text("Moderately busy")
        # the sparkline says what it draws (the last reading is the live 220)
        expect(page.locator("#zone-test-site-library .spark canvas")).to_be_attached()
        page.wait_for_timeout(500)  # its history has loaded
        world.pub.send(f"{PREFIX}/zone/library/occupancy", occupancy(220, 250), retain=True)
        spark = page.locator("#zone-test-site-library .spark")
        expect(spark).to_have_attribute("role", "img")
        expect(spark).to_have_attribute("aria-label", re.compile(r", now 220$"))
        label = spark.get_attribute("aria-label") or ""
        figures = re.fullmatch(
            r"Library: people in over the last 6 h, fewest (\d+), most (\d+), now 220", label
        )
        assert figures, label
        # seed_recent: a wave between 55 % and 100 % of 180, then the live 220
        assert 0 <= int(figures[1]) <= 180 * 0.56 and int(figures[2]) == 220, label
    finally:
        context.close()


def background(page: Page, selector: str = "body") -> str:
    color: str = page.eval_on_selector(selector, "e => getComputedStyle(e).backgroundColor")
    return color


def test_dark_mode_follows_the_screen_and_theme_switch(browser: Browser, world: World) -> None:
    display = world.url + "/crowding/test-site/library"
    dark_bg, light_bg = "rgb(11, 13, 16)", "rgb(168, 35, 27)"  # very busy: #a8231b
    for scheme, query, expected in (
        ("light", "", light_bg),
        ("light", "?theme=dark", dark_bg),
        ("light", "?theme=DARK&lang=en", dark_bg),
        ("dark", "", dark_bg),
        ("dark", "?theme=light", light_bg),
        ("light", "?theme=purple", light_bg),  # anything else: the screen decides
    ):
        context = new_context(
            browser, viewport={"width": 1920, "height": 1080}, color_scheme=scheme, locale="fi-FI"
        )
        try:
            page = context.new_page()
            page.goto(display + query)
            expect(page.locator("#level")).to_have_text(
                "Very busy" if "lang=en" in query else "Ruuhkaista"
            )
            assert background(page) == expected, (scheme, query)
            if expected == dark_bg:
                # the level keeps its colour as the text's, on black
                color = page.eval_on_selector("#level", "e => getComputedStyle(e).color")
                assert color == "rgb(255, 123, 114)", color
                # the language switcher keeps the theme
                href = page.get_attribute("a[data-lang=sv]", "href") or ""
                assert "theme=dark" in href or scheme == "dark", href
        finally:
            context.close()
    context = new_context(browser, viewport={"width": 1920, "height": 1080}, color_scheme="dark")
    try:
        page = context.new_page()
        page.goto(display + "?theme=dark&kiosk=1")
        page.wait_for_timeout(300)
        page.screenshot(path=screenshot_path("crowding-kiosk-dark"))
        page.goto(world.url + "/?lang=en")
        expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
        assert background(page) == "rgb(15, 20, 25)"
        assert background(page, "#zone-test-site-library") == "rgb(26, 33, 41)"
        page.screenshot(path=screenshot_path("board-dark"), full_page=True)
    finally:
        context.close()
