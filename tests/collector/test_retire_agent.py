"""Retiring an agent that is gone for good, end to end: real Mosquitto and InfluxDB, the
collector, footfall-alerts and footfall-web. Three Pis: two vanish (their Last Will says
offline, the offline rule fires), one stays. `footfall-collector retire-agent` retires
one, the board's API the other: each leaves the board, its alert resolves and does not
come back, InfluxDB has its `agent_status` point with reason `retired`, and nothing of it
is retained on the broker. A retired agent's hours stop counting as estimated."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from footfall_alerts.config import AlertsSettings
from footfall_alerts.rules import parse_rules
from footfall_alerts.service import AlertsService
from footfall_collector.history import HistoryWorker
from footfall_collector.influx import InfluxV1
from footfall_collector.points import Point
from footfall_collector.schema import AGENT_RETIRED, AGENT_STATUS, CROSSING, ROLLUP_RP
from footfall_collector.service import Collector
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import agent_subscription, agent_topic, alert_subscription
from footfall_sim.localservices import Influx, Mosquitto
from footfall_web.auth import hash_password
from tests.alerts.sinks import WebhookSink
from tests.support.broker_users import User
from tests.support.collector import (
    InfluxQuery,
    collector_settings,
    now_ms,
    small_site,
    wait_for,
    write_site,
)
from tests.support.mqtt import Recorder
from tests.support.web import ALWAYS_OPEN, site_with_hours, web_server, web_settings

pytestmark = pytest.mark.services

SITE = "test-site"
PASSWORD = "correct horse battery"
TOKEN = "board-token-0123456789"
RULES = """\
site: test-site
group_wait: 0s
receivers:
  hook: {{type: webhook, url: "{url}"}}
routes:
  - {{receivers: [hook]}}
rules:
  - {{name: pi-offline, kind: agent_offline, for: 1s, clear_for: 0s, active_hours: always}}
"""


def status(state: str) -> str:
    return json.dumps({"state": state, "epoch": "e1", "ts": format_ts(now_ms()), "sw": "0.1.0"})


def vanished_pi(port: int, agent: str) -> None:
    """A Pi that was online and lost its power: the broker publishes its Last Will."""
    topic = agent_topic(SITE, agent, "status")
    pi = User(port, client_id=f"footfall-{SITE}-{agent}", will=(topic, status("offline")))
    pi.publish(topic, status("online"), retain=True)
    pi.die()


def retire_cli(site_file: Path, mqtt_port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FOOTFALL_MQTT__HOST": "127.0.0.1",
        "FOOTFALL_MQTT__PORT": str(mqtt_port),
    }
    return subprocess.run(
        [sys.executable, "-m", "footfall_collector.cli", "retire-agent", "--site", str(site_file),
         *args],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def board_agents(http: httpx.Client) -> dict[str, bool]:
    r = http.get(f"/api/v1/sites/{SITE}/occupancy")
    assert r.status_code == 200, r.text
    return {a["agent"]: a["online"] for a in r.json()["agents"]}


def alert_states(alerts: Recorder) -> dict[str, str]:
    """The last state of every alert published (retained, QoS 1)."""
    out: dict[str, str] = {}
    for m in alerts.on(""):
        if m.payload:
            out[m.json()["id"]] = m.json()["state"]
    return out


def board_csrf(http: httpx.Client) -> str:
    found = re.search(
        r'<script type="application/json" id="state">(.*?)</script>', http.get("/").text
    )
    assert found is not None
    token: str = json.loads(found[1])["csrf"]
    return token


@pytest.fixture
def hook() -> Iterator[WebhookSink]:
    sink = WebhookSink()
    yield sink
    sink.close()


def test_retired_agents_leave_the_board_and_the_alerts_and_history_records_it(
    mosquitto: Mosquitto, influx: Influx, hook: WebhookSink, tmp_path: Path
) -> None:
    site_file = write_site(tmp_path)
    collector = Collector(collector_settings(mosquitto.port, influx.url), small_site())
    collector.start()
    assert collector.ready.wait(10)
    service = AlertsService(
        AlertsSettings(
            mqtt={"host": "127.0.0.1", "port": mosquitto.port},
            influx={"url": influx.url, "database": "footfall"},
            http={"host": "127.0.0.1", "port": None},
            state_dir=tmp_path / "alerts-state",
            tick_s=0.1,
        ),
        small_site(),
        parse_rules(RULES.format(url=hook.url()), small_site(), "t.alerts.yaml"),
    )
    service.start()
    assert service.ready.wait(10), "footfall-alerts did not connect"
    alerts = Recorder(mosquitto.port, alert_subscription(SITE))
    settings = web_settings(
        mosquitto.port,
        influx.url,
        http={"host": "0.0.0.0"},
        auth={"users": {"anna": hash_password(PASSWORD, n=2**12)}, "tokens": [TOKEN]},
    )
    stays = User(mosquitto.port, client_id=f"footfall-{SITE}-pi-new")
    db = InfluxQuery(influx.url)
    try:
        with (
            web_server(settings, [site_with_hours(ALWAYS_OPEN)]) as web,
            httpx.Client(base_url=web.url, timeout=30) as http,
        ):
            stays.publish(agent_topic(SITE, "pi-new", "status"), status("online"), retain=True)
            vanished_pi(mosquitto.port, "pi-old")
            vanished_pi(mosquitto.port, "pi-gone")
            http.post("/login", data={"user": "anna", "password": PASSWORD, "next": "/"})
            want = {"pi-new": True, "pi-old": False, "pi-gone": False}
            wait_for(lambda: board_agents(http) == want, 10, "the three agents on the board")
            firing = {"pi-offline-pi-old": "firing", "pi-offline-pi-gone": "firing"}
            alerts.wait_until(lambda: alert_states(alerts) == firing, 10)

            # The command refuses what it cannot or should not do, naming why.
            cli = retire_cli(site_file, mosquitto.port, "pi-nobody")
            assert cli.returncode == 1 and cli.stdout == ""
            assert cli.stderr == (
                "footfall-collector: agent 'pi-nobody' of site 'test-site' has no status on "
                "the broker: it never connected, or it is retired already (nothing to do)\n"
            )
            cli = retire_cli(site_file, mosquitto.port, "pi-new")
            assert cli.returncode == 1
            assert "agent 'pi-new' of site 'test-site' is online (status since " in cli.stderr
            cli = retire_cli(site_file, mosquitto.port, "Pi_Old")
            assert cli.returncode == 2 and "'Pi_Old' is not an agent id" in cli.stderr
            assert board_agents(http) == want

            # footfall-collector retire-agent: pi-old leaves the board, its alert resolves.
            cli = retire_cli(site_file, mosquitto.port, "pi-old")
            assert cli.returncode == 0, cli.stderr
            assert cli.stdout.startswith("agent pi-old of site test-site retired (it was offline")
            want.pop("pi-old")
            wait_for(lambda: board_agents(http) == want, 10, "pi-old off the board")
            alerts.wait_until(lambda: alert_states(alerts)["pi-offline-pi-old"] == "resolved", 10)

            # The board's API: login and CSRF as for alert actions.
            path = f"/api/v1/sites/{SITE}/agents/pi-gone/retire"
            assert httpx.post(web.url + path, json={}).status_code == 401
            r = http.post(path, json={})
            assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
            csrf = {"X-CSRF-Token": board_csrf(http)}
            r = http.post(f"/api/v1/sites/{SITE}/agents/pi-nobody/retire", headers=csrf)
            assert r.status_code == 404 and "has no status on the broker" in r.json()["detail"]
            r = http.post(f"/api/v1/sites/{SITE}/agents/pi-new/retire", json={}, headers=csrf)
            assert r.status_code == 409 and "is online" in r.json()["detail"]
            r = http.post(path, json={"force": "yes"}, headers=csrf)
            assert r.status_code == 422
            r = http.post(path, json={}, headers=csrf)
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["agent"], body["retired"], body["by"]) == ("pi-gone", True, "anna")
            assert body["was"]["online"] is False
            assert board_agents(http) == {"pi-new": True}  # gone when the answer came
            alerts.wait_until(lambda: alert_states(alerts)["pi-offline-pi-gone"] == "resolved", 10)

            # No offline alert comes back (the rule waits 1 s; the engine ticks every 0.1 s).
            time.sleep(2.5)
            assert alert_states(alerts) == {
                "pi-offline-pi-old": "resolved",
                "pi-offline-pi-gone": "resolved",
            }
            events = [(b["event"], a["id"]) for b in hook.bodies() for a in b["alerts"]]
            assert sorted(events) == [
                ("firing", "pi-offline-pi-gone"),
                ("firing", "pi-offline-pi-old"),
                ("resolved", "pi-offline-pi-gone"),
                ("resolved", "pi-offline-pi-old"),
            ]

            # Forced, with a token: an online agent leaves too, and returns when it
            # publishes its status again (a Pi that was not gone after all).
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            r = httpx.post(
                f"{web.url}/api/v1/sites/{SITE}/agents/pi-new/retire",
                json={"force": True},
                headers=bearer,
            )
            assert r.status_code == 200 and r.json()["by"] == "token"
            assert board_agents(http) == {}
            stays.publish(agent_topic(SITE, "pi-new", "status"), status("online"), retain=True)
            wait_for(lambda: board_agents(http) == {"pi-new": True}, 10, "pi-new back")

        # Nothing of the retired agents is retained on the broker.
        late = Recorder(mosquitto.port, agent_subscription(SITE, "status"))
        late.sync()  # every retained status it gets is in
        assert [m.topic for m in late.messages] == [agent_topic(SITE, "pi-new", "status")]
        late.close()

        # History: each agent's status points in order, the retirement last.
        def reasons(agent: str) -> list[str]:
            q = f'SELECT "reason", "value" FROM "{AGENT_STATUS}" WHERE "agent" = \'{agent}\''
            return [f"{r['reason']}:{r['value']}" for r in db.rows(q)]

        wait_for(lambda: reasons("pi-gone")[-1:] == ["retired:0"], 10, "the retired point")
        assert reasons("pi-old") == ["online:1", "offline:0", "retired:0"]
        assert reasons("pi-gone") == ["online:1", "offline:0", "retired:0"]
        assert reasons("pi-new") == ["online:1", "retired:0", "online:1"]
    finally:
        alerts.close()
        stays.close()
        service.stop()
        collector.stop()


def test_a_retired_agents_hours_are_no_longer_estimated(influx: Influx) -> None:
    """pi-2 (library-mall, youth-door) goes offline at 10:20 and is retired at 10:40: only
    hour 10 of the zones its doors count is estimated; an agent only offline would make
    every later hour of the day estimated (kela-door's pi-1, offline from 13:30)."""
    site = small_site()
    day = dt.date(2026, 11, 10)

    def at(h: int, m: int = 0) -> int:
        return int(dt.datetime.combine(day, dt.time(h, m), tzinfo=site.tz).timestamp() * 1000)

    db = InfluxV1(collector_settings(1, influx.url).influx)
    db.ensure_database()
    doors = {"library-mall": "pi-2", "youth-door": "pi-2", "kela-door": "pi-1"}
    lines = [
        Point(
            CROSSING, {"site": SITE, "door": d, "dir": "in", "agent": a}, {"count": 1},
            at(9) * 1_000_000 + i,
        ).line()
        for i, (d, a) in enumerate(doors.items())
    ]  # fmt: skip
    statuses: list[tuple[str, int, int, str]] = [
        ("pi-2", at(8), 1, "online"),
        ("pi-2", at(10, 20), 0, "offline"),
        ("pi-2", at(10, 40), 0, AGENT_RETIRED),
        ("pi-1", at(8), 1, "online"),
        ("pi-1", at(13, 30), 0, "offline"),
    ]
    lines += [
        Point(
            AGENT_STATUS, {"site": SITE, "agent": agent},
            {"value": value, "online": value == 1, "reason": reason}, t * 1_000_000,
        ).line()
        for agent, t, value, reason in statuses
    ]  # fmt: skip
    db.write(lines)
    HistoryWorker(db, site).rebuild(day, day, now_ms())
    q = InfluxQuery(influx.url)
    flagged: dict[str, set[int]] = {}
    for r in q.rows(f'SELECT * FROM "{ROLLUP_RP}"."visits_hourly" WHERE "estimated" = true'):
        hour = dt.datetime.fromtimestamp(r["time"] / 1e9, site.tz).hour
        flagged.setdefault(r["zone"], set()).add(hour)
    db.close()
    # By hand: library-mall moves library and centre, youth-door youth (the site file's
    # door algebra); kela-door moves kela. Hours run to the window's end at 03:00.
    kela = set(range(13, 24)) | {0, 1, 2}
    expected: dict[str, set[int]] = {"library": {10}, "centre": {10}, "youth": {10}, "kela": kela}
    assert flagged == expected
