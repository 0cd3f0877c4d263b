"""The edge agent: sensing -> durable outbox -> MQTT, plus health."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from gpiozero.pins import Factory

from footfall_contract import __version__ as SOFTWARE_VERSION
from footfall_contract.timefmt import format_ts

from .clock import boot_id, clock_synchronized
from .config import EdgeConfig
from .detection import Crossing, Fault, PresenceChange
from .gpio import monotonic_ms
from .outbox import NewEvent, Outbox
from .publisher import Publisher, now_ms
from .sensing import Sensing, Stamped, Timebase

log = logging.getLogger(__name__)

CPU_TEMP = Path("/sys/class/thermal/thermal_zone0/temp")


def to_new_event(s: Stamped, clock_ok: bool = True) -> NewEvent:
    """The wire form; with the monotonic time too when the wall clock is not trusted."""
    ts = format_ts(s.wall_ms)
    e = s.event
    mono = None if clock_ok else (e.t_ms if s.mono_ms is None else s.mono_ms)
    if isinstance(e, Crossing):
        return NewEvent("crossing", {"ts": ts, "door": e.door, "dir": e.dir}, mono)
    if isinstance(e, PresenceChange):
        return NewEvent("presence", {"ts": ts, "sensor": e.sensor, "occupied": e.occupied}, mono)
    assert isinstance(e, Fault)
    body = {"ts": ts, "source": e.source, "fault": e.fault, "active": e.active}
    return NewEvent("fault", body, mono)


def cpu_temperature_c() -> float | None:
    try:
        return round(int(CPU_TEMP.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


class OutboxAgent:
    """The part of an agent that stores and publishes: the durable outbox, the MQTT
    publisher and the health report. `EdgeAgent` adds the pins; the crowd simulator's
    virtual agents feed detector events straight in."""

    def __init__(self, settings: EdgeConfig) -> None:
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
        self._started = time.monotonic()

    def health(self) -> dict[str, Any]:
        totals = self.outbox.totals()
        for door in self.settings.doors:
            totals.setdefault(door.id, {"in": 0, "out": 0})
        return {
            "epoch": self.outbox.epoch,
            "ts": format_ts(now_ms()),
            "uptime_s": round(time.monotonic() - self._started, 1),
            "queue_depth": self.outbox.depth,
            "totals": totals,
            "dropped": self.outbox.dropped,
            "inflight": self.publisher.inflight,
            "next_seq": self.outbox.next_seq,
            "sw": SOFTWARE_VERSION,
        }

    def start(self) -> None:
        self.publisher.start()

    def stop(self) -> None:
        self.publisher.stop()
        self.outbox.close()


class EdgeAgent(OutboxAgent):
    def __init__(
        self,
        settings: EdgeConfig,
        pin_factory: Factory | None = None,
        timebase: Timebase | None = None,
    ) -> None:
        """`timebase`: the detectors' clock, when not the monotonic one (a trace played
        on mock pins: `mockpins.TraceClock`)."""
        super().__init__(settings)
        self.sensing = Sensing(settings, self._store, pin_factory, timebase=timebase)
        self._provisional = self.outbox.provisional(boot_id()) > 0
        self._clock_state: str | None = None
        """None (synchronized or not asked), "held" (events wait for NTP) or "unsynced"
        (events go out flagged clock_unsynced): what the log last said."""
        self.publisher.ready_to_send = self._times_ready

    def _store(self, events: list[Stamped]) -> None:
        clock_ok = clock_synchronized() is not False
        self.outbox.append([to_new_event(s, clock_ok) for s in events], boot_id())
        if not clock_ok:
            self._provisional = True
        self.publisher.wake()

    def _times_ready(self) -> bool:
        """Whether events may go out: not while this boot's events carry times from a
        clock NTP has not set yet, for up to `wait_for_clock_s` after start. Each change
        of that state is logged once: a Pi that holds its events without saying why
        looks like a Pi that counts nothing."""
        if not self._provisional:
            return True
        if clock_synchronized() is not False:
            fixed = self.outbox.fix_times(boot_id(), now_ms(), monotonic_ms())
            log.info(
                "clock synchronized: corrected the times of %d events%s",
                fixed,
                "; sending the events held for it" if self._clock_state == "held" else "",
            )
            self._clock_state = None
            self._provisional = False
            return True
        wait_s = self.settings.publish.wait_for_clock_s
        if time.monotonic() - self._started < wait_s:
            if self._clock_state != "held":
                self._clock_state = "held"
                log.warning(
                    "holding the events in the outbox (%d now): the system clock is not "
                    "synchronized (NTP has not set it since boot), so their times may be "
                    "wrong. They go out with corrected times once it is, or in %.0f s at "
                    "the latest with the times it gives, flagged clock_unsynced. Check "
                    "`timedatectl` (System clock synchronized: yes; NTP service: active) "
                    "and that this Pi reaches an NTP server (UDP port 123)",
                    self.outbox.depth,
                    max(0.0, wait_s - (time.monotonic() - self._started)),
                )
            return False
        if self._clock_state != "unsynced":
            self._clock_state = "unsynced"
            log.warning(
                "clock not synchronized %.0f s after start; sending events with the times it "
                "gives, flagged clock_unsynced (check `timedatectl` and NTP)",
                wait_s,
            )
        return True

    def health(self) -> dict[str, Any]:
        body = super().health()
        body["clock_synced"] = clock_synchronized()
        body["faults"] = [
            f"{door}/{fault}"
            for door, det in self.sensing.doors.items()
            for fault in det.active_faults
        ]
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
        super().stop()
