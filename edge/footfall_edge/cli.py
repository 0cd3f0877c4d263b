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

from footfall_contract.config import ConfigError

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


def _pin_factory(args: argparse.Namespace, settings: EdgeConfig) -> tuple[Any, Any]:
    """The default pin factory, or MockFactory driven by `--mock-trace`."""
    if not getattr(args, "mock_trace", None):
        return None, None
    from .mockpins import TraceDriver, mock_factory

    factory = mock_factory()
    rows = list(read_trace(args.mock_trace))
    return factory, lambda: TraceDriver(factory, settings, rows, speed=args.speed)


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
    factory, make_driver = _pin_factory(args, settings)
    agent = EdgeAgent(settings, pin_factory=factory)
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

    doors = [d.strip() for d in args.doors.split(",") if d.strip()]
    profile = dataclasses.replace(PROFILES[args.profile], p_out=args.p_out)
    rows, truth = simulate(doors, args.minutes * 60.0, profile, seed=args.seed)
    with open(args.output, "w", newline="", encoding="utf-8") as fh:
        write_trace(rows, fh)
    json.dump({"doors": truth.doors, "rows": len(rows)}, sys.stdout)
    sys.stdout.write("\n")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """A live view for the installer's walk test: beam states, counts and events."""
    from .sensing import Sensing, Stamped

    settings = _load(args)
    factory, make_driver = _pin_factory(args, settings)
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

    sensing = Sensing(settings, show, factory)
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
            if driver and driver.done.is_set() and args.exit_after_trace:
                time.sleep(0.5)
                break
    finally:
        if driver:
            driver.stop()
        sensing.stop()
        out.write("\n")
        json.dump({"doors": counts}, out)
        out.write("\n")
    return 0


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
    """TCP, then an MQTT CONNECT with the agent's credentials; prints what happened."""
    from footfall_contract.mqttclient import make_client

    m = settings.mqtt
    try:
        with socket.create_connection((m.host, m.port), timeout=timeout_s):
            pass
    except OSError as exc:
        print(f"broker {m.host}:{m.port}: NOT reachable ({exc})")
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
    except (OSError, ValueError) as exc:
        print(f"broker {m.host}:{m.port}: connection failed ({exc})")
        return False
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            print(f"broker {m.host}:{m.port}: no answer to CONNECT within {timeout_s:g} s")
            return False
        rc = result["rc"]
        if rc.is_failure:
            print(f"broker {m.host}:{m.port}: refused the agent's credentials ({rc})")
            return False
        print(f"broker {m.host}:{m.port}: reachable, credentials accepted")
        return True
    finally:
        client.disconnect()
        client.loop_stop()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="footfall-edge", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--config",
            type=Path,
            help="edge.toml (FOOTFALL_* environment variables override it and can replace it)",
        )

    def with_mock(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--mock-trace",
            type=Path,
            metavar="TRACE.csv",
            help="no hardware: simulated pins replaying this trace in real time",
        )
        sp.add_argument("--speed", type=float, default=1.0, help="trace speed-up factor")

    run = sub.add_parser("run", help="count, store and publish (the service)")
    with_config(run)
    with_mock(run)
    run.set_defaults(func=cmd_run)

    rp = sub.add_parser("replay", help="count a recorded trace in virtual time; prints JSON")
    rp.add_argument("trace", type=Path)
    with_config(rp)
    rp.add_argument("--debounce-ms", type=int, default=20)
    rp.add_argument("--blocked-s", type=float, default=30.0)
    rp.set_defaults(func=cmd_replay)

    w = sub.add_parser("watch", help="live beam states and counts for a walk test")
    with_config(w)
    with_mock(w)
    w.add_argument("--exit-after-trace", action="store_true", help=argparse.SUPPRESS)
    w.set_defaults(func=cmd_watch)

    c = sub.add_parser("check", help="validate the config, show pins, try the broker")
    with_config(c)
    c.add_argument("--timeout", type=float, default=5.0)
    c.set_defaults(func=cmd_check)

    s = sub.add_parser("simulate", help="write a simulated doorway trace; prints true counts")
    s.add_argument("--doors", default="door-1")
    s.add_argument("--minutes", type=float, default=60.0)
    s.add_argument("--profile", choices=["separable", "tailgating", "dense"], default="separable")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--p-out", type=float, default=0.5, help="share of bodies walking out")
    s.add_argument("-o", "--output", type=Path, required=True)
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
