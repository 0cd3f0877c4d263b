"""`footfall-edge` with a wall clock a test controls, for tests that must kill the agent
(SIGKILL) while its clock is wrong: `python -m tests.edge.clocked_agent CLOCK.json ARGS`.

CLOCK.json is `{"synced": bool, "slow_ms": int}`, read at every use: while `synced` is
false the kernel's answer is "not synchronized" and the wall clock is `slow_ms` behind."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import footfall_edge.agent as agent_module
import footfall_edge.sensing as sensing_module
from footfall_edge.cli import main


def run(clock: Path, argv: list[str]) -> int:
    real = sensing_module.wall_clock_ms

    def state() -> dict[str, int]:
        value: dict[str, int] = json.loads(clock.read_text())
        return value

    def wall_clock_ms(mono_ms: int) -> int:
        s = state()
        return real(mono_ms) - (0 if s["synced"] else int(s["slow_ms"]))

    def clock_synchronized() -> bool:
        return bool(state()["synced"])

    setattr(agent_module, "clock_synchronized", clock_synchronized)  # noqa: B010
    sensing_module.wall_clock_ms = wall_clock_ms
    return main(argv)


def set_clock(clock: Path, synced: bool, slow_ms: int = 0) -> None:
    tmp = clock.with_suffix(".tmp")
    tmp.write_text(json.dumps({"synced": synced, "slow_ms": slow_ms}))
    tmp.replace(clock)


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]), sys.argv[2:]))
