"""The edge agent: sensing -> durable outbox -> MQTT, plus health."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from gpiozero.pins import Factory

from footfall_contract import __version__ as SOFTWARE_VERSION
from footfall_contract.timefmt import format_ts

from .config import EdgeConfig
from .detection import Crossing, Fault, PresenceChange
from .outbox import NewEvent, Outbox
from .publisher import Publisher, now_ms
from .sensing import Sensing, Stamped

log = logging.getLogger(__name__)

CPU_TEMP = Path("/sys/class/thermal/thermal_zone0/temp")


def to_new_event(s: Stamped) -> NewEvent:
    ts = format_ts(s.wall_ms)
    e = s.event
    if isinstance(e, Crossing):
        return NewEvent("crossing", {"ts": ts, "door": e.door, "dir": e.dir})
    if isinstance(e, PresenceChange):
        return NewEvent("presence", {"ts": ts, "sensor": e.sensor, "occupied": e.occupied})
    assert isinstance(e, Fault)
    return NewEvent("fault", {"ts": ts, "source": e.source, "fault": e.fault, "active": e.active})


def cpu_temperature_c() -> float | None:
    try:
        return round(int(CPU_TEMP.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


class EdgeAgent:
    def __init__(self, settings: EdgeConfig, pin_factory: Factory | None = None) -> None:
        self.settings = settings
        self.outbox = Outbox(settings.outbox_path, settings.max_events)
        self.publisher = Publisher(
            settings.mqtt,
            settings.site,
            settings.agent,
            self.outbox,
            batch_max=settings.publish.batch_max,
            inflight_max=settings.publish.inflight_max,
            health=self.health,
            health_interval_s=settings.publish.health_interval_s,
        )
        self.sensing = Sensing(settings, self._store, pin_factory)
        self._started = time.monotonic()
        self._stopped = threading.Event()

    def _store(self, events: list[Stamped]) -> None:
        self.outbox.append([to_new_event(s) for s in events])
        self.publisher.wake()

    def health(self) -> dict[str, Any]:
        totals = self.outbox.totals()
        for door in self.settings.doors:
            totals.setdefault(door.id, {"in": 0, "out": 0})
        body: dict[str, Any] = {
            "epoch": self.outbox.epoch,
            "ts": format_ts(now_ms()),
            "uptime_s": round(time.monotonic() - self._started, 1),
            "queue_depth": self.outbox.depth,
            "totals": totals,
            "dropped": self.outbox.dropped,
            "inflight": self.publisher.inflight,
            "next_seq": self.outbox.next_seq,
            "faults": [
                f"{door}/{fault}"
                for door, det in self.sensing.doors.items()
                for fault in det.active_faults
            ],
            "sw": SOFTWARE_VERSION,
        }
        temp = cpu_temperature_c()
        if temp is not None:
            body["cpu_temp_c"] = temp
        return body

    def start(self) -> None:
        log.info(
            "agent %s/%s starting: epoch %s, %d events waiting in the outbox",
            self.settings.site,
            self.settings.agent,
            self.outbox.epoch,
            self.outbox.depth,
        )
        self.publisher.start()
        self.sensing.start()

    def stop(self) -> None:
        self.sensing.stop()
        self.publisher.stop()
        self.outbox.close()
        self._stopped.set()

    def wait(self) -> None:
        self._stopped.wait()
