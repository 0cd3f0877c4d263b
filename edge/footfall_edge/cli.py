"""`footfall-edge run|replay|watch|check|simulate`: the arguments, the service's run
loop, and the exit status each kind of failure gets (2 settings or trace, 3 GPIO pins
busy, 4 outbox locked). The installer's `check` and `watch`: `cli_installer`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpiozero.exc import GPIOZeroError

from footfall_runtime.config import ConfigError
from footfall_runtime.service import run_until_signal, setup_logging

from .cli_installer import cmd_check, cmd_watch, load_settings, pin_factory
from .detection import DetectorConfig
from .outbox_store import OutboxLocked
from .trace import TraceError, read_trace, replay

if TYPE_CHECKING:
    from .mockpins import TraceDriver

log = logging.getLogger("footfall_edge")

DESCRIPTION = "`footfall-edge run|replay|watch|check|simulate`."
"""What `--help` says first (unchanged from when it was this module's docstring)."""


def cmd_run(args: argparse.Namespace) -> int:
    from .agent import EdgeAgent

    settings = load_settings(args)
    factory, make_driver, clock = pin_factory(args, settings)
    agent = EdgeAgent(settings, pin_factory=factory, timebase=clock)
    driver: TraceDriver | None = None

    def start() -> None:
        nonlocal driver
        agent.start()
        driver = make_driver() if make_driver else None
        if driver:
            driver.start()

    def stop() -> None:
        log.info("stopping")
        if driver:
            driver.stop()
        agent.stop()

    return run_until_signal(start, stop)


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        base = DetectorConfig(debounce_ms=args.debounce_ms, blocked_ms=round(args.blocked_s * 1000))
    except ValueError as exc:
        raise ConfigError(f"replay options: {exc}") from None
    door_configs: dict[str, DetectorConfig] = {}
    if args.config:
        settings = load_settings(args)
        door_configs = {d.id: settings.detector_config(d) for d in settings.doors}
    result = replay(read_trace(args.trace), base, door_configs)
    json.dump(result.as_json(), sys.stdout, separators=(", ", ": "))
    sys.stdout.write("\n")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from .simulation.doorway import PROFILES, simulate
    from .trace import write_trace

    profile = dataclasses.replace(PROFILES[args.profile], p_out=args.p_out)
    rows, truth = simulate(args.doors, args.minutes * 60.0, profile, seed=args.seed)
    try:
        with open(args.output, "w", newline="", encoding="utf-8") as fh:
            write_trace(rows, fh)
    except OSError as exc:
        raise TraceError(f"{args.output}: cannot write the trace: {exc.strerror}") from None
    json.dump({"doors": truth.doors, "rows": len(rows)}, sys.stdout)
    sys.stdout.write("\n")
    return 0


MAX_SIM_DOORS = 100


def _number(kind: type[float] | type[int], low: float, high: float | None = None) -> Any:
    """An argparse type: a number within [low, high], or an error naming the range."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None
        if value != value or value < low or (high is not None and value > high):
            bounds = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, not {text}")
        return value

    return parse


def _above_zero(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def sim_doors(text: str) -> list[str]:
    """`--doors`: a count N (doors door-1 .. door-N) or door ids separated by commas."""
    from footfall_contract.topics import check_id

    text = text.strip()
    if text.isdigit():
        n = int(text)
        if not 1 <= n <= MAX_SIM_DOORS:
            raise argparse.ArgumentTypeError(
                f"a number of doors from 1 to {MAX_SIM_DOORS}, not {n}"
            )
        return [f"door-{i}" for i in range(1, n + 1)]
    doors = [d.strip() for d in text.split(",")]
    if not all(doors):
        raise argparse.ArgumentTypeError(f"an empty door id in {text!r}")
    for door in doors:
        try:
            check_id(door, "door id")
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    if len(set(doors)) != len(doors):
        raise argparse.ArgumentTypeError(f"a door id appears twice in {text!r}")
    return doors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="footfall-edge", description=DESCRIPTION)
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--config",
            type=Path,
            metavar="EDGE.toml",
            help="edge.toml (FOOTFALL_* environment variables override it and can replace it)",
        )

    def with_mock(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--mock-trace",
            type=Path,
            metavar="TRACE.csv",
            help="no hardware: simulated pins replaying this trace (from `simulate` or a "
            "recording) in real time",
        )
        sp.add_argument(
            "--speed",
            type=_above_zero,
            default=1.0,
            metavar="FACTOR",
            help="play --mock-trace this many times faster than real time; counts do not "
            "depend on it (default 1)",
        )

    run = sub.add_parser("run", help="count, store and publish (the service)")
    with_config(run)
    with_mock(run)
    run.set_defaults(func=cmd_run)

    rp = sub.add_parser("replay", help="count a recorded trace in virtual time; prints JSON")
    rp.add_argument(
        "trace", type=Path, metavar="TRACE.csv", help="the trace: t_ms,door,beam,blocked"
    )
    with_config(rp)
    rp.add_argument(
        "--debounce-ms",
        type=_number(int, 0, 1000),
        default=20,
        metavar="MS",
        help="ignore beam changes shorter than this (0..1000, default 20; --config's "
        "per-door values win)",
    )
    rp.add_argument(
        "--blocked-s",
        type=_above_zero,
        default=30.0,
        metavar="S",
        help="a beam blocked this long raises beam_blocked (default 30)",
    )
    rp.set_defaults(func=cmd_replay)

    w = sub.add_parser("watch", help="live beam states and counts for a walk test")
    with_config(w)
    with_mock(w)
    w.add_argument("--exit-after-trace", action="store_true", help=argparse.SUPPRESS)
    w.set_defaults(func=cmd_watch)

    c = sub.add_parser("check", help="validate the config, show pins, try the broker")
    with_config(c)
    c.add_argument(
        "--timeout",
        type=_above_zero,
        default=5.0,
        metavar="S",
        help="seconds to wait for the broker (default 5)",
    )
    c.set_defaults(func=cmd_check)

    s = sub.add_parser("simulate", help="write a simulated doorway trace; prints true counts")
    s.add_argument(
        "--doors",
        type=sim_doors,
        default=["door-1"],
        metavar="N|ID,ID",
        help="how many doors (3: door-1, door-2, door-3) or their ids separated by commas "
        "(default: door-1)",
    )
    s.add_argument(
        "--minutes",
        type=_above_zero,
        default=60.0,
        help="simulated time, more than 0 (default 60)",
    )
    s.add_argument(
        "--profile",
        choices=["separable", "tailgating", "dense"],
        default="separable",
        help="separable: one body at a time; tailgating: 30%% walk close behind another; "
        "dense: busy, many tailgaters and turn-backs (default separable)",
    )
    s.add_argument("--seed", type=int, default=0, help="random seed: the same seed, the same trace")
    s.add_argument(
        "--p-out",
        type=_number(float, 0.0, 1.0),
        default=0.5,
        metavar="SHARE",
        help="share of bodies walking out, 0..1 (default 0.5)",
    )
    s.add_argument(
        "-o", "--output", type=Path, required=True, metavar="TRACE.csv", help="trace file to write"
    )
    s.set_defaults(func=cmd_simulate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    try:
        rc: int = args.func(args)
        return rc
    except (ConfigError, TraceError) as exc:
        print(f"footfall-edge: {exc}", file=sys.stderr)
        return 2
    except GPIOZeroError as exc:
        # Most often another process (the service, during a walk test) holds the pins.
        print(
            f"footfall-edge: cannot open the GPIO pins: {exc}. Is footfall-edge already "
            "running (systemctl stop footfall-edge)?",
            file=sys.stderr,
        )
        return 3
    except OutboxLocked as exc:
        # Nothing was touched; systemd starts the agent again, which waits again.
        print(f"footfall-edge: {exc}", file=sys.stderr)
        return 4
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
