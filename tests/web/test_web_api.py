"""The JSON API, the live stream and the access rules against the real server (uvicorn),
a real Mosquitto and a real InfluxDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from footfall_contract.timefmt import format_ts
from footfall_sim.localservices import Influx, Mosquitto, free_port
from footfall_web.auth import hash_password, verify_password
from tests.support.collector import Publisher, now_ms, wait_for
from tests.support.web import (
    ALWAYS_OPEN,
    NEVER_OPEN,
    occupancy,
    seed_typical,
    site_with_hours,
    web_server,
    web_settings,
)

pytestmark = pytest.mark.services

OPEN = site_with_hours(ALWAYS_OPEN)
CLOSED = site_with_hours(NEVER_OPEN, "closed-site")
TOKEN = "test-token-0123456789"


def alert(alert_id: str, state: str) -> str:
    ts = format_ts(now_ms())
    return json.dumps(
        {
            "id": alert_id,
            "rule": "library over capacity",
            "kind": "over_capacity",
            "severity": "critical",
            "state": state,
            "scope": {"zone": "library"},
            "summary": "Library over capacity: 260 / 250",
            "started": ts,
            "ts": ts,
            "value": 260,
        }
    )


def test_api_schema_data_and_errors(mosquitto: Mosquitto, influx: Influx) -> None:
    pub = Publisher(mosquitto.port)
    topic = "footfall/v1/test-site"
    pub.send(f"{topic}/zone/library/occupancy", occupancy(160), retain=True)
    pub.send(f"{topic}/zone/kela/occupancy", occupancy(3, 40, now_ms() - 600_000), retain=True)
    pub.send(
        f"{topic}/agent/pi-1/status",
        json.dumps({"state": "offline", "epoch": "e1", "ts": format_ts(now_ms()), "sw": "0.1.0"}),
        retain=True,
    )
    pub.send(f"{topic}/alert/over-cap-library", alert("over-cap-library", "firing"), retain=True)
    pub.send(f"{topic}/alert/old-one", alert("old-one", "resolved"), retain=True)
    pub.send(f"{topic}/zone/library/occupancy-garbage", b"{", retain=False)
    seed_typical(influx.url, OPEN, "library")
    try:
        with (
            web_server(web_settings(mosquitto.port, influx.url), [OPEN, CLOSED]) as server,
            httpx.Client(base_url=server.url, timeout=10) as http,
        ):
            schema = http.get("/openapi.json").json()
            for path in (
                "/api/v1/sites",
                "/api/v1/sites/{site}/occupancy",
                "/api/v1/sites/{site}/zones/{zone}/history",
                "/api/v1/sites/{site}/zones/{zone}/typical",
                "/api/v1/public/sites/{site}/zones/{zone}/crowding",
            ):
                ok = schema["paths"][path]["get"]["responses"]["200"]
                assert "$ref" in ok["content"]["application/json"]["schema"], path
            assert {"SiteOccupancy", "HistoryOut", "PublicCrowding", "ErrorOut"} <= set(
                schema["components"]["schemas"]
            )
            assert "/crowding/{site}/{zone}" not in schema["paths"]  # pages stay out

            sites = http.get("/api/v1/sites").json()["sites"]
            assert [s["site"] for s in sites] == ["test-site", "closed-site"]
            assert sites[0]["open_now"] and not sites[1]["open_now"]

            wait_for(
                lambda: len(http.get("/api/v1/sites/test-site/occupancy").json()["alerts"]) == 1,
                10,
                "retained state",
            )
            occ = http.get("/api/v1/sites/test-site/occupancy").json()
            zones = {z["zone"]: z for z in occ["zones"]}
            assert zones["library"]["count"] == 160 and not zones["library"]["stale"]
            assert zones["kela"]["stale"] and zones["centre"]["count"] is None
            assert occ["agents"] == [
                {
                    "site": "test-site",
                    "agent": "pi-1",
                    "online": False,
                    "ts": occ["agents"][0]["ts"],
                    "sw": "0.1.0",
                }
            ]
            assert [a["id"] for a in occ["alerts"]] == ["over-cap-library"]  # firing only
            pub.send(
                f"{topic}/alert/over-cap-library",
                alert("over-cap-library", "resolved"),
                retain=True,
            )
            wait_for(
                lambda: http.get("/api/v1/sites/test-site/occupancy").json()["alerts"] == [],
                10,
                "alert resolved",
            )

            h = http.get(
                "/api/v1/sites/test-site/zones/library/history",
                params={"from": "-29d", "every": "1h"},
            ).json()
            assert h["every_s"] == 3600 and h["capacity"] == 250
            assert max(p["max"] for p in h["points"]) == 200 and "from" in h

            typical = http.get("/api/v1/sites/test-site/zones/library/typical").json()
            assert typical["weeks"] == 4 and typical["step_min"] == 15
            assert typical["peak_time"] == "15:00" and len(typical["values"]) == 96

            public = http.get(
                "/api/v1/public/sites/test-site/zones/library/crowding",
                headers={"Accept-Language": "sv-FI,sv;q=0.9"},
            ).json()
            assert public["lang"] == "sv" and public["state"] == "open"
            assert (public["level"], public["percent"], public["label"]) == ("busy", 64, "Livligt")
            assert public["peak_label"] == "Oftast mest folk kl. 15.00"
            assert public["count"] is None  # aggregates only
            assert not {"agents", "alerts"} & set(public)
            closed = http.get("/api/v1/public/sites/closed-site/zones/library/crowding?lang=en")
            assert closed.json()["state"] == "closed" and closed.json()["label"] == "Closed"
            stale = http.get("/api/v1/public/sites/test-site/zones/kela/crowding?lang=fi")
            assert stale.json()["state"] == "no_data" and stale.json()["percent"] is None

            errors = {
                "/api/v1/sites/nope/occupancy": (404, "unknown site 'nope'"),
                "/api/v1/sites/test-site/zones/nope/history": (404, "unknown zone 'nope'"),
                "/api/v1/sites/test-site/zones/nope/typical": (404, "unknown zone"),
                "/api/v1/sites/test-site/zones/library/history?from=yesterday": (
                    400,
                    "from must be an RFC 3339",
                ),
                "/api/v1/sites/test-site/zones/library/history?from=-1h&to=-2h": (
                    400,
                    "must be before",
                ),
                "/api/v1/sites/test-site/zones/library/history?from=-30d&every=1s": (
                    400,
                    "at most 5000",
                ),
                "/api/v1/sites/test-site/zones/library/history?every=soon": (
                    400,
                    "every must be",
                ),
                "/api/v1/public/sites/test-site/zones/library/crowding?lang=de": (
                    400,
                    "lang must be one of fi, sv, en",
                ),
                "/api/v1/public/sites/test-site/zones/nope/crowding": (
                    404,
                    "no public display for zone 'nope' of site 'test-site'",
                ),
            }
            for path, (status, message) in errors.items():
                r = http.get(path)
                assert r.status_code == status, (path, r.text)
                assert message in r.json()["detail"], (path, r.text)
            r = http.get("/api/v1/sites/test-site/zones/library/typical?weekday=9")
            assert r.status_code == 422 and "weekday" in r.text
    finally:
        pub.close()


Event = tuple[str, dict[str, Any]]


def read_events(lines: Iterator[str], want: int, timeout_s: float = 10.0) -> list[Event]:
    events: list[Event] = []
    name = ""
    deadline = time.monotonic() + timeout_s
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
            if len(events) >= want:
                return events
        assert time.monotonic() < deadline, f"only {events} within {timeout_s} s"
    return events


def test_live_stream_sends_snapshot_then_changes(mosquitto: Mosquitto, influx: Influx) -> None:
    pub = Publisher(mosquitto.port)
    try:
        with (
            web_server(web_settings(mosquitto.port, influx.url), [OPEN, CLOSED]) as server,
            httpx.Client(base_url=server.url, timeout=10) as http,
            http.stream("GET", "/api/v1/stream", params={"site": "test-site"}) as stream,
        ):
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            ((kind, snap),) = read_events(lines, 1)
            assert kind == "snapshot" and list(snap["sites"]) == ["test-site"]
            sent = time.monotonic()
            pub.send("footfall/v1/closed-site/zone/library/occupancy", occupancy(1), retain=True)
            pub.send("footfall/v1/test-site/zone/library/occupancy", occupancy(42), retain=True)
            ((kind, data),) = read_events(lines, 1)
            assert time.monotonic() - sent < 2.0
            assert kind == "occupancy"  # the other site's change was not sent here
            assert (data["site"], data["zone"], data["count"]) == ("test-site", "library", 42)
            assert http.get("/api/v1/stream?site=nope").status_code == 404
    finally:
        pub.close()


def test_login_needed_beyond_loopback(mosquitto: Mosquitto, influx: Influx) -> None:
    password_hash = hash_password("s3cret-pass", n=2**12)
    settings = web_settings(
        mosquitto.port,
        influx.url,
        http={"host": "0.0.0.0"},
        auth={"users": {"anna": password_hash}, "tokens": [TOKEN]},
    )
    with (
        web_server(settings, [OPEN]) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        r = http.get("/api/v1/sites")
        assert r.status_code == 401 and "login required" in r.json()["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
        assert http.get("/api/v1/stream").status_code == 401
        bad = http.get("/api/v1/sites", headers={"Authorization": "Bearer wrong-token-xxxxxxxx"})
        assert bad.status_code == 401
        ok = http.get("/api/v1/sites", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        board = http.get("/")
        assert board.status_code == 303 and board.headers["location"].startswith("/login")
        # the public display and its API stay open
        assert http.get("/crowding/test-site/library").status_code == 200
        assert http.get("/api/v1/public/sites/test-site/zones/library/crowding").status_code == 200
        wrong = http.post("/login", data={"user": "anna", "password": "nope", "next": "/"})
        assert wrong.status_code == 303 and "error=1" in wrong.headers["location"]
        assert "footfall_session" not in http.cookies
        r = http.post(
            "/login", data={"user": "anna", "password": "s3cret-pass", "next": "//evil.example/"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
        assert http.get("/api/v1/sites").status_code == 200
        assert http.get("/").status_code == 200
        http.post("/logout")
        assert http.get("/api/v1/sites").status_code == 401


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "footfall_web.cli", *args],
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_refuses_open_board_beyond_loopback_and_hashes_passwords(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(OPEN.model_dump_json())  # JSON is YAML
    r = run_cli("run", "--site", str(site), env={"FOOTFALL_HTTP__HOST": "0.0.0.0"})
    assert r.returncode == 2
    assert "beyond loopback needs a login" in r.stderr and "hash-password" in r.stderr
    r = run_cli("run", "--site", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "no such site file" in r.stderr
    r = run_cli("run")
    assert r.returncode == 2 and "one of the arguments --site --sites-dir is required" in r.stderr
    r = run_cli("hash-password", "--stdin", stdin="correct horse battery\n")
    assert r.returncode == 0 and verify_password("correct horse battery", r.stdout.strip())
    r = run_cli("hash-password", "--stdin", stdin="short\n")
    assert r.returncode == 2 and "shorter than 8" in r.stderr


def test_influx_down_public_page_still_answers(mosquitto: Mosquitto) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    pub = Publisher(mosquitto.port)
    pub.send("footfall/v1/test-site/zone/library/occupancy", occupancy(100), retain=True)
    try:
        with (
            web_server(web_settings(mosquitto.port, dead), [OPEN]) as server,
            httpx.Client(base_url=server.url, timeout=10) as http,
        ):
            wait_for(
                lambda: (
                    http.get(
                        "/api/v1/public/sites/test-site/zones/library/crowding?lang=en"
                    ).json()["state"]
                    == "open"
                ),
                10,
                "live reading",
            )
            public = http.get("/api/v1/public/sites/test-site/zones/library/crowding?lang=en")
            body = public.json()
            assert (body["label"], body["percent"], body["forecast"]) == ("Moderately busy", 40, [])
            assert body["peak_label"] is None
            r = http.get("/api/v1/sites/test-site/zones/library/history")
            assert r.status_code == 503 and "InfluxDB unavailable" in r.json()["detail"]
            r = http.get("/api/v1/sites/test-site/zones/library/typical")
            assert r.status_code == 503 and "typical profiles unavailable" in r.json()["detail"]
            assert http.get("/crowding/test-site/library").status_code == 200
    finally:
        pub.close()
