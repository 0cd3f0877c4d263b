"""`footfall-edge run|replay|watch|check|simulate`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from gpiozero.exc import GPIOZeroError

from footfall_runtime.config import ConfigError

from .config import EdgeConfig
from .detection import BEAMS, Crossing, DetectorConfig, Fault, PresenceChange
from .outbox import OutboxLocked
from .trace import TraceError, read_trace, replay

log = logging.getLogger("footfall_edge")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _load(args: argparse.Namespace) -> EdgeConfig:
    from .settings import load_config

    return load_config(args.config)


def _pin_factory(args: argparse.Namespace, settings: EdgeConfig) -> tuple[Any, Any, Any]:
    """The default pin factory, or MockFactory driven by `--mock-trace`, with the clock
    the trace plays by (the detectors must use it too: see mockpins.TraceClock)."""
    if not getattr(args, "mock_trace", None):
        return None, None, None
    from .mockpins import TraceClock, TraceDriver, mock_factory

    factory = mock_factory()
    rows = list(read_trace(args.mock_trace))
    clock = TraceClock(args.speed)
    return factory, lambda: TraceDriver(factory, settings, rows, clock=clock), clock


def _wait_for_signal() -> None:
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    while not stop.wait(1.0):
        pass


def cmd_run(args: argparse.Namespace) -> int:
    from .agent import EdgeAgent

    settings = _load(args)
    factory, make_driver, clock = _pin_factory(args, settings)
    agent = EdgeAgent(settings, pin_factory=factory, timebase=clock)
    agent.start()
    driver = make_driver() if make_driver else None
    if driver:
        driver.start()
    try:
        _wait_for_signal()
    finally:
        if driver:
            driver.stop()
        agent.stop()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        base = DetectorConfig(debounce_ms=args.debounce_ms, blocked_ms=round(args.blocked_s * 1000))
    except ValueError as exc:
        raise ConfigError(f"replay options: {exc}") from None
    door_configs: dict[str, DetectorConfig] = {}
    if args.config:
        settings = _load(args)
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


def cmd_watch(args: argparse.Namespace) -> int:
    """A live view for the installer's walk test: beam states, counts and events."""
    from .sensing import Sensing, Stamped

    settings = _load(args)
    factory, make_driver, clock = _pin_factory(args, settings)
    counts = {d.id: {"in": 0, "out": 0} for d in settings.doors}
    lock = threading.Lock()
    out = sys.stdout

    def show(events: list[Stamped]) -> None:
        with lock:
            for s in events:
                e = s.event
                when = time.strftime("%H:%M:%S", time.localtime(s.wall_ms / 1000))
                if isinstance(e, Crossing):
                    counts[e.door][e.dir] += 1
                    text = f"{e.door}: {e.dir.upper()}"
                elif isinstance(e, Fault):
                    text = f"{e.source}: {e.fault} {'RAISED' if e.active else 'cleared'}"
                else:
                    assert isinstance(e, PresenceChange)
                    text = f"{e.sensor}: {'occupied' if e.occupied else 'vacant'}"
                out.write(f"\r\033[K{when}.{s.wall_ms % 1000:03d} {text}\n")
            out.flush()

    sensing = Sensing(settings, show, factory, timebase=clock)
    sensing.start()
    driver = make_driver() if make_driver else None
    if driver:
        driver.start()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out.write("walk test: pass through each door both ways; Ctrl-C to stop\n")
    try:
        while not stop.wait(0.2):
            parts = []
            for door_id, det in sensing.doors.items():
                beams = " ".join(
                    f"{b}:{'#' if lvl else '.'}" for b, lvl in zip(BEAMS, det.levels, strict=True)
                )
                c = counts[door_id]
                parts.append(f"{door_id} [{beams}] in {c['in']} out {c['out']}")
            for room_id, room in sensing.rooms.items():
                parts.append(f"{room_id} {'occupied' if room.occupied else 'vacant'}")
            with lock:
                out.write("\r\033[K" + " | ".join(parts))
                out.flush()
            # What the last rows started is certain once debounce and gap are over.
            if (
                driver is not None
                and args.exit_after_trace
                and driver.done.is_set()
                and clock.now_ms() >= driver.last_ms + _settle_ms(settings)
            ):
                time.sleep(0.5)  # and the sensing thread has looked (two ticks)
                break
    finally:
        if driver:
            driver.stop()
        sensing.stop()
        out.write("\n")
        json.dump({"doors": counts}, out)
        out.write("\n")
    return 0


def _settle_ms(settings: EdgeConfig) -> int:
    """Detector time after the last edge by which everything it started is decided."""
    from .sensing import Sensing

    debounce = max((settings.detector_config(d).debounce_ms for d in settings.doors), default=0)
    return debounce + settings.detector.gap_ms + Sensing.LATE_MS + 50


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the configuration, show the pins and try the broker."""
    from .gpio import describe_pins

    settings = _load(args)
    print(f"configuration OK: site {settings.site}, agent {settings.agent}")
    print(f"outbox: {settings.outbox_path} (at most {settings.max_events:,} events)")
    for line in describe_pins(settings):
        print("  " + line)
    ok = broker_reachable(settings, timeout_s=args.timeout)
    return 0 if ok else 1


def broker_reachable(settings: EdgeConfig, timeout_s: float = 5.0) -> bool:
    """TCP, then an MQTT CONNECT with the agent's credentials; prints what happened and,
    when it fails, what to check (the same words as the running agent's log)."""
    from footfall_runtime.mqttclient import explain_connect_error, explain_refusal, make_client

    m = settings.mqtt
    try:
        with socket.create_connection((m.host, m.port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason, check = explain_connect_error(exc, m)
        print(f"broker {m.host}:{m.port}: NOT reachable: {reason}; check {check}")
        return False
    client = make_client(m, f"footfall-check-{settings.agent}")
    result: dict[str, Any] = {}
    done = threading.Event()

    def on_connect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        result["rc"] = rc
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(m.host, m.port, keepalive=10)
    except OSError as exc:
        reason, check = explain_connect_error(exc, m)
        print(f"broker {m.host}:{m.port}: connection failed: {reason}; check {check}")
        return False
    except ValueError as exc:
        print(f"broker {m.host}:{m.port}: connection failed ({exc})")
        return False
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            print(f"broker {m.host}:{m.port}: no answer to CONNECT within {timeout_s:g} s")
            return False
        rc = result["rc"]
        if rc.is_failure:
            _, check = explain_refusal(rc, m)
            print(
                f"broker {m.host}:{m.port}: refused the agent's credentials ({rc}); check {check}"
            )
            return False
        print(f"broker {m.host}:{m.port}: reachable, credentials accepted")
        return True
    finally:
        client.disconnect()
        client.loop_stop()


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
    p = argparse.ArgumentParser(prog="footfall-edge", description=__doc__)
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
    _setup_logging(args.verbose)
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
