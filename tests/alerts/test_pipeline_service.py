"""A stopped collector, for real: `footfall-collector run` as its own process against real
Mosquitto and InfluxDB, footfall-alerts with a webhook and a mail server, and the live
board in Debian's Chromium. Paused (SIGSTOP) and then stopped (SIGTERM), the collector
publishes nothing: footfall-alerts sends `pipeline_silent` the threshold after the last
heartbeat and resolves it when heartbeats return; the board's badge says "stale since"
the last heartbeat's local time, and "live" again after."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from footfall_alerts.config import AlertsSettings
from footfall_alerts.rules import parse_rules
from footfall_alerts.service import AlertsService
from footfall_contract.timefmt import parse_ts
from footfall_contract.topics import zone_occupancy_subscription
from footfall_sim.localservices import Influx, Mosquitto
from tests.alerts.sinks import SmtpSink, WebhookSink
from tests.support.collector import small_site, wait_for, write_site
from tests.support.mqtt import Recorder
from tests.support.web import (
    ALWAYS_OPEN,
    screenshot_path,
    site_with_hours,
    web_server,
    web_settings,
)

pytestmark = pytest.mark.services

SITE = "test-site"
TZ = ZoneInfo("Europe/Helsinki")
THRESHOLD_S = 4.0
"""The rule's fire_at: seconds without zone occupancy (the collector here publishes every
zone every second, as it does every 60 s by default)."""
ALERT = "collector-silent-collector"


def start_collector(
    site: Path, mqtt_port: int, influx_url: str, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FOOTFALL_MQTT__HOST": "127.0.0.1",
        "FOOTFALL_MQTT__PORT": str(mqtt_port),
        "FOOTFALL_MQTT__RECONNECT_MIN_S": "1",
        "FOOTFALL_MQTT__RECONNECT_MAX_S": "1",
        "FOOTFALL_INFLUX__URL": influx_url,
        "FOOTFALL_HTTP__PORT": "0",
        "FOOTFALL_INGEST__OCCUPANCY_HEARTBEAT_S": "1",
    }
    with open(log, "ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "footfall_collector.cli", "run", "--site", str(site)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def rules(hook_url: str) -> str:
    return f"""\
site: {SITE}
group_wait: 0s
receivers:
  hook: {{type: webhook, url: "{hook_url}"}}
  mail: {{type: email, to: [facilities@example.org]}}
routes:
  - {{receivers: [hook, mail]}}
rules:
  - {{name: collector-silent, kind: pipeline_silent, fire_at: {THRESHOLD_S:g}, clear_at: 2}}
"""


def newest_heartbeat_ms(zones: Recorder) -> int:
    return max(parse_ts(m.json()["ts"]) for m in zones.on("/occupancy"))


def local_words(ms: int) -> str:
    """What the texts must say, formatted here by hand: `Tue 24 Nov 2026 10:05`."""
    local = dt.datetime.fromtimestamp(ms / 1000, TZ)
    return f"{local:%a} {local.day} {local:%b %Y %H:%M} (Europe/Helsinki)"


def events(hook: WebhookSink) -> list[tuple[str, str]]:
    return [(b["event"], a["id"]) for b in hook.bodies() for a in b["alerts"]]


def badge(page: Page) -> tuple[str, str]:
    conn = page.locator("#conn")
    return conn.inner_text(), str(conn.get_attribute("class"))


def test_a_paused_then_stopped_collector_pages_and_the_board_says_stale(
    browser: Browser, mosquitto: Mosquitto, influx: Influx, tmp_path: Path
) -> None:
    site_file = write_site(tmp_path)
    log = tmp_path / "collector.log"
    hook = WebhookSink()
    smtp = SmtpSink()
    smtp.start()
    zones = Recorder(mosquitto.port, zone_occupancy_subscription(SITE))
    collector = start_collector(site_file, mosquitto.port, influx.url, log)
    paused = False
    service: AlertsService | None = None
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    board_site = site_with_hours(ALWAYS_OPEN)
    settings = web_settings(mosquitto.port, influx.url, crowding={"stale_after_s": THRESHOLD_S})
    try:
        with web_server(settings, [board_site]) as web:
            board_url = f"{web.url}/?lang=en"
            service = AlertsService(
                AlertsSettings(
                    mqtt={"host": "127.0.0.1", "port": mosquitto.port},
                    influx={"url": influx.url, "database": "footfall"},
                    http={"host": "127.0.0.1", "port": None},
                    smtp={"host": "127.0.0.1", "port": smtp.port, "security": "none"},
                    delivery={"retry_min_s": 0.3, "retry_max_s": 1.0},
                    state_dir=tmp_path / "alerts-state",
                    tick_s=0.1,
                    board_url=board_url,
                ),
                small_site(),
                parse_rules(rules(hook.url()), small_site(), "t.alerts.yaml"),
            )
            service.start()
            assert service.ready.wait(10), "footfall-alerts did not connect"
            page = context.new_page()
            page.goto(board_url)
            wait_for(lambda: "connected to MQTT" in log.read_text(), 30, "the collector up")
            expect(page.locator("#conn")).to_have_text("live", timeout=15_000)

            # Running: heartbeats every second, longer than the threshold, pages nobody.
            time.sleep(THRESHOLD_S + 2)
            assert hook.bodies() == [] and smtp.messages == []
            assert badge(page) == ("live", "conn conn-live")

            # Paused: the process is there, its MQTT connection open, nothing published.
            collector.send_signal(signal.SIGSTOP)
            paused = True
            stopped_at = time.time()
            wait_for(lambda: bool(hook.bodies()), 3 * THRESHOLD_S, "the pipeline_silent webhook")
            last = newest_heartbeat_ms(zones)
            delay = hook.received_at[0] - last / 1000
            # sent the threshold after the last heartbeat (ticks of 0.1 s, delivery)
            assert THRESHOLD_S <= delay < THRESHOLD_S + 1.0, delay
            assert stopped_at - last / 1000 < 1.5  # heartbeats came every second until then
            (body,) = hook.bodies()
            assert body["event"] == "firing" and body["board_url"] == board_url
            (alert,) = body["alerts"]
            assert (alert["id"], alert["kind"], alert["severity"]) == (
                ALERT,
                "pipeline_silent",
                "critical",
            )
            assert alert["summary"].startswith(
                f"No zone occupancy from the collector since {local_words(last)}: "
            )
            wait_for(lambda: len(smtp.messages) == 1, 10, "the mail")
            assert smtp.subjects()[0] == f"[{SITE}] FIRING: {alert['summary']}"
            mail = smtp.bodies()[0].replace("\r\n", "\n")
            assert f"— since {local_words(parse_ts(alert['started']))}" in mail
            assert f"Live board: {board_url}\n" in mail

            # The board: the badge turns within its 5 s check, and the alert is listed.
            hhmm = dt.datetime.fromtimestamp(last / 1000, TZ).strftime("%H:%M")
            stale = page.locator("#conn.conn-stale")
            expect(stale).to_have_text(re.compile(f"^stale since {hhmm} "), timeout=8_000)
            text, _ = badge(page)
            assert text.startswith(f"stale since {hhmm} ")  # and the zone's short name
            listed = page.locator(f'#alerts-{SITE} li[data-alert="{ALERT}"]')
            expect(listed).to_contain_text("No zone occupancy from the collector since")
            page.screenshot(path=str(screenshot_path("board-pipeline-stale")))

            # Resumed: the next heartbeat resolves it, the badge is live again.
            collector.send_signal(signal.SIGCONT)
            paused = False
            resumed_at = time.time()
            wait_for(lambda: len(hook.bodies()) == 2, 10, "the resolved webhook")
            recovered = hook.received_at[1] - resumed_at
            assert recovered < 2.0, recovered
            print(
                f"pipeline_silent: sent {delay:.2f} s after the last heartbeat "
                f"(threshold {THRESHOLD_S:g} s), resolved {recovered:.2f} s after SIGCONT"
            )
            assert events(hook) == [("firing", ALERT), ("resolved", ALERT)]
            resolved = hook.bodies()[1]["alerts"][0]
            assert resolved["summary"] == alert["summary"]  # since when it was silent
            expect(page.locator("#conn")).to_have_text("live", timeout=8_000)
            expect(listed).to_have_count(0)

            # Stopped for good (SIGTERM), then started again: the same, once more.
            collector.send_signal(signal.SIGTERM)
            assert collector.wait(30) == 0
            wait_for(lambda: len(hook.bodies()) == 3, 3 * THRESHOLD_S + 5, "firing again")
            expect(page.locator("#conn.conn-stale")).to_have_count(1, timeout=8_000)
            collector = start_collector(site_file, mosquitto.port, influx.url, log)
            wait_for(lambda: len(hook.bodies()) == 4, 30, "resolved after the restart")
            assert events(hook) == [("firing", ALERT), ("resolved", ALERT)] * 2
            expect(page.locator("#conn")).to_have_text("live", timeout=8_000)
            wait_for(lambda: len(smtp.messages) == 4, 10, "four mails")
            time.sleep(1.0)
            assert len(hook.bodies()) == 4 and len(smtp.messages) == 4
    finally:
        context.close()
        if service is not None:
            service.stop()
        if paused:
            collector.send_signal(signal.SIGCONT)
        if collector.poll() is None:
            collector.terminate()
            collector.wait(30)
        zones.close()
        hook.close()
        smtp.stop()
