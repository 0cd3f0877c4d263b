"""The collector: MQTT in, InfluxDB out, live occupancy per zone. This module is the MQTT
side and wires the parts: `ingest.py` validates, `live.py` keeps the live occupancy,
`writer.py` writes to InfluxDB, `history.py` recomputes history.

Nothing is lost: messages arrive at QoS 1 in a persistent session (fixed client id, the
broker keeps what comes while we are away; `footfall_runtime.consumer`) and are
acknowledged only after everything they carry is written (paho `manual_ack`), so a
crash, a broker restart or an InfluxDB outage just means the broker delivers them again.

Nothing is counted twice: InfluxDB points get times derived from the event (see
`points.py`), so re-writing is idempotent; live occupancy remembers the recent keys of
the crossings it applied per agent (`dedup.py`) and asks InfluxDB about older ones, and
after a restart it is rebuilt from the crossings InfluxDB already holds, read in pages
(`stored.py`).

Memory is bounded for any QoS: Receive Maximum bounds QoS 1 messages in flight, and
QoS 0 messages are dropped (counted) while too much waits for InfluxDB.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import paho.mqtt.client as mqtt

from footfall_contract.site import Site
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import agent_subscription
from footfall_runtime.consumer import AckingConsumer
from footfall_runtime.ratelog import LogLimiter
from footfall_runtime.service import Clock, SystemClock, Threads

from .config import CollectorSettings, duration_days
from .history import HistoryWorker
from .influx import Influx, InfluxLink, PermanentWriteError, RetryableWriteError, connect
from .ingest import CrossingSeen, Ingest, Limits, rejection_point
from .live import LiveOccupancy
from .metrics import Metrics
from .points import UniqueTimes
from .schema import history_pending_point
from .stored import crossing_pages, stored_times
from .writer import InfluxWriter, Work

log = logging.getLogger(__name__)


class Collector:
    REBUILD_SPAN_MS = 3_600_000
    """The rebuild reads an hour of crossings per query, each streamed in pages."""
    REBUILD_PAGE = 10_000

    def __init__(
        self,
        settings: CollectorSettings,
        site: Site,
        clock: Clock | None = None,
        influx: Influx | None = None,
    ) -> None:
        self.settings = settings
        self.site = site
        self.clock = clock or SystemClock()
        self.influx = influx or connect(settings.influx)
        ing = settings.ingest
        max_age_days = ing.max_age_days or duration_days(settings.influx.retention_duration)
        self.ingest = Ingest(
            site,
            Limits(
                max_payload_bytes=ing.max_payload_bytes,
                max_future_ms=round(ing.max_future_s * 1000),
                max_age_ms=None if max_age_days is None else round(max_age_days * 86_400_000),
            ),
        )
        self.metrics = Metrics()
        self._overload_drops = self.metrics.rejected.labels("overload_qos0")
        self._stop = threading.Event()
        self._threads = Threads()
        self._unique = UniqueTimes()
        self._limiter = LogLimiter(60.0)
        self.live = LiveOccupancy(site, self.metrics, ing.dedup_keys_per_agent, self._unique)
        self.writer = InfluxWriter(
            self.influx,
            ing,
            self.metrics,
            InfluxLink(
                settings.influx,
                log,
                "Nothing is written or counted until it answers; the agents' messages wait "
                "at the broker",
            ),
            self._stop,
            lambda: self._stop.is_set() and not self.mqtt_connected,
            self._limiter,
        )
        self.metrics.unacked.set_function(lambda: self.writer.unacked)
        self.metrics.queued_lines.set_function(lambda: self.writer.queued_lines)
        self.consumer = AckingConsumer(
            settings.mqtt,
            settings.client_id or f"footfall-collector-{site.site}",
            [(agent_subscription(site.site), 1)],
            self._handle,
            logger=log,
            meanwhile="Nothing is counted meanwhile; agents keep their events until it connects",
            stopping=self._stop,
            session_expiry_s=ing.session_expiry_s,
            receive_maximum=ing.receive_maximum,
            on_connection=lambda up: self.metrics.connected.labels("mqtt").set(1 if up else 0),
            buffered_reads=True,
        )
        self.client = self.consumer.client
        self.ready = self.consumer.ready

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Rebuild from InfluxDB (waiting for it), then consume; returns once running."""
        self.writer.retry("create database", self.influx.ensure_database)
        if self._stop.is_set():  # interrupted while waiting for InfluxDB
            return
        self._rebuild()
        if self._stop.is_set():
            return
        # Everything so far lives as long as the process: keep the cyclic collector off
        # it, and let it run less often (messages make short-lived objects, no cycles).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        self._threads.spawn(lambda: self.writer.run(self._prepare), "influx-writer")
        self._threads.spawn(self._ticker, "ticker")
        if self.settings.history.enabled:
            self._threads.spawn(self._history, "history")
        self.consumer.start()

    def interrupt(self) -> None:
        """Give up waiting (for InfluxDB, at start): a signal must end a collector that
        cannot reach it, not leave it to systemd's SIGKILL."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        self.consumer.stop()
        self._threads.join(timeout_s=10)
        self.influx.close()

    def _rebuild(self) -> None:
        """Occupancy since the last reset from the crossings InfluxDB holds."""
        applied = self.writer.retry("rebuild occupancy", self._rebuild_once)
        log.info(
            "rebuilt occupancy from %d crossings since %s",
            applied or 0,
            format_ts(self.live.last_reset_ms),
        )

    def _rebuild_once(self) -> int:
        """One attempt, from scratch (`stored.crossing_pages`). Crossings stamped after
        the coming reset are held for it, as live ones are."""
        now = self.clock.now_ms()
        self.live.begin_rebuild(now)
        horizon = now + round(self.settings.ingest.max_future_s * 1000) + 1
        pages = crossing_pages(
            self.influx,
            self.site.site,
            self.live.last_reset_ms,
            horizon,
            self.REBUILD_SPAN_MS,
            self.REBUILD_PAGE,
        )
        applied = sum(self.live.rebuild_page(page) for page in pages)
        self.live.touch_all()
        return applied

    # -- each message (paho's thread, through the consumer) -----------------------------

    @property
    def mqtt_connected(self) -> bool:
        return self.consumer.connected

    def _handle(self, generation: int, msg: mqtt.MQTTMessage) -> None:
        if msg.qos == 0 and self.writer.overloaded():
            self._overload_drops.inc()
            self._log_limited(
                "overload_qos0",
                f"overloaded ({self.writer.unacked} messages, {self.writer.queued_lines} "
                f"points waiting for InfluxDB): QoS 0 messages dropped (rejected as "
                f"overload_qos0), e.g. on {msg.topic}",
            )
            return
        now = self.clock.now_ms()
        out = self.ingest.handle(msg.topic, bytes(msg.payload), now)
        m = self.metrics
        kind = out.kind or "unknown"
        m.message_count(kind).inc()
        if out.events:
            m.event_count(kind).inc(out.events)
        agent_points, check = self.live.apply(out, now)
        points = out.points + agent_points
        for r in out.rejections:
            m.rejected.labels(r.reason).inc()
            self._log_limited(
                f"reject:{r.reason}", f"rejected ({r.reason}) from {r.agent or '?'}: {r.detail}"
            )
            points.append(rejection_point(self.site.site, r, self._unique.ns(now)))
        windows: dict[int, int] | None = None
        if out.crossings:
            windows = {}
            for c in out.crossings:
                w = self.live.window_start(c.ts_ms)
                windows[w] = min(c.ts_ms, windows.get(w, c.ts_ms))
        lines = out.lines
        lines += [p.line() for p in points]
        self.writer.put(Work(lines, (generation, msg.mid, msg.qos), windows, check or None))

    # -- around each write (the writer's thread) -------------------------------------------

    def _prepare(self, batch: list[Work]) -> tuple[list[str], Callable[[], None]] | None:
        """What goes with a batch: its checked crossings applied first, the occupancy
        they and the others changed, and the history marks; then its acknowledgement."""
        if batch[0].check and not self._resolve_checks(batch[0].check):
            return None
        # Work of an earlier connection is written too, not acknowledged: the broker
        # delivers those messages again, but their crossings are applied, and the check
        # of a late re-delivery relies on every applied crossing being stored in order.
        lines = self.live.take_pending_lines() + self._pending_history_lines(batch)
        return lines, lambda: self._acknowledge(batch)

    def _acknowledge(self, batch: list[Work]) -> None:
        """Those of the current connection only: an ack must not reach the next one."""
        self.consumer.ack_all(w.ack for w in batch if w.ack is not None)

    def _pending_history_lines(self, batch: list[Work]) -> list[str]:
        """One `history_pending` mark per reset window the batch's crossings fall in,
        written with them: a mark exists exactly when its data does (docs/history.md)."""
        windows: dict[int, int] = {}
        for w in batch:
            for start, first in (w.windows or {}).items():
                windows[start] = min(first, windows.get(start, first))
        now = self.clock.now_ms()
        return [
            history_pending_point(self.site.site, start, first, self._unique.ns(now)).line()
            for start, first in windows.items()
        ]

    def _resolve_checks(self, check: list[CrossingSeen]) -> bool:
        """Crossings at or below their agent's low-water mark (a late re-delivery, or an
        agent whose clock went back) are applied only if InfluxDB does not hold their
        point yet. Every crossing applied before is stored by now: it arrived earlier,
        and a message with checks starts its own batch once every earlier one is written.
        False when shutting down before InfluxDB answered. A query InfluxDB refuses would
        be a bug: the crossings are then taken as stored (not applied), rather than maybe
        applied twice."""
        by_agent: dict[str, list[int]] = {}
        for c in check:
            if c.ts_ms >= self.live.last_reset_ms:
                by_agent.setdefault(c.key[0], []).append(c.key[1])
        stored: set[tuple[str, int]] = set()
        for agent, times in by_agent.items():
            query = partial(stored_times, self.influx, self.site.site, agent, times)
            try:
                found = self.writer.until_answered("check", query)
            except PermanentWriteError as exc:
                log.error("InfluxDB refused the exactly-once check, crossings not applied: %s", exc)
                found = set(times)
            if found is None:
                return False
            stored.update((agent, t) for t in found)
        self.live.apply_checked(check, stored, self.clock.now_ms())
        return True

    # -- periodic work ---------------------------------------------------------------

    def _ticker(self) -> None:
        ing = self.settings.ingest
        next_heartbeat = 0.0
        next_ping = 0.0
        while not self._stop.wait(0.1):
            now = self.clock.now_ms()
            heartbeat = time.monotonic() >= next_heartbeat
            if heartbeat:
                next_heartbeat = time.monotonic() + ing.occupancy_heartbeat_s
            points, states = self.live.tick(now, heartbeat, ing.agent_silent_s * 1000)
            if points:
                self.writer.put(Work([p.line() for p in points]))
            if self.mqtt_connected:
                for s in states:
                    topic, payload = self.live.zone_message(s, now)
                    self.client.publish(topic, payload, 1, True)
            else:
                self.live.touch({s.zone for s in states})
            if time.monotonic() >= next_ping:
                next_ping = time.monotonic() + 5.0
                self.writer.ping()

    def _history(self) -> None:
        """Occupancy history and rollups of the windows that received data."""
        worker = HistoryWorker(self.influx, self.site)
        while not self._stop.wait(self.settings.history.interval_s):
            started = time.monotonic()
            try:
                done = worker.run_once(self.clock.now_ms())
            except (RetryableWriteError, PermanentWriteError) as exc:
                self._log_limited("history", f"history recompute failed, retrying: {exc}")
                continue
            if done:
                self.metrics.history_windows.inc(done)
                self.metrics.history_seconds.observe(time.monotonic() - started)

    # -- status ------------------------------------------------------------------------

    def occupancy(self) -> dict[str, dict[str, Any]]:
        return self.live.occupancy()

    @property
    def influx_ok(self) -> bool:
        return self.writer.ok

    @property
    def unacked(self) -> int:
        return self.writer.unacked

    @property
    def queued_points(self) -> int:
        return self.writer.queued_lines

    @property
    def dedup_keys(self) -> int:
        """Crossing keys held for exactly-once occupancy (bounded per agent)."""
        return self.live.dedup_keys

    @property
    def healthy(self) -> bool:
        return self.mqtt_connected and self.influx_ok

    def _log_limited(self, key: str, message: str) -> None:
        """At most once a minute per kind, so a misbehaving device cannot flood the log."""
        if self._limiter.allow(key) is not None:
            log.warning(message)
