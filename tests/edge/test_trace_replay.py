"""Trace files (docs/spec.md §1 format) and `footfall-edge replay`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from footfall_edge.simulation.doorway import PROFILES, simulate
from footfall_edge.trace import TraceError, TraceRow, read_trace, replay, trace_text, write_trace

TRACE = """t_ms,door,beam,blocked
0,library-main,outer,1
180,library-main,inner,1
400,library-main,outer,0
560,library-main,inner,0
2000,library-mall,inner,1
2100,library-mall,outer,1
2300,library-mall,inner,0
2400,library-mall,outer,0
"""


def edge_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "footfall_edge.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_replay_prints_the_spec_json(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(TRACE)
    proc = edge_cli("replay", str(path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "doors": {"library-main": {"in": 1, "out": 0}, "library-mall": {"in": 0, "out": 1}},
        "faults": [],
    }


def test_replay_reports_a_stuck_beam(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("t_ms,door,beam,blocked\n0,d,outer,1\n45000,d,outer,0\n")
    out = json.loads(edge_cli("replay", str(path)).stdout)
    assert out["doors"] == {"d": {"in": 0, "out": 0}}
    assert out["faults"] == [
        {"t_ms": 30000, "door": "d", "source": "d/outer", "fault": "beam_blocked", "active": True},
        {"t_ms": 45000, "door": "d", "source": "d/outer", "fault": "beam_blocked", "active": False},
    ]
    short = json.loads(edge_cli("replay", str(path), "--blocked-s", "60").stdout)
    assert short["faults"] == []


def test_simulated_trace_replays_to_the_true_counts(tmp_path: Path) -> None:
    out = tmp_path / "sim.csv"
    proc = edge_cli("simulate", "--doors", "a,b", "--minutes", "20", "--seed", "3", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    truth = json.loads(proc.stdout)["doors"]
    counted = json.loads(edge_cli("replay", str(out)).stdout)["doors"]
    assert counted == truth


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("time,door,beam,blocked\n", "header must be t_ms,door,beam,blocked"),
        ("t_ms,door,beam,blocked\n0,d,outer\n", ":2: expected 4 fields, got 3"),
        ("t_ms,door,beam,blocked\nzero,d,outer,1\n", ":2: t_ms 'zero' is not an integer"),
        ("t_ms,door,beam,blocked\n-5,d,outer,1\n", ":2: t_ms -5 is negative"),
        ("t_ms,door,beam,blocked\n10,d,outer,1\n5,d,outer,0\n", ":3: t_ms 5 goes back in time"),
        ("t_ms,door,beam,blocked\n0,Door 1,outer,1\n", ":2: door 'Door 1' must match"),
        ("t_ms,door,beam,blocked\n0,d,upper,1\n", ":2: beam 'upper' must be 'outer' or 'inner'"),
        ("t_ms,door,beam,blocked\n0,d,outer,yes\n", ":2: blocked 'yes' must be 0 or 1"),
    ],
)
def test_bad_traces_name_line_and_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TraceError, match=message.replace("(", r"\(")):
        list(read_trace(path))
    proc = edge_cli("replay", str(path))
    assert proc.returncode == 2
    assert message in proc.stderr and str(path) in proc.stderr
    assert proc.stdout == ""


def test_missing_trace_file(tmp_path: Path) -> None:
    proc = edge_cli("replay", str(tmp_path / "nope.csv"))
    assert proc.returncode == 2 and "cannot open" in proc.stderr


def test_write_and_read_round_trip() -> None:
    rows, _ = simulate(["x"], 120, PROFILES["tailgating"], seed=1)
    text = trace_text(rows)
    assert list(read_trace(io.StringIO(text))) == rows
    buf = io.StringIO()
    write_trace([TraceRow(5, "x", "inner", True)], buf)
    assert buf.getvalue() == "t_ms,door,beam,blocked\n5,x,inner,1\n"


def test_replay_is_reproducible() -> None:
    rows, truth = simulate(["a", "b"], 600, PROFILES["separable"], seed=9)
    assert replay(rows).doors == replay(rows).doors == truth.doors
