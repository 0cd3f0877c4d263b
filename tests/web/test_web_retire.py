"""The board's Retire button in headless Chromium, against a real Mosquitto: an offline
agent's button is reached with Tab, asks first in a dialog (Escape cancels), and
confirmed clears the agent's retained status at the broker (a fresh MQTT subscription
gets none) and takes the row off the board; an online agent has no button, and a site
without an alerts service still has it (retiring does not go through footfall-alerts); a
refusal (the Pi came back online meanwhile, a stale CSRF
token) shows the server's reason in words."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from footfall_contract.timefmt import format_ts
from footfall_contract.topics import agent_subscription, agent_topic
from footfall_sim.localservices import Influx, Mosquitto
from footfall_web.auth import hash_password
from tests.support.collector import Publisher, now_ms
from tests.support.mqtt import Recorder
from tests.support.web import (
    ALWAYS_OPEN,
    WebServer,
    screenshot_path,
    site_with_hours,
    web_server,
    web_settings,
)
from tests.web.test_web_browser import only_local_requests

pytestmark = pytest.mark.services

SITE = "test-site"
OPEN = site_with_hours(ALWAYS_OPEN)  # board actions configured
QUIET = site_with_hours(ALWAYS_OPEN, "quiet-site")  # none: no alert buttons
PASSWORD = "s3cret-pass"


def status(state: str) -> str:
    return json.dumps({"state": state, "epoch": "e1", "ts": format_ts(now_ms()), "sw": "0.1.0"})


def retained_statuses(port: int, site: str) -> set[str]:
    """The agents whose status the broker keeps, as a new subscriber gets them."""
    late = Recorder(port, agent_subscription(site, "status"))
    try:
        late.sync()  # every retained status it gets is in
        return {m.topic.split("/")[-2] for m in late.messages if m.payload}
    finally:
        late.close()


def log_in(page: Page, server: WebServer) -> None:
    page.goto(server.url + "/login?next=/")
    page.fill("input[name=user]", "anna")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(server.url + "/")
    expect(page.locator("#conn")).to_have_text("live", timeout=10_000)


def row(page: Page, agent: str, site: str = SITE) -> Locator:
    return page.locator(f"#agents-{site} li.agent", has_text=agent)


def focused(page: Page) -> dict[str, Any]:
    info: dict[str, Any] = page.evaluate(
        """() => { const e = document.activeElement;
            return {tag: e.tagName, id: e.id, label: e.getAttribute("aria-label"),
                    text: e.textContent.trim(), visible: e.matches(":focus-visible")}; }"""
    )
    return info


def test_board_retires_an_offline_agent_and_says_why_it_could_not(
    browser: Browser, mosquitto: Mosquitto, influx: Influx
) -> None:
    pub = Publisher(mosquitto.port)
    agents = {
        "door-pi-1": "online",
        "door-pi-3": "offline",
        "door-pi-4": "offline",
        "door-pi-5": "offline",
    }
    for agent, state in agents.items():
        pub.send(agent_topic(SITE, agent, "status"), status(state), retain=True)
    pub.send(agent_topic("quiet-site", "old-pi", "status"), status("offline"), retain=True)
    assert retained_statuses(mosquitto.port, SITE) == set(agents)
    settings = web_settings(
        mosquitto.port,
        influx.url,
        http={"host": "0.0.0.0"},
        auth={"users": {"anna": hash_password(PASSWORD, n=2**12)}},
        # the board's action buttons are on where an alerts API is set (not called here)
        alerts={"sites": {SITE: "http://127.0.0.1:9"}},
    )
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-GB")
    try:
        with web_server(settings, [OPEN, QUIET]) as server:
            page = context.new_page()
            foreign = only_local_requests(page, server)
            log_in(page, server)
            retire3 = page.get_by_role("button", name="Retire agent door-pi-3")
            expect(row(page, "door-pi-3")).to_have_attribute("aria-label", "door-pi-3: offline")
            expect(retire3).to_have_text("Retire")
            # online: no button; a site without an alerts service: the button all the same
            expect(row(page, "door-pi-1")).to_have_attribute("aria-label", "door-pi-1: online")
            expect(row(page, "door-pi-1").locator("button")).to_have_count(0)
            expect(row(page, "old-pi", "quiet-site")).to_contain_text("old-pi offline")
            retire_old = row(page, "old-pi", "quiet-site").get_by_role("button")
            expect(retire_old).to_have_accessible_name("Retire agent old-pi")
            expect(page.locator("#sites .act-retire")).to_have_count(4)

            # Tab reaches it; Enter asks, with Cancel focused; Escape leaves everything
            for _ in range(30):
                page.keyboard.press("Tab")
                if focused(page)["label"] == "Retire agent door-pi-3":
                    break
            info = focused(page)
            assert info["tag"] == "BUTTON" and info["visible"], info
            dialog = page.get_by_role("dialog", name="Retire agent door-pi-3?")
            page.keyboard.press("Enter")
            expect(dialog).to_be_visible()
            expect(dialog).to_contain_text("Only for a Pi that is gone for good")
            expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
            page.keyboard.press("Escape")
            expect(dialog).to_be_hidden()
            # focus comes back in the dialog's close event (and may follow a re-render)
            expect(page.get_by_role("button", name="Retire agent door-pi-3")).to_be_focused()
            assert retained_statuses(mosquitto.port, SITE) == set(agents)

            # confirmed: gone from the broker and from the board, said in words
            page.keyboard.press("Enter")
            expect(dialog).to_be_visible()
            page.keyboard.press("Tab")
            expect(dialog.get_by_role("button", name="Retire", exact=True)).to_be_focused()
            page.screenshot(path=screenshot_path("board-retire-dialog"))
            page.keyboard.press("Enter")
            notes = page.locator(f"#agent-notes-{SITE}")
            expect(notes.get_by_role("status")).to_have_text("Agent door-pi-3 retired")
            expect(row(page, "door-pi-3")).to_have_count(0)
            expect(dialog).to_be_hidden()
            expect(notes).to_be_focused()  # not lost to the page
            assert retained_statuses(mosquitto.port, SITE) == {
                "door-pi-1",
                "door-pi-4",
                "door-pi-5",
            }
            # a board opened now does not know it either
            fresh = context.new_page()
            fresh.goto(server.url + "/")
            expect(row(fresh, "door-pi-4")).to_be_visible(timeout=10_000)
            expect(row(fresh, "door-pi-3")).to_have_count(0)
            fresh.close()

            # door-pi-4 comes back while its dialog is open: 409, the reason in words
            page.get_by_role("button", name="Retire agent door-pi-4").click()
            expect(page.get_by_role("dialog", name="Retire agent door-pi-4?")).to_be_visible()
            pub.send(agent_topic(SITE, "door-pi-4", "status"), status("online"), retain=True)
            expect(row(page, "door-pi-4")).to_have_attribute("aria-label", "door-pi-4: online")
            expect(row(page, "door-pi-4").locator("button")).to_have_count(0)
            page.locator("#retire-dialog button[value=retire]").click()
            refusal = notes.get_by_role("alert")
            expect(refusal).to_contain_text(
                "Retiring door-pi-4 failed: agent 'door-pi-4' of site 'test-site' is online "
                "(status since "
            )
            expect(notes.get_by_role("status")).to_have_text("")
            expect(row(page, "door-pi-4")).to_be_visible()

            # logged in anew in another tab: this page's CSRF token is stale, 403
            other = context.new_page()
            log_in(other, server)
            other.close()
            page.get_by_role("button", name="Retire agent door-pi-5").click()
            page.locator("#retire-dialog button[value=retire]").click()
            expect(refusal).to_have_text(
                "Retiring door-pi-5 failed: missing or stale X-CSRF-Token header "
                "(reload the board and try again)"
            )
            expect(row(page, "door-pi-5")).to_have_attribute("aria-label", "door-pi-5: offline")
            # the keyboard stays on the button that failed
            expect(page.get_by_role("button", name="Retire agent door-pi-5")).to_be_focused()
            page.screenshot(path=screenshot_path("board-retire-refused"), full_page=True)
            assert retained_statuses(mosquitto.port, SITE) == {
                "door-pi-1",
                "door-pi-4",
                "door-pi-5",
            }

            # Finnish and Swedish
            for lang, name, word in (
                ("fi", "Poista käytöstä: laite door-pi-5", "Poista käytöstä"),
                ("sv", "Avveckla enheten door-pi-5", "Avveckla"),
            ):
                page.goto(f"{server.url}/?lang={lang}")
                expect(page.get_by_role("button", name=name)).to_have_text(word)
            assert foreign == []
    finally:
        context.close()
        pub.close()
