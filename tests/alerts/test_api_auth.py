"""The alerts API's bearer tokens: the policy (a token is needed beyond loopback, and
the service refuses to start there without one), 401s with a message against the real
service, /healthz and /metrics open."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from footfall_alerts.cli import main as alerts_main
from footfall_alerts.cli import start_with_api
from footfall_alerts.config import AlertsSettings, token_required
from footfall_alerts.rules import parse_rules
from footfall_alerts.service import AlertsService
from footfall_contract.topics import zone_occupancy_topic
from footfall_runtime.config import ConfigError
from footfall_runtime.settings import load_settings
from footfall_sim.localservices import Influx, Mosquitto
from tests.alerts.test_service import occupancy
from tests.support.collector import Publisher, small_site, wait_for, write_site

REPO = Path(__file__).resolve().parents[2]
TOKEN = "alerts-api-token-0123456789"
RULES = """\
site: test-site
rules:
  - {name: kela-full, kind: over_capacity, zones: [kela], for: 0s}
"""


def settings_for(tmp_path: Path, mqtt_port: int, influx_url: str, **http: Any) -> AlertsSettings:
    return AlertsSettings(
        mqtt={"host": "127.0.0.1", "port": mqtt_port, "reconnect_min_s": 1, "reconnect_max_s": 1},
        influx={"url": influx_url, "database": "footfall"},
        http={"host": "127.0.0.1", "port": 0, **http},
        state_dir=tmp_path / "alerts-state",
        tick_s=0.1,
    )


@pytest.mark.parametrize(
    ("host", "tokens", "required"),
    [
        ("127.0.0.1", 0, False),
        ("::1", 0, False),
        ("localhost", 0, False),
        ("127.0.0.1", 1, True),  # tokens set: asked for on loopback too
        ("0.0.0.0", 1, True),
        ("10.0.0.5", 2, True),
    ],
)
def test_token_policy(host: str, tokens: int, required: bool) -> None:
    assert token_required(host, tokens) is required


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "alerts.example.org"])
def test_beyond_loopback_without_a_token_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match=r"beyond loopback.*FOOTFALL_HTTP__TOKENS"):
        token_required(host, 0)


def test_token_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("FOOTFALL_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FOOTFALL_HTTP__HOST", "0.0.0.0")
    monkeypatch.setenv("FOOTFALL_HTTP__TOKENS", f'["{TOKEN}"]')
    settings = load_settings(AlertsSettings)
    assert settings.http.token_values() == [TOKEN] and settings.http.port == 9110
    assert TOKEN not in repr(settings)  # a secret in logs and tracebacks
    with pytest.raises(ValidationError, match="tokens\\[1\\] is shorter than 16"):
        AlertsSettings(http={"tokens": [TOKEN, "short"]})


def test_alerts_env_example_shows_a_working_token_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commented example line, uncommented, is what the compose container needs."""
    text = (REPO / "deploy/server/alerts.env.example").read_text()
    found = re.search(r"^# (FOOTFALL_HTTP__TOKENS)='(.*)'$", text, re.M)
    assert found is not None, "alerts.env.example shows FOOTFALL_HTTP__TOKENS in single quotes"
    for key in [k for k in os.environ if k.startswith("FOOTFALL_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FOOTFALL_HTTP__HOST", "0.0.0.0")
    monkeypatch.setenv(found[1], found[2])
    settings = load_settings(AlertsSettings)
    assert token_required(settings.http.host, len(settings.http.tokens))


def test_the_command_refuses_to_listen_beyond_loopback_without_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site = write_site(tmp_path)
    monkeypatch.setenv("FOOTFALL_HTTP__HOST", "0.0.0.0")
    monkeypatch.delenv("FOOTFALL_HTTP__TOKENS", raising=False)
    monkeypatch.setenv("FOOTFALL_STATE_DIR", str(tmp_path / "state"))
    assert alerts_main(["run", "--site", str(site)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("footfall-alerts: http.host '0.0.0.0' is beyond loopback")
    assert "needs a bearer token" in err and "FOOTFALL_HTTP__TOKENS" in err
    assert not (tmp_path / "state").exists()  # refused before anything started


@pytest.mark.services
def test_api_asks_for_the_token_and_keeps_health_and_metrics_open(
    mosquitto: Mosquitto, influx: Influx, tmp_path: Path
) -> None:
    settings = settings_for(
        tmp_path, mosquitto.port, influx.url, host="0.0.0.0", tokens=[TOKEN, "x" * 20]
    )
    service = AlertsService(settings, small_site(), parse_rules(RULES, small_site(), "t.yaml"))
    start_with_api(service)
    pub = Publisher(mosquitto.port)
    url = f"http://127.0.0.1:{service.http.port}"
    good = {"Authorization": f"Bearer {TOKEN}"}
    try:
        assert service.ready.wait(10)
        pub.send(zone_occupancy_topic("test-site", "kela"), occupancy(44), retain=True)
        silence = {"matchers": {"zone": "kela"}, "by": "x", "reason": "y", "duration": "1h"}
        ack = {"by": "pekka", "reason": "on it"}
        for method, path, body in [
            ("GET", "/api/v1/alerts", None),
            ("GET", "/api/v1/silences", None),
            ("POST", "/api/v1/silences", silence),
            ("DELETE", "/api/v1/silences/s1", None),
            ("POST", "/api/v1/alerts/kela-full-kela/ack", ack),
        ]:
            for headers, message in [
                ({}, "a bearer token is required: send Authorization: Bearer <token>"),
                ({"Authorization": "Bearer wrong-token-0123456789"}, "not one of"),
                ({"Authorization": f"Basic {TOKEN}"}, "a bearer token is required"),
            ]:
                r = httpx.request(method, url + path, json=body, headers=headers, timeout=5)
                assert r.status_code == 401, (method, path, headers)
                assert message in r.json()["detail"]
                assert r.headers["www-authenticate"].startswith("Bearer")
        # nothing changed: no silence, no acknowledgement
        wait_for(
            lambda: bool(httpx.get(url + "/api/v1/alerts", headers=good).json()["alerts"]),
            10,
            "the alert",
        )
        listing = httpx.get(url + "/api/v1/alerts", headers=good).json()
        assert listing["silences"] == [] and listing["alerts"][0]["acknowledged_by"] is None
        # with the token: every call works (the second token too)
        r = httpx.post(url + "/api/v1/alerts/kela-full-kela/ack", json=ack, headers=good)
        assert r.status_code == 200 and r.json()["acknowledged_by"] == "pekka"
        r = httpx.post(
            url + "/api/v1/silences", json=silence, headers={"Authorization": "Bearer " + "x" * 20}
        )
        assert r.status_code == 201
        assert httpx.get(url + "/api/v1/silences", headers=good).json()[0]["by"] == "x"
        assert httpx.delete(url + "/api/v1/silences/s1", headers=good).status_code == 204
        # monitoring needs no token
        assert httpx.get(url + "/healthz").status_code == 200
        metrics = httpx.get(url + "/metrics")
        assert metrics.status_code == 200 and "footfall_alerts_firing" in metrics.text
    finally:
        pub.close()
        service.stop()


@pytest.mark.services
def test_api_on_loopback_without_tokens_stays_open(
    mosquitto: Mosquitto, influx: Influx, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, mosquitto.port, influx.url)
    service = AlertsService(settings, small_site(), parse_rules(RULES, small_site(), "t.yaml"))
    assert service.token_required is False
    start_with_api(service)
    try:
        r = httpx.get(f"http://127.0.0.1:{service.http.port}/api/v1/alerts", timeout=5)
        assert r.status_code == 200 and r.json()["site"] == "test-site"
    finally:
        service.stop()
