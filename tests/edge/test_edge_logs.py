"""What the agent's log tells an installer (docs/edge.md, "What the log says"): a broker
that is not there, that refuses the login or that speaks TLS on one side only is said
once, with the address and what to check, and its recovery once; events held for an
unsynchronized clock are said once, and their release."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from footfall_edge.detection import DetectorConfig
from footfall_edge.trace import read_trace, replay
from footfall_sim.localservices import Mosquitto, free_port
from tests.edge.clocked_agent import set_clock
from tests.support.collector import wait_for
from tests.support.edge import edge_settings, edge_toml
from tests.support.mqtt import Recorder

ROOT = Path(__file__).resolve().parents[2]

WALKS = """t_ms,door,beam,blocked
300,door-a,outer,1
400,door-a,inner,1
600,door-a,outer,0
700,door-a,inner,0
1200,door-a,outer,1
1300,door-a,inner,1
1500,door-a,outer,0
1600,door-a,inner,0
2000,door-b,inner,1
2100,door-b,outer,1
2300,door-b,inner,0
2400,door-b,outer,0
"""


def start_agent(
    tmp_path: Path, config_text: str, *prefix: str, trace: Path | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    config = tmp_path / "edge.toml"
    config.write_text(config_text)
    log = tmp_path / "agent.log"
    module = prefix or ("footfall_edge.cli",)
    cmd = [sys.executable, "-m", *module, "run", "--config", str(config)]
    if trace is not None:
        cmd += ["--mock-trace", str(trace)]
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"},
        )
    return proc, log


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def lines(log: Path, text: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if text in line]


@pytest.mark.services
def test_a_broker_that_is_not_there_is_said_once_with_what_to_check(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    settings = edge_settings(tmp_path, port)  # reconnects every 0.2 to 1 s
    proc, log = start_agent(tmp_path, edge_toml(settings))
    broker = Mosquitto(tmp_path / "mqtt", port=port)
    try:
        wait_for(lambda: lines(log, "connection refused"), 20, "the refusal logged")
        time.sleep(3)  # several more attempts: still one line
        [line] = lines(log, "connection refused")
        assert "WARNING" in line
        assert f"MQTT broker 127.0.0.1:{port} (no TLS): connection refused" in line
        assert "check mqtt.host and mqtt.port (FOOTFALL_MQTT__HOST, FOOTFALL_MQTT__PORT)" in line
        assert "events wait in the outbox (0 now)" in line
        broker.start()
        wait_for(lambda: lines(log, "reachable again"), 20, "the recovery logged")
        [back] = lines(log, "reachable again")
        assert f"MQTT broker 127.0.0.1:{port} (no TLS) reachable again" in back
        assert "(was: connection refused (nothing listens on that port))" in back
    finally:
        stop(proc)
        broker.kill()
    assert len(lines(log, "WARNING")) == 1  # the refusal, nothing else


@pytest.mark.services
def test_a_refused_login_is_said_once_naming_the_account(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mqtt", anonymous=False)
    broker.start()
    proc, log = start_agent(tmp_path, edge_toml(edge_settings(tmp_path, broker.port)))
    try:
        wait_for(lambda: lines(log, "refused the login"), 20, "the refusal logged")
        time.sleep(3)
        [line] = lines(log, "refused the login")
        assert "the broker refused the login (Not authorized)" in line
        assert "check mqtt.username (none is set), mqtt.password (FOOTFALL_MQTT__PASSWORD)" in line
        assert not lines(log, "closed before the broker answered")  # the same failure
    finally:
        stop(proc)
        broker.kill()


@pytest.mark.services
def test_tls_against_a_port_without_tls_is_said_once(mosquitto: Mosquitto, tmp_path: Path) -> None:
    text = edge_toml(edge_settings(tmp_path, mosquitto.port)).replace(
        "[mqtt]\n", "[mqtt]\ntls = true\n"
    )
    proc, log = start_agent(tmp_path, text)
    try:
        wait_for(lambda: lines(log, "TLS handshake failed"), 20, "the TLS failure logged")
        time.sleep(3)
        [line] = lines(log, "TLS handshake failed")
        assert f"MQTT broker 127.0.0.1:{mosquitto.port} (TLS): TLS handshake failed" in line
        assert "check that mqtt.port is the broker's TLS port" in line
    finally:
        stop(proc)


@pytest.mark.services
def test_events_held_for_the_clock_are_said_once_and_their_release(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    trace = tmp_path / "walks.csv"
    trace.write_text(WALKS)
    truth = replay(read_trace(trace), DetectorConfig())
    crossings = sum(d["in"] + d["out"] for d in truth.doors.values())
    assert crossings == 3  # two in at door-a, one out at door-b, by the trace's own timings
    clock = tmp_path / "clock.json"
    set_clock(clock, synced=False, slow_ms=3_600_000)
    settings = edge_settings(
        tmp_path, mosquitto.port, publish={"health_interval_s": 30, "wait_for_clock_s": 120}
    )
    rec = Recorder(mosquitto.port, "footfall/v1/test-site/agent/pi-1/crossing")
    proc, log = start_agent(
        tmp_path, edge_toml(settings), "tests.edge.clocked_agent", str(clock), trace=trace
    )
    try:
        wait_for(lambda: lines(log, "holding the events"), 20, "the hold logged")
        wait_for(lambda: lines(log, "connected to"), 20, "connected")
        time.sleep(4)  # the whole trace played: every crossing held, nothing sent
        assert rec.on("/crossing") == []
        [held] = lines(log, "holding the events")
        assert "WARNING" in held
        assert "the system clock is not synchronized (NTP has not set it since boot)" in held
        assert "Check `timedatectl`" in held and "UDP port 123" in held
        assert re.search(r"or in 1[01]\d s at the latest", held), held
        set_clock(clock, synced=True)
        wait_for(lambda: lines(log, "corrected the times"), 20, "the release logged")
        [released] = lines(log, "corrected the times")
        assert (
            f"clock synchronized: corrected the times of {crossings} events; "
            "sending the events held for it"
        ) in released
        rec.wait_until(
            lambda: sum(len(m.json()["events"]) for m in rec.on("/crossing")) >= crossings, 20
        )
    finally:
        rec.close()
        stop(proc)
    assert len(lines(log, "holding the events")) == 1
    assert not lines(log, "sending events with the times it gives")  # released by NTP
