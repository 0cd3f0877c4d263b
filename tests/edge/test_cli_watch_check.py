"""`footfall-edge watch` (walk test) and `check` (config, pins, broker) as an installer
runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.edge import edge_settings, edge_toml
from tests.support.services import Mosquitto, free_port

TRACE = """t_ms,door,beam,blocked
300,door-a,outer,1
400,door-a,inner,1
600,door-a,outer,0
700,door-a,inner,0
1500,door-b,inner,1
1600,door-b,outer,1
1800,door-b,inner,0
1900,door-b,outer,0
"""


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "footfall_edge.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"},
    )


def test_watch_shows_events_and_counts(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(edge_toml(edge_settings(tmp_path)))
    trace = tmp_path / "walk.csv"
    trace.write_text(TRACE)
    proc = cli("watch", "--config", str(config), "--mock-trace", str(trace), "--exit-after-trace")
    assert proc.returncode == 0, proc.stderr
    assert "door-a: IN" in proc.stdout and "door-b: OUT" in proc.stdout
    final = json.loads(proc.stdout.strip().splitlines()[-1])
    assert final == {"doors": {"door-a": {"in": 1, "out": 0}, "door-b": {"in": 0, "out": 1}}}


@pytest.mark.services
def test_check_reports_pins_and_a_reachable_broker(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(edge_toml(edge_settings(tmp_path, mosquitto.port)))
    proc = cli("check", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert "door door-a: outer beam on 17, inner beam on 27" in proc.stdout
    assert "presence room-1: pin 22" in proc.stdout
    assert "reachable, credentials accepted" in proc.stdout


def test_check_says_when_the_broker_is_not_there(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(edge_toml(edge_settings(tmp_path, free_port())))
    proc = cli("check", "--config", str(config), "--timeout", "2")
    assert proc.returncode == 1
    assert "NOT reachable" in proc.stdout


@pytest.mark.services
def test_check_says_when_the_broker_refuses_the_credentials(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mqtt", anonymous=False)
    broker.start()
    try:
        config = tmp_path / "edge.toml"
        config.write_text(edge_toml(edge_settings(tmp_path, broker.port)))
        proc = cli("check", "--config", str(config))
        assert proc.returncode == 1
        assert "refused the agent's credentials" in proc.stdout
    finally:
        broker.kill()
