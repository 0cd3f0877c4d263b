"""The installer's commands at the door, `footfall-edge check` (the configuration, the
pins and the broker with the agent's own credentials) and `watch` (a live walk test), and
what `run` shares with them: the settings, and the pins (real, or mock pins playing a
trace). Kept apart from the service's own path so `run` stays short to read."""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from footfall_runtime.service import stop_on_signals

from .config import EdgeConfig
from .detection import BEAMS, Crossing, Fault, PresenceChange
from .trace import read_trace

if TYPE_CHECKING:
    from .sensing import Sensing


def load_settings(args: argparse.Namespace) -> EdgeConfig:
    from .settings import load_config

    return load_config(args.config)


def pin_factory(args: argparse.Namespace, settings: EdgeConfig) -> tuple[Any, Any, Any]:
    """The default pin factory, or MockFactory driven by `--mock-trace`, with the clock
    the trace plays by (the detectors must use it too: see mockpins.TraceClock)."""
    if not getattr(args, "mock_trace", None):
        return None, None, None
    from .mockpins import TraceClock, TraceDriver, mock_factory

    factory = mock_factory()
    rows = list(read_trace(args.mock_trace))
    clock = TraceClock(args.speed)
    return factory, lambda: TraceDriver(factory, settings, rows, clock=clock), clock


def cmd_watch(args: argparse.Namespace) -> int:
    """A live view for the installer's walk test: beam states, counts and events."""
    from .sensing import Sensing, Stamped

    settings = load_settings(args)
    factory, make_driver, clock = pin_factory(args, settings)
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
    with stop_on_signals() as stop:
        out.write("walk test: pass through each door both ways; Ctrl-C to stop\n")
        try:
            while not stop.wait(0.2):
                line = _status_line(sensing, counts)
                with lock:
                    out.write("\r\033[K" + line)
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


def _status_line(sensing: Sensing, counts: dict[str, dict[str, int]]) -> str:
    """Each door's beams (# blocked) and counts, each room's presence."""
    parts = []
    for door_id, det in sensing.doors.items():
        beams = " ".join(
            f"{b}:{'#' if lvl else '.'}" for b, lvl in zip(BEAMS, det.levels, strict=True)
        )
        c = counts[door_id]
        parts.append(f"{door_id} [{beams}] in {c['in']} out {c['out']}")
    for room_id, room in sensing.rooms.items():
        parts.append(f"{room_id} {'occupied' if room.occupied else 'vacant'}")
    return " | ".join(parts)


def _settle_ms(settings: EdgeConfig) -> int:
    """Detector time after the last edge by which everything it started is decided."""
    from .sensing import Sensing

    debounce = max((settings.detector_config(d).debounce_ms for d in settings.doors), default=0)
    return debounce + settings.detector.gap_ms + Sensing.LATE_MS + 50


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the configuration, show the pins and try the broker."""
    from .gpio import describe_pins

    settings = load_settings(args)
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
