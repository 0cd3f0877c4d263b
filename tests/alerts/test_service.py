"""footfall-alerts end to end: real Mosquitto, InfluxDB, the real collector, an SMTP
server (aiosmtpd) and a webhook receiver (http.server) on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from footfall_alerts.cli import start_with_api
from footfall_alerts.config import AlertsSettings
from footfall_alerts.rules import parse_rules
from footfall_alerts.service import AlertsService
from footfall_collector.service import Collector
from footfall_contract.messages import Alert
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import agent_topic, alert_subscription, zone_occupancy_topic
from footfall_sim.localservices import Influx, Mosquitto
from tests.alerts.sinks import SmtpSink, WebhookSink
from tests.support.broker_users import User
from tests.support.collector import (
    InfluxQuery,
    Publisher,
    collector_settings,
    crossing_batch,
    now_ms,
    small_site,
    wait_for,
    write_site,
)
from tests.support.mqtt import Recorder

pytestmark = pytest.mark.services

SITE = "test-site"
ALERTS = alert_subscription(SITE)


def alerts_settings(
    tmp_path: Path, mqtt_port: int, influx_url: str, smtp_port: int, **extra: Any
) -> AlertsSettings:
    return AlertsSettings(
        mqtt={"host": "127.0.0.1", "port": mqtt_port, "reconnect_min_s": 1, "reconnect_max_s": 1},
        influx={"url": influx_url, "database": "footfall"},
        http={"host": "127.0.0.1", "port": 0},
        smtp={"host": "127.0.0.1", "port": smtp_port, "security": "none", "timeout_s": 5},
        delivery={"retry_min_s": 0.3, "retry_max_s": 1.0},
        state_dir=tmp_path / "alerts-state",
        tick_s=0.1,
        **extra,
    )


def rules_yaml(hook_url: str) -> str:
    return f"""\
site: {SITE}
group_wait: 0.5s
receivers:
  mail: {{type: email, to: [facilities@example.org]}}
  hook: {{type: webhook, url: "{hook_url}"}}
routes:
  - {{receivers: [mail, hook]}}
rules:
  - {{name: kela-full, kind: over_capacity, zones: [kela], for: 0s}}
  - {{name: pi-offline, kind: agent_offline, for: 1s, clear_for: 0s, active_hours: always}}
"""


def occupancy(count: int, capacity: int = 40) -> str:
    return json.dumps(
        {"count": count, "capacity": capacity, "ratio": count / capacity, "ts": format_ts(now_ms())}
    )


def start_service(settings: AlertsSettings, rules: str) -> AlertsService:
    service = AlertsService(settings, small_site(), parse_rules(rules, small_site(), "t.yaml"))
    start_with_api(service)
    assert service.ready.wait(10), "alerts service did not connect"
    return service


def test_capacity_and_last_will_reach_mail_webhook_mqtt_and_influx(
    mosquitto: Mosquitto, influx: Influx, smtp: SmtpSink, hook: WebhookSink, tmp_path: Path
) -> None:
    collector = Collector(collector_settings(mosquitto.port, influx.url), small_site())
    collector.start()
    assert collector.ready.wait(10)
    settings = alerts_settings(tmp_path, mosquitto.port, influx.url, smtp.port)
    service = start_service(settings, rules_yaml(hook.url()))
    board = Recorder(mosquitto.port, ALERTS)
    pub = Publisher(mosquitto.port)
    status = agent_topic(SITE, "pi-7", "status")
    offline = json.dumps({"state": "offline", "epoch": "e7", "ts": format_ts(now_ms()), "sw": "1"})
    pi = User(mosquitto.port, client_id="pi-7", will=(status, offline))
    try:
        online = json.dumps(
            {"state": "online", "epoch": "e7", "ts": format_ts(now_ms()), "sw": "1"}
        )
        pi.publish(status, online, retain=True)
        # People walk into Kela (capacity 40) through the real collector: 39 in four
        # messages (no alert below 100%), then two more at once: 41.
        crossing = agent_topic(SITE, "pi-1", "crossing")
        events = [(seq, "kela-door", "in") for seq in range(41)]
        for chunk in range(0, 39, 10):
            pub.send(crossing, crossing_batch("e1", events[chunk : min(chunk + 10, 39)]))
        pub.send(crossing, crossing_batch("e1", events[39:]))
        wait_for(lambda: len(smtp.messages) == 1, 20, "the over-capacity mail")
        assert smtp.subjects() == [f"[{SITE}] FIRING: Kela over capacity: 41 of 40 people (102%)"]
        assert smtp.recipients == [["facilities@example.org"]]
        wait_for(lambda: len(hook.bodies()) == 1, 10, "the webhook")
        first = hook.bodies()[0]
        assert first["event"] == "firing" and first["alerts"][0]["scope"] == {"zone": "kela"}

        pi.die()  # power cut: the broker publishes its Last Will
        wait_for(lambda: len(smtp.messages) == 2, 20, "the offline mail")
        assert smtp.subjects()[1] == f"[{SITE}] FIRING: Sensor pi-7 offline"

        out = [(100 + i, "kela-door", "out") for i in range(10)]  # 31 of 40: below 90%
        pub.send(crossing, crossing_batch("e1", out))
        pi2 = User(mosquitto.port, client_id="pi-7", will=(status, offline))
        pi2.publish(status, online, retain=True)
        wait_for(lambda: len(smtp.messages) == 4, 20, "both resolved mails")
        resolved = sorted(smtp.subjects()[2:])
        assert resolved == [
            f"[{SITE}] RESOLVED: Kela over capacity: 31 of 40 people (78%)",
            f"[{SITE}] RESOLVED: Sensor pi-7 offline",
        ]
        assert "lasted" in smtp.bodies()[2]
        wait_for(lambda: len(hook.bodies()) == 4, 10, "four webhook calls")
        assert sorted(b["event"] for b in hook.bodies()) == [
            "firing",
            "firing",
            "resolved",
            "resolved",
        ]

        # The board's view: retained alert topics with the contract payload.
        board.wait_until(lambda: len(board.messages) >= 4)
        latest = {m.topic: Alert.model_validate_json(m.payload) for m in board.messages}
        assert {t.rsplit("/", 1)[1]: a.state for t, a in latest.items()} == {
            "kela-full-kela": "resolved",
            "pi-offline-pi-7": "resolved",
        }
        late = Recorder(mosquitto.port, ALERTS)
        late.wait_until(lambda: len(late.messages) == 2)
        assert all(m.retain for m in late.messages)
        late.close()

        # Every transition on record for Grafana.
        q = InfluxQuery(influx.url)
        wait_for(
            lambda: len(q.rows('SELECT * FROM "alert" WHERE "state" = \'resolved\'')) == 2,
            20,
            "alert points",
        )
        rows = q.rows('SELECT "summary", "state", "alert" FROM "alert"')
        assert {(r["alert"], r["state"]) for r in rows} >= {
            ("kela-full-kela", "firing"),
            ("kela-full-kela", "resolved"),
            ("pi-offline-pi-7", "pending"),
            ("pi-offline-pi-7", "firing"),
            ("pi-offline-pi-7", "resolved"),
        }
        time.sleep(1.0)  # nothing else may follow
        assert len(smtp.messages) == 4 and len(hook.bodies()) == 4
        pi2.close()
    finally:
        pub.close()
        board.close()
        service.stop()
        collector.stop()


def test_mail_server_down_then_up_the_mail_arrives_once(
    mosquitto: Mosquitto, influx: Influx, tmp_path: Path, hook: WebhookSink
) -> None:
    smtp = SmtpSink()  # not started yet: nothing listens on its port
    hook.status = 503  # the chat service is overloaded too
    settings = alerts_settings(tmp_path, mosquitto.port, influx.url, smtp.port)
    service = start_service(settings, rules_yaml(hook.url()))
    pub = Publisher(mosquitto.port)
    try:
        pub.send(zone_occupancy_topic(SITE, "kela"), occupancy(45), retain=True)
        for channel in ("receiver:mail", "receiver:hook"):
            wait_for(
                lambda c=channel: any(e["attempts"] >= 3 for e in service.store.entries(c)),  # type: ignore[misc]
                20,
                f"some failed attempts on {channel}",
            )
        health = httpx.get(f"http://127.0.0.1:{service.http.port}/healthz").json()
        assert health["outbox_open"] >= 2
        smtp.start()
        hook.status = 200
        wait_for(lambda: len(smtp.messages) == 1, 20, "the mail after the server came back")
        wait_for(lambda: len(hook.bodies()) == 1, 20, "the webhook after it came back")
        assert "FIRING" in smtp.subjects()[0]
        # a second copy could only come from an open outbox entry
        wait_for(lambda: service.store.pending() == {}, 10, "nothing left to send")
        assert len(smtp.messages) == 1 and len(hook.bodies()) == 1
        (entry,) = service.store.entries("receiver:mail")
        assert (
            entry["sent_ms"]
            and entry["attempts"] >= 4
            and "Connection refused" in str(entry["last_error"])
        )
    finally:
        pub.close()
        service.stop()
        smtp.stop()


def test_restart_mid_incident_sends_nothing_twice_and_misses_nothing(
    mosquitto: Mosquitto, influx: Influx, smtp: SmtpSink, hook: WebhookSink, tmp_path: Path
) -> None:
    settings = alerts_settings(tmp_path, mosquitto.port, influx.url, smtp.port)
    rules = rules_yaml(hook.url())
    service = start_service(settings, rules)
    pub = Publisher(mosquitto.port)
    status = agent_topic(SITE, "pi-3", "status")

    def state(s: str) -> str:
        return json.dumps({"state": s, "epoch": "e3", "ts": format_ts(now_ms()), "sw": "1"})

    try:
        pub.send(status, state("online"), retain=True)
        pub.send(zone_occupancy_topic(SITE, "kela"), occupancy(44), retain=True)
        wait_for(lambda: len(smtp.messages) == 1, 15, "the firing mail")
        service.stop()
        # While it is away: the Pi goes offline, Kela empties out.
        pub.send(status, state("offline"), retain=True)
        pub.send(zone_occupancy_topic(SITE, "kela"), occupancy(10), retain=True)
        service = start_service(settings, rules)
        wait_for(lambda: len(smtp.messages) == 3, 20, "resolved Kela and the offline Pi")
        subjects = smtp.subjects()
        assert subjects[0].startswith(f"[{SITE}] FIRING: Kela over capacity")
        assert sorted(subjects[1:]) == [
            f"[{SITE}] FIRING: Sensor pi-3 offline",
            f"[{SITE}] RESOLVED: Kela over capacity: 10 of 40 people (25%)",
        ]
        time.sleep(1.5)
        assert len(smtp.messages) == 3 and len(hook.bodies()) == 3
    finally:
        pub.close()
        service.stop()


def test_api_alerts_silences_acknowledgements_and_bad_input(
    mosquitto: Mosquitto, influx: Influx, smtp: SmtpSink, hook: WebhookSink, tmp_path: Path
) -> None:
    settings = alerts_settings(tmp_path, mosquitto.port, influx.url, smtp.port)
    service = start_service(settings, rules_yaml(hook.url()))
    api = httpx.Client(base_url=f"http://127.0.0.1:{service.http.port}", timeout=10)
    pub = Publisher(mosquitto.port)
    board = Recorder(mosquitto.port, ALERTS)
    try:
        assert api.get("/healthz").status_code == 200
        # A silence on Kela before it fills up: the board sees it, nobody is mailed.
        r = api.post(
            "/api/v1/silences",
            json={
                "matchers": {"zone": "kela"},
                "by": "maija",
                "reason": "open day",
                "duration": "1h",
            },
        )
        assert r.status_code == 201, r.text
        silence = r.json()
        pub.send(zone_occupancy_topic(SITE, "kela"), occupancy(50), retain=True)
        board.wait_until(lambda: bool(board.messages))
        alert = Alert.model_validate_json(board.messages[-1].payload)
        assert alert.state == "firing" and alert.silenced_until is not None
        listing = api.get("/api/v1/alerts").json()
        assert [a["id"] for a in listing["alerts"]] == ["kela-full-kela"]
        assert listing["silences"][0]["by"] == "maija"
        # Lifting the silence: the mail goes out now.
        assert api.delete(f"/api/v1/silences/{silence['id']}").status_code == 204
        wait_for(lambda: len(smtp.messages) == 1, 10, "mail after the silence")
        r = api.post("/api/v1/alerts/kela-full-kela/ack", json={"by": "pekka", "reason": "on it"})
        assert r.status_code == 200 and r.json()["acknowledged_by"] == "pekka"
        board.wait_until(
            lambda: Alert.model_validate_json(board.messages[-1].payload).acknowledged_by == "pekka"
        )

        bad = [
            (
                "/api/v1/silences",
                {"matchers": {"zone": "kela"}, "reason": "x", "duration": "1h"},
                "by",
            ),
            (
                "/api/v1/silences",
                {"matchers": {"zone": "kelaa"}, "by": "a", "reason": "x", "duration": "1h"},
                "no zone 'kelaa'",
            ),
            (
                "/api/v1/silences",
                {"matchers": {}, "by": "a", "reason": "x", "duration": "1h"},
                "at least one",
            ),
            (
                "/api/v1/silences",
                {"matchers": {"zone": "kela"}, "by": "a", "reason": "x"},
                "exactly one of until",
            ),
            (
                "/api/v1/silences",
                {"matchers": {"zone": "kela"}, "by": "a", "reason": "x", "duration": "soon"},
                "bad duration",
            ),
            (
                "/api/v1/silences",
                {
                    "matchers": {"zone": "kela"},
                    "by": "a",
                    "reason": "x",
                    "until": "2020-01-01T00:00:00Z",
                },
                "in the future",
            ),
            (
                "/api/v1/silences",
                {"matchers": {"colour": "red"}, "by": "a", "reason": "x", "duration": "1h"},
                "colour",
            ),
            (
                "/api/v1/silences",
                {"matchers": {"rule": "nope"}, "by": "a", "reason": "x", "duration": "1h"},
                "no rule 'nope'",
            ),
            ("/api/v1/alerts/kela-full-kela/ack", {"by": "", "reason": "x"}, "by"),
        ]
        for path, body, words in bad:
            r = api.post(path, json=body)
            assert r.status_code == 422, (body, r.text)
            assert words in r.json()["detail"], (body, r.text)
        r = api.post("/api/v1/alerts/nope/ack", json={"by": "a", "reason": "b"})
        assert r.status_code == 404 and "no firing alert 'nope'" in r.json()["detail"]
        assert api.delete("/api/v1/silences/s99").status_code == 404
        r = api.post(
            "/api/v1/silences", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422
        metrics = api.get("/metrics").text
        assert 'footfall_alerts_transitions_total{site="test-site",state="firing"} 1.0' in metrics
        assert (
            'footfall_alerts_deliveries_total{channel="receiver:mail",result="sent"} 1.0' in metrics
        )
    finally:
        api.close()
        pub.close()
        board.close()
        service.stop()


def test_clamped_count_read_from_the_collectors_drift_fires(
    mosquitto: Mosquitto, influx: Influx, smtp: SmtpSink, hook: WebhookSink, tmp_path: Path
) -> None:
    """drift_clamped reads `occupancy_drift` that the real collector writes to InfluxDB."""
    collector = Collector(collector_settings(mosquitto.port, influx.url), small_site())
    collector.start()
    assert collector.ready.wait(10)
    settings = alerts_settings(tmp_path, mosquitto.port, influx.url, smtp.port, drift_poll_s=0.3)
    rules = (
        rules_yaml(hook.url())
        + "  - {name: missed, kind: drift_clamped, zones: [kela], fire_at: 3}\n"
    )
    service = start_service(settings, rules)
    pub = Publisher(mosquitto.port)
    try:
        # Four people leave an empty Kela: the count stays 0, the drift is 4.
        out = [(i, "kela-door", "out") for i in range(4)]
        pub.send(agent_topic(SITE, "pi-1", "crossing"), crossing_batch("e1", out))
        wait_for(lambda: len(smtp.messages) == 1, 20, "the drift mail")
        assert "Kela: 4 exits found the count already at 0" in smtp.subjects()[0]
    finally:
        pub.close()
        service.stop()
        collector.stop()


def test_the_command_runs_notifies_and_stops_on_sigterm(
    mosquitto: Mosquitto, influx: Influx, hook: WebhookSink, tmp_path: Path
) -> None:
    """`footfall-alerts run` as systemd runs it: the rules file next to the site file,
    settings from FOOTFALL_* variables."""
    site = write_site(tmp_path)
    (tmp_path / "test-site.alerts.yaml").write_text(
        rules_yaml(hook.url())
        .replace("[mail, hook]", "[hook]")
        .replace("  mail: {type: email, to: [facilities@example.org]}\n", "")
    )
    env = {
        **os.environ,
        "FOOTFALL_MQTT__HOST": "127.0.0.1",
        "FOOTFALL_MQTT__PORT": str(mosquitto.port),
        "FOOTFALL_INFLUX__URL": influx.url,
        "FOOTFALL_HTTP__PORT": "0",
        "FOOTFALL_STATE_DIR": str(tmp_path / "state"),
    }
    log = tmp_path / "alerts.log"
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "footfall_alerts.cli", "run", "--site", str(site)],
            env=env,
            stderr=err,
        )
    pub = Publisher(mosquitto.port)
    try:
        wait_for(lambda: "connected to MQTT" in log.read_text(), 20, "the service up")
        assert "4 rules from" not in log.read_text()  # the file's two rules, not defaults
        assert "2 rules from" in log.read_text()
        pub.send(zone_occupancy_topic(SITE, "kela"), occupancy(41), retain=True)
        wait_for(lambda: len(hook.bodies()) == 1, 20, "the webhook")
        assert (
            hook.bodies()[0]["alerts"][0]["summary"] == "Kela over capacity: 41 of 40 people (102%)"
        )
    finally:
        pub.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert (tmp_path / "state" / "test-site.sqlite3").is_file()


def test_sigkill_mid_incident_then_restart_resends_nothing_and_resolves(
    mosquitto: Mosquitto, influx: Influx, smtp: SmtpSink, hook: WebhookSink, tmp_path: Path
) -> None:
    """A crash (SIGKILL, no goodbye) rather than a stop: what was committed is what counts."""
    site = write_site(tmp_path)
    (tmp_path / "test-site.alerts.yaml").write_text(rules_yaml(hook.url()))
    env = {
        **os.environ,
        "FOOTFALL_MQTT__HOST": "127.0.0.1",
        "FOOTFALL_MQTT__PORT": str(mosquitto.port),
        "FOOTFALL_MQTT__RECONNECT_MIN_S": "1",
        "FOOTFALL_MQTT__RECONNECT_MAX_S": "1",
        "FOOTFALL_INFLUX__URL": influx.url,
        "FOOTFALL_HTTP__PORT": "0",
        "FOOTFALL_SMTP__HOST": "127.0.0.1",
        "FOOTFALL_SMTP__PORT": str(smtp.port),
        "FOOTFALL_SMTP__SECURITY": "none",
        "FOOTFALL_STATE_DIR": str(tmp_path / "state"),
        "FOOTFALL_DELIVERY__RETRY_MIN_S": "0.3",
    }
    log = tmp_path / "alerts.log"

    def start() -> subprocess.Popen[bytes]:
        with open(log, "ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "footfall_alerts.cli", "run", "--site", str(site)],
                env=env,
                stderr=err,
            )
        return proc

    pub = Publisher(mosquitto.port)
    proc = start()
    try:
        wait_for(lambda: log.read_text().count("connected to MQTT") == 1, 20, "up")
        pub.send(zone_occupancy_topic(SITE, "kela"), occupancy(42), retain=True)
        wait_for(lambda: len(smtp.messages) == 1 and len(hook.bodies()) == 1, 20, "firing")
        proc.kill()
        proc.wait(10)
        pub.send(zone_occupancy_topic(SITE, "kela"), occupancy(5), retain=True)  # while down
        proc = start()
        wait_for(lambda: len(smtp.messages) == 2 and len(hook.bodies()) == 2, 30, "resolved")
        assert [s.split(":")[0] for s in smtp.subjects()] == [
            f"[{SITE}] FIRING",
            f"[{SITE}] RESOLVED",
        ]
        assert [b["event"] for b in hook.bodies()] == ["firing", "resolved"]
        time.sleep(1.5)  # a re-sent firing would be here by now
        assert len(smtp.messages) == 2 and len(hook.bodies()) == 2
    finally:
        pub.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
