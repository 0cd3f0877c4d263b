"""Acknowledging and silencing alerts from the live board: the pure pieces, then the real
thing — Mosquitto, InfluxDB, the real footfall-alerts service with a token, footfall-web
with a login, and the board in headless Chromium."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect
from pydantic import ValidationError

from footfall_alerts.cli import start_with_api
from footfall_alerts.config import AlertsSettings
from footfall_alerts.rules import parse_rules
from footfall_alerts.service import AlertsService
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import alert_topic, zone_occupancy_topic
from footfall_runtime.config import ConfigError
from footfall_sim.localservices import Influx, Mosquitto, free_port
from footfall_web import actions, auth
from footfall_web.app import Web
from footfall_web.auth import hash_password
from footfall_web.config import AlertsApiSettings
from tests.support.collector import Publisher, now_ms, small_site, wait_for
from tests.support.web import (
    ALWAYS_OPEN,
    occupancy,
    screenshot_path,
    site_with_hours,
    web_server,
    web_settings,
)
from tests.web.test_web_browser import only_local_requests

OPEN = site_with_hours(ALWAYS_OPEN)  # test-site: its alerts service is up
DEAD = site_with_hours(ALWAYS_OPEN, "dead-site")  # its alerts service is down
QUIET = site_with_hours(ALWAYS_OPEN, "quiet-site")  # no alerts API configured
ALERTS_TOKEN = "alerts-api-token-0123456789"
WEB_TOKEN = "web-api-token-0123456789"
PASSWORD = "s3cret-pass"
ALERT = "kela-full-kela"
RULES = """\
site: test-site
rules:
  - {name: kela-full, kind: over_capacity, zones: [kela], for: 0s}
"""

# -- the pure pieces ------------------------------------------------------------------


def test_upstream_requests() -> None:
    ack = actions.ack_request("kela-full-kela", "anna", None)
    assert ack == actions.Upstream(
        "POST",
        "/api/v1/alerts/kela-full-kela/ack",
        {"by": "anna", "reason": "from the live board"},
    )
    assert actions.ack_request("a", "b", "  doors closed ").body["reason"] == "doors closed"
    silence = actions.silence_request("kela-full-kela", "anna", "", 1)
    assert silence.path == "/api/v1/silences"
    assert silence.body == {
        "matchers": {"alert": "kela-full-kela"},
        "by": "anna",
        "reason": "from the live board",
        "duration": "60m",
    }
    assert actions.silence_request("a", "b", None, 0.001).body["duration"] == "1m"
    assert actions.silence_request("a", "b", None, 4).body["duration"] == "240m"


@pytest.mark.parametrize(
    ("status", "body", "want_status", "want"),
    [
        (404, b'{"detail": "no firing alert \'x\'"}', 404, "footfall-alerts: no firing alert 'x'"),
        (422, b'{"detail": "duration: bad"}', 422, "footfall-alerts: duration: bad"),
        (401, b'{"detail": "a bearer token is required"}', 502, "refused the board's token"),
        (403, b"forbidden", 502, "FOOTFALL_ALERTS__TOKEN"),
        (500, b"Internal Server Error", 502, "answered HTTP 500: Internal Server Error"),
        (503, b"", 502, "answered HTTP 503: HTTP 503"),
    ],
)
def test_upstream_errors(status: int, body: bytes, want_status: int, want: str) -> None:
    err = actions.upstream_error(status, body)
    assert err.status == want_status and want in err.message


def test_upstream_odd_answers() -> None:
    assert len(actions.detail_of(b"x" * 1000)) == actions.MAX_DETAIL + 1
    with pytest.raises(actions.ActionError) as exc:
        actions.parse_answer(b"[1, 2]")
    assert exc.value.status == 502
    assert actions.parse_answer(b'{"id": "s1"}') == {"id": "s1"}
    assert "not reachable: refused" in actions.unreachable("http://h:1", "refused").message
    assert actions.not_configured("x").status == 404


def test_alerts_api_settings() -> None:
    settings = AlertsApiSettings(
        url="http://alerts-{site}:9110/", sites={"kalajarvi": "https://k.example.net/alerts"}
    )
    assert settings.url_for("iso-omena") == "http://alerts-iso-omena:9110"
    assert settings.url_for("kalajarvi") == "https://k.example.net/alerts"
    assert AlertsApiSettings().url_for("iso-omena") is None
    assert AlertsApiSettings(sites={"a": "http://127.0.0.1:9110"}).url_for("b") is None
    for bad in ({"url": "alerts:9110"}, {"url": "http://x/{zone}"}, {"sites": {"a": "ftp://x"}}):
        with pytest.raises(ValidationError):
            AlertsApiSettings(**bad)
    with pytest.raises(ValidationError):
        AlertsApiSettings(silence_hours=[0])


def test_unknown_site_in_alerts_sites_is_refused_unless_its_file_may_come(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given by `--site`, a site id in alerts.sites that is no site is a typo: refused.
    From a folder, the file may come later (or be another shard's): a warning, and its
    buttons once it is there."""
    settings = web_settings(1, "http://127.0.0.1:1", alerts={"sites": {"nope": "http://h:1"}})
    with pytest.raises(ConfigError, match=r"alerts\.sites names unknown site\(s\) nope "):
        Web(settings, [OPEN])
    web = Web(settings, [OPEN], from_folder=True, forecaster_factory=None)
    assert "alerts.sites names site(s) nope that the sites folder does not hold now" in caplog.text
    assert web.alert_actions("nope") and not web.alert_actions(OPEN.site)
    web.set_sites([OPEN, site_with_hours(ALWAYS_OPEN, "nope")])
    assert sorted(web.sites) == ["nope", OPEN.site] and web.alert_actions("nope")


def test_csrf_token_is_bound_to_the_session() -> None:
    secret = b"k" * 32
    token = auth.csrf_token(secret, "session-a")
    assert auth.check_csrf(secret, "session-a", token)
    assert not auth.check_csrf(secret, "session-b", token)
    assert not auth.check_csrf(b"j" * 32, "session-a", token)
    assert not auth.check_csrf(secret, "session-a", None)
    assert not auth.check_csrf(secret, "session-a", "")


# -- the real services ------------------------------------------------------------------


@pytest.fixture
def alerts(mosquitto: Mosquitto, influx: Influx, tmp_path: Path) -> Iterator[AlertsService]:
    """The real footfall-alerts for test-site, asking for a bearer token."""
    settings = AlertsSettings(
        mqtt={
            "host": "127.0.0.1",
            "port": mosquitto.port,
            "reconnect_min_s": 1,
            "reconnect_max_s": 1,
        },
        influx={"url": influx.url, "database": "footfall"},
        http={"host": "127.0.0.1", "port": 0, "tokens": [ALERTS_TOKEN]},
        state_dir=tmp_path / "alerts-state",
        tick_s=0.1,
    )
    service = AlertsService(settings, small_site(), parse_rules(RULES, small_site(), "t.yaml"))
    start_with_api(service)
    try:
        assert service.ready.wait(10), "footfall-alerts did not connect"
        yield service
    finally:
        service.stop()


def alerts_api(service: AlertsService) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{service.http.port}",
        headers={"Authorization": f"Bearer {ALERTS_TOKEN}"},
        timeout=10,
    )


def board_settings(
    mosquitto: Mosquitto, influx: Influx, service: AlertsService, **alerts: Any
) -> Any:
    return web_settings(
        mosquitto.port,
        influx.url,
        http={"host": "0.0.0.0"},
        auth={"users": {"anna": hash_password(PASSWORD, n=2**12)}, "tokens": [WEB_TOKEN]},
        alerts={
            "sites": {
                "test-site": f"http://127.0.0.1:{service.http.port}",
                "dead-site": f"http://127.0.0.1:{free_port()}",  # nothing listens there
            },
            "token": ALERTS_TOKEN,
            "timeout_s": 3,
            **alerts,
        },
    )


def fire_kela(pub: Publisher, api: httpx.Client) -> None:
    """Kela (capacity 40) at 44: the over-capacity rule (for: 0s) fires."""
    pub.send(zone_occupancy_topic("test-site", "kela"), occupancy(44, 40), retain=True)
    wait_for(
        lambda: any(
            a["id"] == ALERT and a["state"] == "firing"
            for a in api.get("/api/v1/alerts").json()["alerts"]
        ),
        10,
        "the over-capacity alert",
    )


def board_state(html: str) -> dict[str, Any]:
    """What the board page hands its script (the snapshot, actions, the CSRF token)."""
    found = re.search(r'<script type="application/json" id="state">(.*?)</script>', html)
    assert found is not None
    state: dict[str, Any] = json.loads(found[1])
    return state


def fake_alert(pub: Publisher, site: str, alert_id: str) -> None:
    """A retained alert of a site whose footfall-alerts is not the one under test."""
    pub.send(
        alert_topic(site, alert_id),
        json.dumps(
            {
                "id": alert_id,
                "rule": "full",
                "kind": "over_capacity",
                "severity": "warning",
                "state": "firing",
                "scope": {"zone": "kela"},
                "summary": f"Kela over capacity at {site}",
                "started": format_ts(now_ms()),
                "ts": format_ts(now_ms()),
            }
        ),
        retain=True,
    )


@pytest.mark.services
def test_board_acknowledges_and_silences_through_footfall_alerts(
    browser: Browser, mosquitto: Mosquitto, influx: Influx, alerts: AlertsService
) -> None:
    pub = Publisher(mosquitto.port)
    api = alerts_api(alerts)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        fire_kela(pub, api)
        fake_alert(pub, "dead-site", "full-kela")
        fake_alert(pub, "quiet-site", "full-kela")
        settings = board_settings(mosquitto, influx, alerts)
        with web_server(settings, [OPEN, DEAD, QUIET]) as server:
            page = context.new_page()
            foreign = only_local_requests(page, server)
            page.goto(server.url + "/")
            page.fill("input[name=user]", "anna")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
            alert = page.locator(f"#alerts-test-site li[data-alert={ALERT}]")
            expect(alert).to_contain_text("Kela over capacity: 44 of 40 people", timeout=5_000)
            expect(alert.locator("button")).to_have_text(
                ["Acknowledge", "Silence 1 h", "Silence 4 h"]
            )
            # no alerts API for this site: no buttons
            quiet = page.locator("#alerts-quiet-site li[data-alert=full-kela]")
            expect(quiet).to_contain_text("Kela over capacity at quiet-site")
            expect(quiet.locator("button")).to_have_count(0)

            alert.get_by_role("button", name="Acknowledge").click()
            expect(alert.locator(".acked")).to_have_text("acknowledged by anna", timeout=5_000)
            expect(alert.get_by_role("button", name="Acknowledge")).to_have_count(0)
            listed = {a["id"]: a for a in api.get("/api/v1/alerts").json()["alerts"]}
            assert listed[ALERT]["acknowledged_by"] == "anna"
            assert listed[ALERT]["ack_reason"] == "from the live board"
            # the retained alert on MQTT says so too: a new board shows it
            fresh = context.new_page()
            fresh.goto(server.url + "/")
            expect(fresh.locator(f"#alerts-test-site li[data-alert={ALERT}] .acked")).to_have_text(
                "acknowledged by anna", timeout=5_000
            )
            fresh.close()

            before = dt.datetime.now(dt.UTC)
            alert.get_by_role("button", name="Silence 1 h").click()
            expect(alert.locator(".silenced")).to_contain_text("silenced until", timeout=5_000)
            [silence] = api.get("/api/v1/silences").json()
            assert silence["matchers"] == {"alert": ALERT} and silence["by"] == "anna"
            until = dt.datetime.fromisoformat(silence["until"].replace("Z", "+00:00"))
            assert abs((until - before).total_seconds() - 3600) < 30
            page.screenshot(path=screenshot_path("board-alert-actions"), full_page=True)

            # the alerts service of this site is down: the board says so
            dead = page.locator("#alerts-dead-site li[data-alert=full-kela]")
            dead.get_by_role("button", name="Acknowledge").click()
            expect(dead.locator(".note-error")).to_contain_text(
                "Acknowledging failed: footfall-alerts at http://127.0.0.1:", timeout=10_000
            )
            expect(dead.locator(".note-error")).to_contain_text("is not reachable")
            assert foreign == []
    finally:
        context.close()
        api.close()
        pub.close()


@pytest.mark.services
def test_action_endpoints_login_csrf_and_errors(
    mosquitto: Mosquitto, influx: Influx, alerts: AlertsService
) -> None:
    pub = Publisher(mosquitto.port)
    api = alerts_api(alerts)
    try:
        fire_kela(pub, api)
        settings = board_settings(mosquitto, influx, alerts)
        with (
            web_server(settings, [OPEN, DEAD, QUIET]) as server,
            httpx.Client(base_url=server.url, timeout=10) as http,
        ):
            ack_path = f"/api/v1/sites/test-site/alerts/{ALERT}/ack"
            # no login
            r = http.post(ack_path, json={})
            assert r.status_code == 401 and "login required" in r.json()["detail"]
            # logged in, the board's CSRF token from the page
            http.post("/login", data={"user": "anna", "password": PASSWORD, "next": "/"})
            page = http.get("/")
            state = board_state(page.text)
            assert state["actions"] == {"test-site": True, "dead-site": True, "quiet-site": False}
            assert state["silence_hours"] == [1.0, 4.0]
            csrf = {"X-CSRF-Token": state["csrf"]}
            for headers in ({}, {"X-CSRF-Token": "forged"}):
                r = http.post(ack_path, json={}, headers=headers)
                assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
            r = http.post(ack_path, json={}, headers={**csrf, "Sec-Fetch-Site": "cross-site"})
            assert r.status_code == 403 and "cross-site" in r.json()["detail"]
            assert api.get("/api/v1/alerts").json()["alerts"][0]["acknowledged_by"] is None

            def post(path: str, body: dict[str, Any]) -> tuple[int, str]:
                r = http.post(path, json=body, headers=csrf)
                return r.status_code, str(r.json().get("detail", ""))

            status, detail = post("/api/v1/sites/test-site/alerts/nope/ack", {})
            assert (status, detail) == (
                404,
                "footfall-alerts: no firing alert 'nope' (see GET /api/v1/alerts)",
            )
            status, detail = post("/api/v1/sites/test-site/alerts/Bad_Id/ack", {})
            assert status == 422 and detail.startswith("path.alert_id: String should match")
            status, detail = post(f"/api/v1/sites/test-site/alerts/{ALERT}/silence", {"hours": 0})
            assert (status, detail) == (422, "body.hours: Input should be greater than 0")
            assert post(f"/api/v1/sites/test-site/alerts/{ALERT}/silence", {"hours": 169})[0] == 422
            assert post(ack_path, {"by": "someone-else"})[0] == 422  # the name is the login's
            status, detail = post(f"/api/v1/sites/nope/alerts/{ALERT}/ack", {})
            assert status == 404 and "unknown site 'nope'" in detail
            status, detail = post(f"/api/v1/sites/quiet-site/alerts/{ALERT}/ack", {})
            assert status == 404 and "not configured for site 'quiet-site'" in detail
            status, detail = post(f"/api/v1/sites/dead-site/alerts/{ALERT}/silence", {})
            assert status == 502 and detail.startswith("footfall-alerts at http://127.0.0.1:")
            assert "is not reachable" in detail

            # it works: the login's name goes with it, and the reason given
            r = http.post(ack_path, json={"reason": "doors closed"}, headers=csrf)
            assert r.status_code == 200 and r.json()["acknowledged_by"] == "anna"
            assert api.get("/api/v1/alerts").json()["alerts"][0]["ack_reason"] == "doors closed"
            # an API client with the board's bearer token needs no CSRF token
            r = httpx.post(
                f"{server.url}/api/v1/sites/test-site/alerts/{ALERT}/silence",
                json={"hours": 4, "reason": "open day"},
                headers={"Authorization": f"Bearer {WEB_TOKEN}"},
            )
            assert r.status_code == 201 and r.json()["by"] == "token"
            assert r.json()["matchers"] == {"alert": ALERT}

        # the board's token is not one footfall-alerts knows
        settings = board_settings(mosquitto, influx, alerts, token="not-the-alerts-token-xx")
        with web_server(settings, [OPEN, DEAD]) as server:
            r = httpx.post(
                f"{server.url}{ack_path}", json={}, headers={"Authorization": f"Bearer {WEB_TOKEN}"}
            )
            assert r.status_code == 502
            assert r.json()["detail"] == (
                "footfall-alerts refused the board's token (the bearer token is not one of the "
                "service's http.tokens): set alerts.token (FOOTFALL_ALERTS__TOKEN) to one of "
                "its http.tokens"
            )

        # footfall-alerts goes away: 502 with a message
        settings = board_settings(mosquitto, influx, alerts)
        alerts.http.stop()
        alerts.http = None
        with web_server(settings, [OPEN, DEAD]) as server:
            r = httpx.post(
                f"{server.url}{ack_path}", json={}, headers={"Authorization": f"Bearer {WEB_TOKEN}"}
            )
            assert r.status_code == 502 and "is not reachable" in r.json()["detail"]
    finally:
        api.close()
        pub.close()


@pytest.mark.services
def test_without_alerts_settings_no_buttons_and_404(mosquitto: Mosquitto, influx: Influx) -> None:
    settings = web_settings(mosquitto.port, influx.url)  # loopback, no login
    with (
        web_server(settings, [OPEN]) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        state = board_state(http.get("/").text)
        assert state["actions"] == {"test-site": False}
        r = http.post(
            f"/api/v1/sites/test-site/alerts/{ALERT}/ack",
            json={},
            headers={"X-CSRF-Token": state["csrf"]},
        )
        assert r.status_code == 404 and "FOOTFALL_ALERTS__URL" in r.json()["detail"]
        # no login on loopback, but still no cross-site POST without the page's token
        r = http.post(f"/api/v1/sites/test-site/alerts/{ALERT}/ack", json={})
        assert r.status_code == 403
