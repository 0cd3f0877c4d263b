"""Counting accuracy and replay speed of the door detector on simulated doorways.

Accuracy = 1 - sum(|counted - true| over in and out) / true crossings, per traffic
profile, against a naive "first beam wins" counter measured on the same traces (the
baseline). Speed = beam transitions replayed per second (median of runs), with the
naive counter's speed as the baseline.

    .venv/bin/python -m benchmarks.edge_accuracy [--hours 2] [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterable

from footfall_edge.simulation.doorway import PROFILES, simulate
from footfall_edge.trace import TraceRow, replay

DOORS = ["door-1", "door-2", "door-3", "door-4"]


def naive_counts(rows: Iterable[TraceRow], debounce_ms: int = 20) -> dict[str, dict[str, int]]:
    """First beam wins: the beam blocked first from idle gives the direction, and one
    crossing is counted when both beams are clear again. Pulses under the debounce time
    are dropped first, as the real detector does."""
    by_door: dict[str, list[TraceRow]] = {}
    for r in rows:
        by_door.setdefault(r.door, []).append(r)
    out: dict[str, dict[str, int]] = {}
    for door, door_rows in by_door.items():
        edges: list[tuple[int, str, bool]] = []
        for beam in ("outer", "inner"):
            seq = [r for r in door_rows if r.beam == beam]
            if not seq:
                continue
            level, since = False, 0
            stable = False
            sentinel = TraceRow(10**12, door, beam, not seq[-1].blocked)  # flushes the last
            for r in [*seq, sentinel]:
                if r.blocked == level:
                    continue
                if level != stable and r.t_ms - since >= debounce_ms:
                    stable = level
                    edges.append((since, beam, level))
                level, since = r.blocked, r.t_ms
        edges.sort()
        state = {"outer": False, "inner": False}
        first: str | None = None
        counts = {"in": 0, "out": 0}
        for _, beam, level in edges:
            if level and not any(state.values()):
                first = beam
            state[beam] = level
            if not any(state.values()) and first is not None:
                counts["in" if first == "outer" else "out"] += 1
                first = None
        out[door] = counts
    return out


def accuracy(counted: dict[str, dict[str, int]], true: dict[str, dict[str, int]]) -> float:
    errors = total = 0
    for door, t in true.items():
        c = counted.get(door, {"in": 0, "out": 0})
        errors += abs(c["in"] - t["in"]) + abs(c["out"] - t["out"])
        total += t["in"] + t["out"]
    return 1.0 - errors / total if total else 1.0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--seeds", type=int, default=5)
    args = p.parse_args()
    print(
        f"door detector on simulated doorways: {len(DOORS)} doors x {args.hours:g} h x "
        f"{args.seeds} seeds per profile"
    )
    print(
        f"{'profile':<11} {'crossings':>9} {'detector':>9} {'naive':>8} {'transitions/s':>14} "
        f"{'naive t/s':>10} {'speed ratio':>11}"
    )
    for name, profile in PROFILES.items():
        det_acc, naive_acc, det_speed, naive_speed = [], [], [], []
        crossings = 0
        for seed in range(args.seeds):
            rows, truth = simulate(DOORS, args.hours * 3600, profile, seed=seed)
            crossings += sum(c["in"] + c["out"] for c in truth.doors.values())
            t0 = time.perf_counter()
            counted = replay(rows).doors
            t1 = time.perf_counter()
            naive = naive_counts(rows)
            t2 = time.perf_counter()
            det_acc.append(accuracy(counted, truth.doors))
            naive_acc.append(accuracy(naive, truth.doors))
            det_speed.append(len(rows) / (t1 - t0))
            naive_speed.append(len(rows) / (t2 - t1))
        d_speed, n_speed = statistics.median(det_speed), statistics.median(naive_speed)
        print(
            f"{name:<11} {crossings:>9} {statistics.mean(det_acc):>9.2%} "
            f"{statistics.mean(naive_acc):>8.2%} {d_speed:>14,.0f} {n_speed:>10,.0f} "
            f"{d_speed / n_speed:>10.2f}x"
        )
    print("accuracy: mean over seeds; speed: median over seeds, this machine, one core")


if __name__ == "__main__":
    main()
