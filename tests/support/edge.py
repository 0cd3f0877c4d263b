"""Edge agent helpers for tests: settings, and bodies walking past MockFactory pins."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from footfall_edge.config import EdgeConfig
from footfall_edge.settings import load_config_here

DOORS = [("door-a", 17, 27), ("door-b", 5, 6)]


def edge_settings(tmp_path: Path, port: int = 1, **overrides: Any) -> EdgeConfig:
    base: dict[str, Any] = {
        "site": "test-site",
        "agent": "pi-1",
        "state_dir": tmp_path / "state",
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "keepalive_s": 5,
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 1,
        },
        # This machine's kernel may say its clock is not synchronized: do not wait for NTP.
        "publish": {"health_interval_s": 1.0, "wait_for_clock_s": 0},
        "doors": [{"id": d, "outer_pin": o, "inner_pin": i} for d, o, i in DOORS],
        "presence": [{"id": "room-1", "pin": 22, "hold_s": 0.3}],
    }
    base.update(overrides)
    return load_config_here(None, **base)


def edge_toml(settings: EdgeConfig) -> str:
    """The same settings as a TOML file, for running the agent as a process."""
    m = settings.mqtt
    lines = [
        f'site = "{settings.site}"',
        f'agent = "{settings.agent}"',
        f'state_dir = "{settings.state_dir}"',
        "[mqtt]",
        f'host = "{m.host}"',
        f"port = {m.port}",
        f"keepalive_s = {m.keepalive_s}",
        f"reconnect_min_s = {m.reconnect_min_s}",
        f"reconnect_max_s = {m.reconnect_max_s}",
        "[publish]",
        f"health_interval_s = {settings.publish.health_interval_s}",
        f"batch_max = {settings.publish.batch_max}",
        f"wait_for_clock_s = {settings.publish.wait_for_clock_s}",
    ]
    for d in settings.doors:
        lines += [
            "[[doors]]",
            f'id = "{d.id}"',
            f"outer_pin = {d.outer_pin}",
            f"inner_pin = {d.inner_pin}",
        ]
    for p in settings.presence:
        lines += ["[[presence]]", f'id = "{p.id}"', f"pin = {p.pin}", f"hold_s = {p.hold_s}"]
    return "\n".join(lines) + "\n"


def clear_beams(factory: MockFactory, settings: EdgeConfig) -> None:
    """Beams intact: the receivers pull the (pulled-up) pins low."""
    for d in settings.doors:
        factory.pin(d.outer_pin).drive_low()
        factory.pin(d.inner_pin).drive_low()


def walk(
    factory: MockFactory, outer: int, inner: int, direction: str, step_s: float = 0.05
) -> None:
    """A body passing both beams in real time: blocked is high (open collector + pull-up)."""
    first, second = (outer, inner) if direction == "in" else (inner, outer)
    for pin, level in ((first, True), (second, True), (first, False), (second, False)):
        p = factory.pin(pin)
        (p.drive_high if level else p.drive_low)()
        time.sleep(step_s)
