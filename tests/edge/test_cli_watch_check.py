"""`footfall-edge watch` (walk test) and `check` (config, pins, broker) as an installer
runs them."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from footfall_edge.cli import build_parser
from footfall_edge.trace import read_trace
from footfall_sim.localservices import Mosquitto, free_port
from tests.support.edge import edge_settings, edge_toml

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
    assert (
        "door door-a: outer beam on GPIO17 (header pin 11), inner beam on GPIO27 (header pin 13)"
    ) in proc.stdout
    assert "presence room-1: GPIO22 (header pin 15)" in proc.stdout
    assert "reachable, credentials accepted" in proc.stdout


def test_check_says_when_the_broker_is_not_there(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(edge_toml(edge_settings(tmp_path, free_port())))
    proc = cli("check", "--config", str(config), "--timeout", "2")
    assert proc.returncode == 1
    assert "NOT reachable: connection refused (nothing listens on that port); check mqtt.host" in (
        proc.stdout
    )


@pytest.mark.services
def test_check_says_when_the_broker_refuses_the_credentials(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mqtt", anonymous=False)
    broker.start()
    try:
        config = tmp_path / "edge.toml"
        config.write_text(edge_toml(edge_settings(tmp_path, broker.port)))
        proc = cli("check", "--config", str(config))
        assert proc.returncode == 1
        assert "refused the agent's credentials (Not authorized); check mqtt.username" in (
            proc.stdout
        )
    finally:
        broker.kill()


def test_check_refuses_a_pin_the_header_does_not_have(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(
        edge_toml(edge_settings(tmp_path)).replace("outer_pin = 17", "outer_pin = 99")
    )
    proc = cli("check", "--config", str(config), "--timeout", "1")
    assert proc.returncode == 2 and "configuration OK" not in proc.stdout
    assert proc.stderr.splitlines()[1:] == [
        "  doors[0] (door-a): outer_pin = 99: there is no GPIO99 on the Raspberry Pi's 40-pin "
        "header; a pin is a BCM GPIO number 2..27 (17), GPIO17, BOARD11 or J8:11 (the "
        "header's pin 11)"
    ]


def test_simulate_names_doors_and_refuses_what_makes_no_trace(tmp_path: Path) -> None:
    out = tmp_path / "trace.csv"
    proc = cli("simulate", "--doors", "2", "--minutes", "1", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    truth = json.loads(proc.stdout)
    assert sorted(truth["doors"]) == ["door-1", "door-2"]
    assert {r.door for r in read_trace(out)} == {"door-1", "door-2"}
    proc = cli("simulate", "--doors", "main,side", "--minutes", "1", "-o", str(out))
    assert sorted(json.loads(proc.stdout)["doors"]) == ["main", "side"]
    for args, message in [
        (("--minutes", "-5"), "argument --minutes: must be more than 0, not -5"),
        (("--minutes", "0"), "argument --minutes: must be more than 0, not 0"),
        (("--doors", "0"), "argument --doors: a number of doors from 1 to 100, not 0"),
        (("--doors", "a,a"), "argument --doors: a door id appears twice in 'a,a'"),
        (("--doors", "Main"), "argument --doors: door id 'Main' must match [a-z0-9-]+"),
        (("--p-out", "2"), "argument --p-out: must be from 0 to 1, not 2"),
    ]:
        gone = tmp_path / "not-written.csv"
        proc = cli("simulate", *args, "-o", str(gone))
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert not gone.exists()


def test_every_option_says_what_it_does() -> None:
    """`--help` of every command explains every option (the walk-test switch used by
    the tests is hidden on purpose)."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, sub in [("footfall-edge", parser), *commands.choices.items()]:
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not action.help and action.help != argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
    assert sorted(commands.choices) == ["check", "replay", "run", "simulate", "watch"]


def test_watch_at_speed_counts_what_replay_and_the_truth_count(tmp_path: Path) -> None:
    """A trace played 5 times faster used to lose crossings: the detectors' debounce and
    gap times stayed in real milliseconds while the trace's shrank. The trace's own clock
    now times the detectors, so watch counts exactly what replay counts."""
    trace = tmp_path / "tailgating.csv"
    proc = cli(
        "simulate", "--doors", "2", "--minutes", "1", "--profile", "tailgating", "--seed", "4",
        "-o", str(trace),
    )  # fmt: skip
    truth = json.loads(proc.stdout)["doors"]
    replayed = json.loads(cli("replay", str(trace)).stdout)["doors"]
    assert (
        replayed
        == truth
        == {
            "door-1": {"in": 4, "out": 1},
            "door-2": {"in": 2, "out": 14},
        }
    )
    config = tmp_path / "edge.toml"
    config.write_text(
        edge_toml(edge_settings(tmp_path))
        .replace('"door-a"', '"door-1"')
        .replace('"door-b"', '"door-2"')
    )
    started = time.monotonic()
    proc = cli(
        "watch", "--config", str(config), "--mock-trace", str(trace), "--speed", "5",
        "--exit-after-trace",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"doors": truth}
    assert time.monotonic() - started < 40  # 57 s of trace in about 12 s
