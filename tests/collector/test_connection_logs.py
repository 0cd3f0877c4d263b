"""The server programs do not fail silently (docs/operations.md, "When a service cannot
connect"): footfall-collector, footfall-alerts and footfall-web each say at once, and
once, that the MQTT broker or InfluxDB cannot be reached, at which address and what to
check; say when it works again; and stop on SIGTERM even while they wait."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from footfall_collector.config import InfluxSettings
from footfall_collector.influx import (
    InfluxWatch,
    PermanentWriteError,
    RetryableWriteError,
    connect,
)
from footfall_collector.influxlink import InfluxLink, explain_influx_error
from footfall_sim.localservices import Influx, Mosquitto, free_port
from tests.support.collector import wait_for, write_site

ROOT = Path(__file__).resolve().parents[2]
QUICK_MQTT = {"FOOTFALL_MQTT__RECONNECT_MIN_S": "0.2", "FOOTFALL_MQTT__RECONNECT_MAX_S": "0.5"}


def start(module: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, **QUICK_MQTT, **env},
        )


def lines(log: Path, *texts: str) -> list[str]:
    return [
        line
        for line in log.read_text().splitlines()
        if "WARNING" in line and all(t in line for t in texts)
    ]


def sigterm(proc: subprocess.Popen[bytes], within_s: float = 20) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(within_s)


def said_once(log: Path, *texts: str, within_s: float = 15) -> str:
    """The one WARNING line with all `texts`, there within `within_s` and still alone
    after several more connection attempts."""
    wait_for(lambda: lines(log, *texts), within_s, f"a line with {texts}")
    time.sleep(2.5)  # 5 or more attempts at 0.2 to 0.5 s
    found = lines(log, *texts)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.services
def test_collector_says_once_the_broker_is_not_there_then_that_it_is(
    influx: Influx, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "collector.log"
    env = {
        "FOOTFALL_MQTT__HOST": "127.0.0.1",
        "FOOTFALL_MQTT__PORT": str(port),
        "FOOTFALL_INFLUX__URL": influx.url,
        "FOOTFALL_HTTP__PORT": "0",
    }
    site = str(write_site(tmp_path))
    proc = start("footfall_collector.cli", ["run", "--site", site], env, log)
    broker = Mosquitto(tmp_path / "mqtt", port=port)
    try:
        line = said_once(log, "connection refused", within_s=10)
        assert f"MQTT broker 127.0.0.1:{port} (no TLS): connection refused" in line
        assert "check mqtt.host and mqtt.port (FOOTFALL_MQTT__HOST, FOOTFALL_MQTT__PORT)" in line
        assert "nothing is counted meanwhile" in line
        broker.start()
        wait_for(lambda: "reachable again" in log.read_text(), 20, "the recovery")
        assert "connected to MQTT" in log.read_text()
    finally:
        assert sigterm(proc) == 0
        broker.kill()
    assert len(lines(log, "MQTT broker")) == 1


def test_collector_says_once_influxdb_is_not_there_and_stops_while_it_waits(
    tmp_path: Path,
) -> None:
    influx_port, mqtt_port = free_port(), free_port()
    log = tmp_path / "collector.log"
    env = {
        "FOOTFALL_MQTT__PORT": str(mqtt_port),
        "FOOTFALL_INFLUX__URL": f"http://127.0.0.1:{influx_port}",
    }
    proc = start("footfall_collector.cli", ["run", "--site", str(write_site(tmp_path))], env, log)
    try:
        line = said_once(log, "InfluxDB", within_s=10)
        assert f"InfluxDB http://127.0.0.1:{influx_port}: connection refused" in line
        assert "check influx.url (FOOTFALL_INFLUX__URL) and that InfluxDB runs there" in line
        assert "the agents' messages wait at the broker" in line
    finally:
        started = time.monotonic()
        assert sigterm(proc) == 0  # not stuck waiting for InfluxDB until a SIGKILL
    assert time.monotonic() - started < 10


def test_alerts_say_once_that_neither_the_broker_nor_influxdb_is_there(tmp_path: Path) -> None:
    mqtt_port, influx_port = free_port(), free_port()
    log = tmp_path / "alerts.log"
    env = {
        "FOOTFALL_MQTT__HOST": "127.0.0.1",
        "FOOTFALL_MQTT__PORT": str(mqtt_port),
        "FOOTFALL_INFLUX__URL": f"http://127.0.0.1:{influx_port}",
        "FOOTFALL_STATE_DIR": str(tmp_path / "state"),
    }
    site = str(write_site(tmp_path))
    proc = start("footfall_alerts.cli", ["run", "--site", site], env, log)
    try:
        line = said_once(log, "MQTT broker", within_s=15)
        assert f"MQTT broker 127.0.0.1:{mqtt_port} (no TLS): connection refused" in line
        assert "no alert is raised or resolved meanwhile" in line
        line = said_once(log, "InfluxDB", within_s=5)
        assert f"InfluxDB http://127.0.0.1:{influx_port}: connection refused" in line
    finally:
        assert sigterm(proc) == 0


def test_web_says_once_that_neither_the_broker_nor_influxdb_is_there(tmp_path: Path) -> None:
    mqtt_port, influx_port, http_port = free_port(), free_port(), free_port()
    log = tmp_path / "web.log"
    env = {
        "FOOTFALL_MQTT__HOST": "127.0.0.1",
        "FOOTFALL_MQTT__PORT": str(mqtt_port),
        "FOOTFALL_INFLUX__URL": f"http://127.0.0.1:{influx_port}",
        "FOOTFALL_HTTP__HOST": "127.0.0.1",
        "FOOTFALL_HTTP__PORT": str(http_port),
    }
    site = str(write_site(tmp_path))
    proc = start("footfall_web.cli", ["run", "--site", site], env, log)
    try:
        line = said_once(log, "MQTT broker", within_s=15)
        assert f"MQTT broker 127.0.0.1:{mqtt_port} (no TLS): connection refused" in line
        assert "the board and the public displays show no live data" in line
        line = said_once(log, "InfluxDB", within_s=5)
        assert f"InfluxDB http://127.0.0.1:{influx_port}: connection refused" in line
        assert "check influx.url (FOOTFALL_INFLUX__URL)" in line
        assert "History, reports and typical days answer 503 meanwhile" in line
    finally:
        assert sigterm(proc) == 0  # a clean stop


@pytest.mark.services
def test_influx_watch_says_what_is_wrong_then_that_it_works(
    influx: Influx, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong database, then the right one: one line each, and the recovery."""
    caplog.set_level("INFO", logger="test.influx")
    logger = logging.getLogger("test.influx")
    wrong = InfluxSettings(url=influx.url, database="no_such_db")
    watch = InfluxWatch(connect(wrong), InfluxLink(wrong, logger, "Pages answer 503"))
    assert not watch.check() and not watch.check()
    [line] = [r.getMessage() for r in caplog.records]
    assert line == (
        f"InfluxDB {influx.url}: database 'no_such_db' does not exist; check influx.database, "
        "or let the collector create it (influx.create_database). Pages answer 503"
    )
    connect(InfluxSettings(url=influx.url, database="no_such_db")).ensure_database()
    assert watch.check() and watch.check()
    assert [r.getMessage() for r in caplog.records][1:] == [
        f"InfluxDB {influx.url} reachable again (was: database 'no_such_db' does not exist)"
    ]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            RetryableWriteError(
                "InfluxDB at http://x:1 unreachable: <urllib3.connection.HTTPConnection object "
                "at 0x7f3a>: Failed to establish a new connection: [Errno 111] Connection refused"
            ),
            "connection refused",
        ),
        (RetryableWriteError('query failed (401): b\'{"error":"unable"}\''), "credentials refused"),
        (RetryableWriteError("InfluxDB answered 403: forbidden"), "credentials refused"),
        (
            RetryableWriteError(
                "InfluxDB at http://x:1 unreachable: Failed to resolve 'x' ([Errno -2] Name or "
                "service not known)"
            ),
            "host name not found",
        ),
        (PermanentWriteError("query error: database not found: footfall"), "database 'footfall'"),
        (RetryableWriteError("InfluxDB answered 500: engine"), "answered HTTP 500"),
    ],
)
def test_influxdb_failures_have_short_stable_reasons(error: Exception, reason: str) -> None:
    got, check = explain_influx_error(error, InfluxSettings(url="http://x:1", database="footfall"))
    assert got.startswith(reason) and "0x" not in got and check
