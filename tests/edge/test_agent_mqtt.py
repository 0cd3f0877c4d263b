"""The agent against a real Mosquitto: contract format, broker outages, SIGKILL, Last Will."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from footfall_contract.messages import CrossingBatch, Health, PresenceBatch, Status
from footfall_contract.timefmt import parse_ts
from footfall_edge.agent import EdgeAgent
from footfall_edge.clock import boot_id
from footfall_edge.simulation.doorway import DoorwayProfile, simulate
from footfall_edge.trace import write_trace
from footfall_sim.localservices import Mosquitto
from tests.support.edge import DOORS, clear_beams, edge_settings, edge_toml, walk
from tests.support.mqtt import Recorder
from tests.support.waiting import eventually

pytestmark = pytest.mark.services

PREFIX = "footfall/v1/test-site/agent/pi-1"


def events(rec: Recorder, kind: str) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for m in rec.on(f"/{kind}"):
        out.extend(m.json()["events"])
    return out


def unique_seqs(rec: Recorder) -> list[int]:
    seqs = [e["seq"] for kind in ("crossing", "presence", "fault") for e in events(rec, kind)]
    return sorted(set(seqs))


def test_events_arrive_in_the_contract_format(
    mosquitto: Mosquitto, mock_factory: MockFactory, tmp_path: Path
) -> None:
    settings = edge_settings(tmp_path, mosquitto.port)
    rec = Recorder(mosquitto.port, "footfall/v1/#")
    agent = EdgeAgent(settings, pin_factory=mock_factory)
    agent.start()
    try:
        clear_beams(mock_factory, settings)
        (_, ao, ai), (_, bo, bi) = DOORS
        walk(mock_factory, ao, ai, "in")
        walk(mock_factory, bo, bi, "out")
        mock_factory.pin(22).drive_high()
        time.sleep(0.05)
        mock_factory.pin(22).drive_low()
        rec.wait_until(
            lambda: len(events(rec, "crossing")) == 2 and len(events(rec, "presence")) == 2
        )
        rec.wait_until(lambda: len(rec.on("/health")) >= 1)
    finally:
        agent.stop()

    rec.wait_until(lambda: b'"offline"' in rec.on("/status")[-1].payload)
    status = [Status.model_validate_json(m.payload) for m in rec.on("/status")]
    assert status[0].state == "online" and status[-1].state == "offline"
    assert all(m.qos == 1 for m in rec.on("/status"))
    late = Recorder(mosquitto.port, f"{PREFIX}/status")  # retained for whoever comes later
    late.wait_until(lambda: len(late.on("/status")) == 1)
    assert late.on("/status")[0].retain and late.on("/status")[0].json()["state"] == "offline"
    late.close()
    epoch = status[0].epoch
    crossings = [CrossingBatch.model_validate_json(m.payload) for m in rec.on("/crossing")]
    assert {b.epoch for b in crossings} == {epoch}
    flat = [e for b in crossings for e in b.events]
    assert [(e.door, e.dir) for e in flat] == [("door-a", "in"), ("door-b", "out")]
    assert abs(parse_ts(flat[0].ts) - time.time() * 1000) < 30_000
    assert flat[0].ts.endswith("Z") and len(flat[0].ts) == len("2026-11-23T10:15:02.120Z")
    presence = [
        e for m in rec.on("/presence") for e in PresenceBatch.model_validate_json(m.payload).events
    ]
    assert [p.occupied for p in presence] == [True, False]
    seqs = [e.seq for e in flat] + [e.seq for e in presence]
    assert sorted(seqs) == list(range(4))  # one counter for every kind
    health = Health.model_validate_json(rec.on("/health")[-1].payload)
    assert health.totals["door-a"].in_ == 1
    assert health.model_extra is not None and health.model_extra["sw"] == "0.1.0"
    assert rec.on("/crossing")[0].qos == 1 and rec.on("/health")[0].qos == 0
    assert rec.on("/fault") == []  # no fault on a healthy door
    rec.close()


def test_broker_outage_loses_nothing_and_duplicates_nothing(
    mosquitto: Mosquitto, mock_factory: MockFactory, tmp_path: Path
) -> None:
    settings = edge_settings(tmp_path, mosquitto.port)
    rec = Recorder(mosquitto.port, f"{PREFIX}/crossing", client_id="rec", clean=False)
    agent = EdgeAgent(settings, pin_factory=mock_factory)
    agent.start()
    clear_beams(mock_factory, settings)
    _, ao, ai = DOORS[0]
    try:
        walk(mock_factory, ao, ai, "in")
        rec.wait_until(lambda: len(events(rec, "crossing")) == 1)
        mosquitto.stop()
        for _ in range(5):  # counted while the broker is away
            walk(mock_factory, ao, ai, "in")
        eventually(lambda: agent.outbox.depth >= 5, 5, "five events in the outbox")
        assert agent.outbox.depth == 5
        time.sleep(1.0)
        mosquitto.start()
        rec.wait_until(lambda: len(unique_seqs(rec)) == 6, timeout_s=30)
        walk(mock_factory, ao, ai, "out")
        rec.wait_until(lambda: len(unique_seqs(rec)) == 7, timeout_s=30)
        rec.wait_until(lambda: agent.outbox.depth == 0)
    finally:
        agent.stop()
    got = events(rec, "crossing")
    assert [e["seq"] for e in got] == list(range(7))  # once each, in order
    assert [e["dir"] for e in got] == ["in"] * 6 + ["out"]
    rec.close()


def agent_process(config: Path, trace: Path | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "footfall_edge.cli", "run", "--config", str(config)]
    if trace is not None:
        cmd += ["--mock-trace", str(trace)]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=open(config.parent / "agent.log", "ab"),
        env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"},
    )


def outbox_rows(state: Path) -> int:
    with sqlite3.connect(state / "outbox.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def stored_so_far(state: Path) -> int:
    """Events in the outbox of an agent that may not have made its file or table yet
    (without making the file ourselves)."""
    if not (state / "outbox.sqlite3").exists():
        return 0
    try:
        return outbox_rows(state)
    except sqlite3.OperationalError:  # no table yet, or the agent holds the lock
        return 0


def test_sigkill_with_a_backlog_then_restart(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Power cut with a backlog: nothing lost, no seq reused, nothing counted twice."""
    mosquitto.stop()  # the broker is away while the agent counts
    settings = edge_settings(tmp_path, mosquitto.port, presence=[])
    config = tmp_path / "edge.toml"
    config.write_text(edge_toml(settings))
    rows, truth = simulate(
        [d for d, _, _ in DOORS],
        12.0,
        DoorwayProfile(rate_per_min=60, p_abort=0, glitches_per_min=0),
        seed=5,
    )
    trace = tmp_path / "trace.csv"
    with trace.open("w") as fh:
        write_trace(rows, fh)
    true_total = sum(c["in"] + c["out"] for c in truth.doors.values())
    assert true_total >= 8

    proc = agent_process(config, trace)
    state = tmp_path / "state"
    # The trace plays from the agent's start, which a loaded machine delays by seconds:
    # wait for its events rather than for a fixed time, then let the detectors settle.
    try:
        eventually(
            lambda: stored_so_far(state) >= true_total * 0.9,
            timeout_s=rows[-1].t_ms / 1000 + 60,
            what="the trace's crossings stored",
        )
        time.sleep(1.5)
    finally:  # the power cut, also when the wait failed: no agent outlives the test
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with sqlite3.connect(state / "outbox.sqlite3") as db:
        stored = [json.loads(b) for (b,) in db.execute("SELECT body FROM events ORDER BY seq")]
    expected = len(stored)
    assert expected >= true_total * 0.9  # real-time pins; the exact figure is the replay tests'
    stored_counts: dict[str, dict[str, int]] = {}
    for e in stored:
        stored_counts.setdefault(e["door"], {"in": 0, "out": 0})[e["dir"]] += 1

    mosquitto.start()
    rec = Recorder(mosquitto.port, f"{PREFIX}/#")
    proc = agent_process(config)  # no trace: only the backlog
    try:
        rec.wait_until(lambda: len(unique_seqs(rec)) == expected, timeout_s=30)
        rec.wait_until(lambda: outbox_rows(tmp_path / "state") == 0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    got = events(rec, "crossing")
    assert len({e["seq"] for e in got}) == len(got) == expected
    counted: dict[str, dict[str, int]] = {}
    for e in got:
        counted.setdefault(e["door"], {"in": 0, "out": 0})[e["dir"]] += 1
    assert counted == stored_counts
    status = [json.loads(m.payload) for m in rec.on("/status")]
    epoch = status[-1]["epoch"]

    # A third life with new traffic continues the numbering of the same epoch.
    rec2 = Recorder(mosquitto.port, f"{PREFIX}/crossing")
    short_rows, short_truth = simulate(
        ["door-a"], 4.0, DoorwayProfile(rate_per_min=60, p_abort=0, glitches_per_min=0), seed=8
    )
    with trace.open("w") as fh:
        write_trace(short_rows, fh)
    proc = agent_process(config, trace)
    n = short_truth.doors["door-a"]["in"] + short_truth.doors["door-a"]["out"]
    try:
        rec2.wait_until(lambda: len(events(rec2, "crossing")) >= n, timeout_s=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    later = events(rec2, "crossing")
    assert min(e["seq"] for e in later) >= expected
    assert {m.json()["epoch"] for m in rec2.on("/crossing")} == {epoch}
    rec.close()
    rec2.close()


def test_last_will_says_offline_when_the_agent_dies(mosquitto: Mosquitto, tmp_path: Path) -> None:
    settings = edge_settings(tmp_path, mosquitto.port)
    config = tmp_path / "edge.toml"
    config.write_text(edge_toml(settings))
    rec = Recorder(mosquitto.port, f"{PREFIX}/status")
    proc = agent_process(config)
    try:
        rec.wait_until(lambda: any(m.json()["state"] == "online" for m in rec.on("/status")))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    # keepalive 5 s: the broker gives up after 1.5x that and publishes the will.
    rec.wait_until(lambda: rec.on("/status")[-1].json()["state"] == "offline", timeout_s=20)
    rec.close()
    late = Recorder(mosquitto.port, f"{PREFIX}/status")  # retained for whoever comes later
    late.wait_until(lambda: len(late.on("/status")) == 1)
    assert late.on("/status")[0].retain and late.on("/status")[0].json()["state"] == "offline"
    late.close()


def test_events_stamped_before_ntp_are_corrected_before_they_go_out(
    mosquitto: Mosquitto,
    mock_factory: MockFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Pi boots after a power cut with its clock an hour behind: crossings are held
    until the clock is synchronized, then sent with their times corrected."""
    import footfall_edge.agent as agent_module
    import footfall_edge.sensing as sensing_module

    synced = [False]
    monkeypatch.setattr(agent_module, "clock_synchronized", lambda: synced[0])
    real = sensing_module.wall_clock_ms
    monkeypatch.setattr(
        sensing_module, "wall_clock_ms", lambda mono: real(mono) - (0 if synced[0] else 3_600_000)
    )
    settings = edge_settings(
        tmp_path, mosquitto.port, publish={"health_interval_s": 30, "wait_for_clock_s": 60}
    )
    rec = Recorder(mosquitto.port, f"{PREFIX}/crossing")
    agent = EdgeAgent(settings, pin_factory=mock_factory)
    agent.start()
    try:
        clear_beams(mock_factory, settings)
        _, ao, ai = DOORS[0]
        walk(mock_factory, ao, ai, "in")
        walk(mock_factory, ao, ai, "out")
        eventually(lambda: agent.outbox.provisional(boot_id()) >= 2, 5, "two held events")
        time.sleep(1.0)
        assert events(rec, "crossing") == []  # held while the clock is wrong
        synced[0] = True
        rec.wait_until(lambda: len(events(rec, "crossing")) == 2)
    finally:
        agent.stop()
    for e in events(rec, "crossing"):
        assert abs(parse_ts(e["ts"]) - time.time() * 1000) < 30_000  # not an hour off
    rec.close()
