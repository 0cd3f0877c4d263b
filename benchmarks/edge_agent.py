"""Resident memory and CPU of the edge agent with 4 doors and 2 presence sensors at about
5 crossings/s, against the same agent idle and a bare interpreter with the same imports
(the baselines, measured in the same run). Real Mosquitto; simulated pins (MockFactory,
whose trace-driving thread runs inside the agent and is counted against it).

    .venv/bin/python -m benchmarks.edge_agent [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from footfall_edge.simulation.doorway import DoorwayProfile, simulate
from footfall_edge.trace import write_trace
from footfall_sim.localservices import Mosquitto
from tests.support.edge import edge_settings, edge_toml

DOORS = [("door-1", 17, 27), ("door-2", 5, 6), ("door-3", 13, 19), ("door-4", 20, 21)]


def measure(proc: subprocess.Popen[bytes], warmup_s: float, seconds: float) -> tuple[float, float]:
    """(median RSS in MB, CPU % of one core) over the window after the warm-up."""
    p = psutil.Process(proc.pid)
    time.sleep(warmup_s)
    cpu0, t0 = sum(p.cpu_times()[:2]), time.monotonic()
    rss = []
    while time.monotonic() - t0 < seconds:
        rss.append(p.memory_info().rss / 2**20)
        time.sleep(1.0)
    cpu1, t1 = sum(p.cpu_times()[:2]), time.monotonic()
    return statistics.median(rss), 100.0 * (cpu1 - cpu0) / (t1 - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    broker = Mosquitto(work / "mqtt")
    broker.start()
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}
    try:
        settings = edge_settings(
            work,
            broker.port,
            doors=[{"id": d, "outer_pin": o, "inner_pin": i} for d, o, i in DOORS],
            presence=[{"id": "room-1", "pin": 22, "hold_s": 120}, {"id": "room-2", "pin": 23}],
            publish={"health_interval_s": 30, "wait_for_clock_s": 0},
        )
        config = work / "edge.toml"
        config.write_text(edge_toml(settings))
        duration = args.seconds + 20
        rows, truth = simulate(
            [d for d, _, _ in DOORS],
            duration,
            DoorwayProfile(rate_per_min=130, p_abort=0.02),
            seed=1,
        )
        trace = work / "trace.csv"
        with trace.open("w") as fh:
            write_trace(rows, fh)
        crossings = sum(c["in"] + c["out"] for c in truth.doors.values())
        cmd = [sys.executable, "-m", "footfall_edge.cli", "run", "--config", str(config)]

        bare = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import paho.mqtt.client, gpiozero, sqlite3, time; time.sleep(600)",
            ],
            env=env,
        )
        bare_rss, bare_cpu = measure(bare, 3, 5)
        bare.kill()

        idle = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
        idle_rss, idle_cpu = measure(idle, 5, min(20.0, args.seconds))
        idle.terminate()
        idle.wait(20)

        busy = subprocess.Popen(
            [*cmd, "--mock-trace", str(trace)], env=env, stderr=subprocess.DEVNULL
        )
        busy_rss, busy_cpu = measure(busy, 10, args.seconds)
        busy.terminate()
        busy.wait(20)
    finally:
        broker.kill()
    rate = crossings / duration
    print(
        f"edge agent, 4 doors + 2 presence sensors, {rate:.1f} crossings/s "
        f"({len(rows) / duration:.0f} beam transitions/s), {args.seconds:g} s window"
    )
    print(f"{'':<28}{'RSS MB':>8}{'CPU % of a core':>17}")
    print(f"{'python + paho + gpiozero':<28}{bare_rss:>8.1f}{bare_cpu:>17.2f}")
    print(f"{'agent idle':<28}{idle_rss:>8.1f}{idle_cpu:>17.2f}")
    print(f"{'agent at load':<28}{busy_rss:>8.1f}{busy_cpu:>17.2f}")
    print(
        f"ratios: RSS at load / bare = {busy_rss / bare_rss:.2f}x, "
        f"CPU at load / idle = {busy_cpu / max(idle_cpu, 0.01):.1f}x"
    )
    print(
        f"targets: RSS <= 40 MB: {'met' if busy_rss <= 40 else 'NOT met'}; "
        f"CPU < 2% of a core: {'met' if busy_cpu < 2 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
