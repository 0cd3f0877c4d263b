"""The collector: MQTT in, InfluxDB out, live occupancy per zone.

Nothing is lost: messages arrive at QoS 1 in a persistent session (fixed client id, the
broker keeps what comes while we are away) and are acknowledged only after everything
they carry is written (paho `manual_ack`), so a crash, a broker restart or an InfluxDB
outage just means the broker delivers them again.

Nothing is counted twice: InfluxDB points get times derived from the event (see
`points.py`), so re-writing is idempotent; live occupancy remembers the recent keys of
the crossings it applied per agent (`dedup.py`) and asks InfluxDB about older ones, and
after a restart it is rebuilt from the crossings InfluxDB already holds, read in pages.

Memory is bounded for any QoS: Receive Maximum bounds QoS 1 messages in flight, and
QoS 0 messages are dropped (counted) while too much waits for InfluxDB.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from footfall_contract.hours import last_reset_before, next_reset_after, window_of
from footfall_contract.site import Site
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import agent_subscription, zone_occupancy_topic
from footfall_runtime.mqttclient import MqttLink, make_client, start_persistent_session

from .config import CollectorSettings, duration_days
from .dedup import RecentKeys, Verdict
from .history import HistoryWorker
from .influx import Influx, InfluxLink, PermanentWriteError, RetryableWriteError, connect
from .ingest import CrossingSeen, Ingest, Limits, Outcome, rejection_point
from .metrics import Metrics
from .occupancy import OccupancyEngine, ZoneState
from .points import Point
from .schema import AGENT_RETIRED, history_pending_point

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


@dataclass
class _Work:
    lines: list[str]
    ack: tuple[int, int, int] | None = None  # (connection generation, mid, qos)
    windows: dict[int, int] | None = None  # reset windows with crossings: start -> earliest
    check: list[CrossingSeen] | None = None  # below their agent's low-water mark


@dataclass
class _Agent:
    online: bool
    last_seen_ms: int
    epoch: str = ""


class Collector:
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
        self.metrics.unacked.set_function(lambda: self._unacked)
        self.metrics.queued_lines.set_function(lambda: self._queued_lines)
        self._overload_drops = self.metrics.rejected.labels("overload_qos0")
        self.engine = OccupancyEngine(site)
        self._lock = threading.Lock()  # engine, recent keys, agents, dirty zones, unacked
        # The connection generation and the acks that depend on it: a lock of their own,
        # so that acking a batch does not hold up paho's thread handling new messages.
        self._ack_lock = threading.Lock()
        self._recent = RecentKeys(ing.dedup_keys_per_agent)
        self._dirty: set[str] = set()  # zones to publish on MQTT
        self._held: list[CrossingSeen] = []
        self._pending_occupancy: dict[tuple[str, int], ZoneState] = {}  # (zone, ms) -> state
        self._drift_written: dict[str, int] = {}
        self._agents: dict[str, _Agent] = {}
        self._last_reset_ms = 0
        self._next_reset_ms = 0
        self._queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._unacked = 0  # messages received, not yet written and acknowledged
        self._queued_lines = 0  # points received, not yet written
        self._generation = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unique = itertools.count()
        self._last_logged: dict[str, float] = {}
        self.mqtt_connected = False
        self.influx_ok = False
        self.ready = threading.Event()
        self.client = make_client(
            settings.mqtt,
            settings.client_id or f"footfall-collector-{site.site}",
            v5=True,
            manual_ack=True,
            buffered_reads=True,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.mqtt_link = MqttLink(
            self.client,
            settings.mqtt,
            log,
            "Nothing is counted meanwhile; agents keep their events until it connects",
        )
        self.influx_link = InfluxLink(
            settings.influx,
            log,
            "Nothing is written or counted until it answers; the agents' messages wait "
            "at the broker",
        )
        self.http: Any = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Rebuild from InfluxDB (waiting for it), then consume; returns once running."""
        self._prepare_influx()
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
        self._spawn(self._writer, "influx-writer")
        self._spawn(self._ticker, "ticker")
        if self.settings.history.enabled:
            self._spawn(self._history, "history")
        start_persistent_session(
            self.client,
            self.settings.mqtt,
            session_expiry_s=self.settings.ingest.session_expiry_s,
            receive_maximum=self.settings.ingest.receive_maximum,
        )
        if self.settings.http.port is not None:
            from .http import serve

            self.http = serve(self, self.settings.http.host, self.settings.http.port)

    def interrupt(self) -> None:
        """Give up waiting (for InfluxDB, at start): a signal must end a collector that
        cannot reach it, not leave it to systemd's SIGKILL."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()
        for t in self._threads:
            t.join(timeout=10)
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        self.influx.close()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _retry(self, what: str, action: Callable[[], Any]) -> Any:
        """Run `action` until it works: InfluxDB may come up after the collector."""
        delay = 0.5
        while not self._stop.is_set():
            try:
                result = action()
                self._set_influx(True)
                return result
            except RetryableWriteError as exc:
                self._set_influx(False, exc)
                log.debug("%s: %s; retrying in %.1f s", what, exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0) * random.uniform(0.8, 1.2)
        return None

    def _prepare_influx(self) -> None:
        self._retry("create database", self.influx.ensure_database)

    REBUILD_SPAN_MS = 3_600_000
    """The rebuild reads an hour of crossings per query, each streamed in pages."""
    REBUILD_PAGE = 10_000

    def _rebuild(self) -> None:
        """Occupancy since the last reset from the crossings InfluxDB holds."""
        applied = self._retry("rebuild occupancy", self._rebuild_once)
        log.info(
            "rebuilt occupancy from %d crossings since %s",
            applied or 0,
            format_ts(self._last_reset_ms),
        )

    def _rebuild_once(self) -> int:
        """One attempt, from scratch: an hour of crossings per query, streamed in pages of
        `REBUILD_PAGE` rows in time order, so memory is bounded by a page and the recent
        keys (not by the day's traffic) and each query by an hour of the site's data.
        Crossings stamped after the coming reset are held for it, as live ones are."""
        now = self.clock.now_ms()
        with self._lock:
            self.engine.reset()
            self._recent.clear()
            self._held = []
            self._last_reset_ms = last_reset_before(self.site, now)
            self._next_reset_ms = next_reset_after(self.site, now)
        site = self.site.site.replace("\\", "\\\\").replace("'", "\\'")
        head = f'SELECT "count", "door", "dir", "agent" FROM "crossing" WHERE "site" = \'{site}\''
        # Beyond this only crossings stamped in the future can be: one open-ended query.
        horizon = now + round(self.settings.ingest.max_future_s * 1000) + 1
        applied = 0
        start = self._last_reset_ms
        while True:
            end = start + self.REBUILD_SPAN_MS
            last = end >= horizon
            q = f"{head} AND time >= {start}ms" + ("" if last else f" AND time < {end}ms")
            for page in self.influx.query_chunks(q, chunk_size=self.REBUILD_PAGE):
                applied += self._rebuild_page(page)
            if last:
                break
            start = end
        with self._lock:
            self._dirty.update(z.id for z in self.site.zones)
        return applied

    def _rebuild_page(self, page: dict[str, Any]) -> int:
        """Rows in time order: a key already recorded (or below its agent's mark, which in
        time order means seen before) is the same crossing stored under another tag set.
        The hot loop of a restart: millions of rows on a busy day."""
        cols = page["columns"]
        i_time, i_door, i_dir, i_agent = (cols.index(c) for c in ("time", "door", "dir", "agent"))
        applied = 0
        agents: set[str] = set()
        held_from = self._next_reset_ms * 1_000_000
        add, apply, knows, new = self._recent.add, self.engine.apply, self.engine.knows, Verdict.NEW
        with self._lock:
            for row in page["values"]:
                agent, time_ns, door = row[i_agent], int(row[i_time]), row[i_door]
                if not agent or not knows(door):
                    continue
                if time_ns >= held_from:
                    c = CrossingSeen(
                        agent, (agent, time_ns), time_ns // 1_000_000, door, row[i_dir]
                    )
                    self._held.append(c)
                    continue
                agents.add(agent)
                if add(agent, time_ns) is new:
                    apply(door, row[i_dir])
                    applied += 1
            for agent in agents:
                self._recent.trim(agent)
        return applied

    # -- MQTT callbacks (paho's thread) --------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self.mqtt_link.refused(rc)
            return
        with self._ack_lock:
            self._generation += 1
        client.subscribe(agent_subscription(self.site.site), qos=1)
        self.mqtt_connected = True
        self.metrics.connected.labels("mqtt").set(1)
        log.info(
            "connected to MQTT %s:%s (session present: %s)",
            self.settings.mqtt.host,
            self.settings.mqtt.port,
            getattr(flags, "session_present", "?"),
        )
        self.mqtt_link.connected()
        self.ready.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        with self._ack_lock:
            # Acks for this connection's messages would hit other messages on the next
            # one; the broker re-delivers them instead and they are de-duplicated.
            self._generation += 1
        self.mqtt_connected = False
        self.metrics.connected.labels("mqtt").set(0)
        self.mqtt_link.disconnected(rc, self._stop.is_set())

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._handle(msg)
        except Exception:  # never lose the message: it stays unacknowledged
            log.exception("failed to handle a message on %s", msg.topic)

    def _handle(self, msg: mqtt.MQTTMessage) -> None:
        if msg.qos == 0 and self._overloaded():
            self._overload_drops.inc()
            self._log_limited(
                "overload_qos0",
                f"overloaded ({self._unacked} messages, {self._queued_lines} points waiting "
                f"for InfluxDB): QoS 0 messages dropped (rejected as overload_qos0), "
                f"e.g. on {msg.topic}",
            )
            return
        now = self.clock.now_ms()
        out = self.ingest.handle(msg.topic, bytes(msg.payload), now)
        m = self.metrics
        kind = out.kind or "unknown"
        m.message_count(kind).inc()
        if out.events:
            m.event_count(kind).inc(out.events)
        points = out.points
        # Changed only on this (paho's) thread, by on_connect and on_disconnect.
        generation = self._generation
        check: list[CrossingSeen] = []
        with self._lock:
            points += self._apply(out, now, check)
            self._unacked += 1
            self._queued_lines += len(out.lines) + len(points) + len(out.rejections)
        for r in out.rejections:
            m.rejected.labels(r.reason).inc()
            self._log_limited(
                f"reject:{r.reason}", f"rejected ({r.reason}) from {r.agent or '?'}: {r.detail}"
            )
            points.append(rejection_point(self.site.site, r, self._unique_ns(now)))
        windows: dict[int, int] | None = None
        if out.crossings:
            windows = {}
            for c in out.crossings:
                w = self._window_start(c.ts_ms)
                windows[w] = min(c.ts_ms, windows.get(w, c.ts_ms))
        lines = out.lines
        lines += [p.line() for p in points]
        self._queue.put(_Work(lines, (generation, msg.mid, msg.qos), windows, check or None))

    def _overloaded(self) -> bool:
        """Too much waits for InfluxDB to take more QoS 0 messages. Receive Maximum bounds
        QoS 1 (the broker keeps the rest); nothing bounds QoS 0 but this."""
        ing = self.settings.ingest
        return self._unacked >= ing.receive_maximum or self._queued_lines >= ing.max_queued_points

    def _window_start(self, ts_ms: int) -> int:
        """The reset window an event belongs to (for its history); today's without a
        calendar lookup. Read without the lock: a reset only moves both bounds forward."""
        last, nxt = self._last_reset_ms, self._next_reset_ms
        if last <= ts_ms < nxt:
            return last
        return window_of(self.site, ts_ms).start_ms

    def _apply(self, out: Outcome, now: int, check: list[CrossingSeen]) -> list[Point]:
        """Occupancy and agent state from one message (under the lock); crossings only
        InfluxDB can tell about go to `check`."""
        points: list[Point] = []
        changed: set[str] = set()
        for c in out.crossings:
            changed |= self._apply_crossing(c, check)
        if out.crossings and out.agent is not None:
            self._recent.trim(out.agent)
        if changed:
            self._dirty |= changed
            for z in changed:
                # One point per zone and millisecond, with the last value of that ms:
                # what InfluxDB would keep anyway, without writing the ones it overwrites.
                self._pending_occupancy[(z, now)] = self.engine.state(z)
        if out.agent is not None:
            agent = out.agent
            if out.retired:
                # forgotten before the point, so that agents_online counts without it
                self._agents.pop(agent, None)
                points.append(self._agent_point(agent, False, AGENT_RETIRED, now))
                log.info("agent %s retired (its retained status was cleared)", agent)
            elif out.status is not None:
                online = out.status.state == "online"
                points.append(
                    self._agent_point(
                        agent,
                        online,
                        out.status.state,
                        now,
                        epoch=out.status.epoch,
                        sw=out.status.sw,
                    )
                )
                self._agents[agent] = _Agent(online, now, out.status.epoch)
            elif out.health or out.events:
                known = self._agents.get(agent)
                if known is None or not known.online:
                    points.append(self._agent_point(agent, True, "active", now))
                self._agents[agent] = _Agent(True, now, known.epoch if known else "")
        return points

    def _apply_crossing(self, c: CrossingSeen, check: list[CrossingSeen]) -> set[str]:
        """One crossing into live occupancy, once (under the lock); the zones changed. A
        key at or below its agent's low-water mark goes to `check` (docs/collector.md)."""
        if c.ts_ms < self._last_reset_ms:
            self.metrics.late.inc()  # history only: it belongs before the last reset
            return set()
        if c.ts_ms >= self._next_reset_ms:
            self._held.append(c)  # after the coming reset: counted once it is done
            return set()
        verdict = self._recent.add(c.key[0], c.key[1])
        if verdict is Verdict.DUPLICATE:
            self.metrics.duplicates.inc()
            return set()
        if verdict is Verdict.CHECK:
            check.append(c)
            return set()
        return set(self.engine.apply(c.door, c.dir))

    def _agent_point(
        self, agent: str, online: bool, reason: str, now: int, epoch: str = "", sw: str = ""
    ) -> Point:
        fields: dict[str, int | float | bool | str] = {
            "online": online,
            "value": int(online),
            "reason": reason,
        }
        if epoch:
            fields["epoch"] = epoch
        if sw:
            fields["sw"] = sw[:32]
        self.metrics.agents_online.set(sum(a.online for a in self._agents.values()))
        return Point(
            "agent_status", {"site": self.site.site, "agent": agent}, fields, self._unique_ns(now)
        )

    def _occupancy_points(self, zones: set[str], now: int) -> list[Point]:
        """Occupancy of these zones now (under the lock)."""
        return self._state_points([self.engine.state(z) for z in sorted(zones)], now)

    def _state_points(self, states: list[ZoneState], now: int) -> list[Point]:
        """`occupancy` points, and `occupancy_drift` where the drift changed."""
        points = []
        for s in states:
            z = s.zone
            fields: dict[str, int | float | bool | str] = {"count": s.count}
            if s.capacity:
                fields["capacity"] = s.capacity
                fields["ratio"] = float(s.count / s.capacity)
            tags = {"site": self.site.site, "zone": z}
            points.append(Point("occupancy", tags, fields, now * 1_000_000))
            if self._drift_written.get(z) != s.drift:
                self._drift_written[z] = s.drift
                points.append(Point("occupancy_drift", tags, {"clamped": s.drift}, now * 1_000_000))
            self.metrics.zone_occupancy.labels(z).set(s.count)
        return points

    def _take_pending_occupancy(self) -> list[str]:
        with self._lock:
            pending, self._pending_occupancy = self._pending_occupancy, {}
            return [
                p.line()
                for (_, t), s in sorted(pending.items(), key=lambda i: i[0][1])
                for p in self._state_points([s], t)
            ]

    def _pending_history_lines(self, batch: list[_Work]) -> list[str]:
        """One `history_pending` mark per reset window the batch's crossings fall in,
        written with them: a mark exists exactly when its data does (docs/history.md)."""
        windows: dict[int, int] = {}
        for w in batch:
            for start, first in (w.windows or {}).items():
                windows[start] = min(first, windows.get(start, first))
        now = self.clock.now_ms()
        return [
            history_pending_point(self.site.site, start, first, self._unique_ns(now)).line()
            for start, first in windows.items()
        ]

    def _unique_ns(self, now_ms: int) -> int:
        """Distinct times for points that would otherwise merge (rejections, status)."""
        return now_ms * 1_000_000 + next(self._unique) % 1_000_000

    # -- writer --------------------------------------------------------------------------

    def _writer(self) -> None:
        """Batches of up to `batch_points` points, `flush_interval_s` or a quarter of the
        receive window, one at a time. The broker sends no more than `receive_maximum`
        unacknowledged messages: a batch that waited for its full interval at thousands
        of messages a second would fill the window and leave the broker waiting for acks.
        While a batch fills, the queue is polled every few ms instead of waking up for
        each message: at thousands of messages a second those wake-ups (and the GIL
        hand-overs they force on paho's thread) cost more than the writes.
        A message with crossings to check against InfluxDB starts a batch of its own, so
        that everything that came before it is stored when it is checked."""
        ing = self.settings.ingest
        poll = min(0.01, ing.flush_interval_s)
        max_messages = max(1, ing.receive_maximum // 4)
        carry: _Work | None = None
        while not self._stop.is_set() or not self._queue.empty() or carry is not None:
            if carry is not None:
                first, carry = carry, None
            else:
                try:
                    first = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
            batch = [first]
            lines = len(first.lines)
            deadline = time.monotonic() + ing.flush_interval_s
            while lines < ing.batch_points and len(batch) < max_messages:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    time.sleep(min(poll, remaining))
                    continue
                if item.check:
                    carry = item
                    break
                batch.append(item)
                lines += len(item.lines)
            self._write_batch(batch)

    def _write_batch(self, batch: list[_Work]) -> None:
        with self._ack_lock:
            generation = self._generation
        if batch[0].check and not self._resolve_checks(batch[0].check):
            return  # shutting down with InfluxDB away: the broker keeps the messages
        # Work of an earlier connection is written too, not acknowledged: the broker
        # delivers those messages again, but their crossings are applied, and the check
        # of a late re-delivery relies on every applied crossing being stored in order.
        lines = [line for w in batch for line in w.lines]
        lines += self._take_pending_occupancy()
        lines += self._pending_history_lines(batch)
        started = time.monotonic()
        if not self._write_lines(lines):
            return  # shutting down with InfluxDB away: the broker keeps the messages
        self.metrics.write_seconds.observe(time.monotonic() - started)
        self.metrics.batch_points.observe(len(lines))
        acks = [w.ack for w in batch if w.ack is not None and w.ack[0] == generation]
        received = sum(w.ack is not None for w in batch)
        queued = sum(len(w.lines) for w in batch)
        with self._lock:
            self._unacked -= received
            self._queued_lines -= queued
        with self._ack_lock:
            if self._generation == generation:  # an ack must not reach the next connection
                for _, mid, qos in acks:
                    if qos > 0:
                        self.client.ack(mid, qos)

    SPLIT_BUDGET = 32
    """Requests one batch may spend finding the points of a request refused as a whole."""

    def _write_lines(self, lines: list[str]) -> bool:
        """Write, retrying while InfluxDB is away. Points it refuses never hold up or take
        the others with them: InfluxDB 1.x writes the rest of the request and says what it
        dropped ("partial write"), which is counted by reason and not sent again; a
        request refused as a whole (nothing written) is halved to find the refused points,
        within `SPLIT_BUDGET` requests, and what is still unresolved then is dropped."""
        return self._write_part(lines, [self.SPLIT_BUDGET])

    def _write_part(self, lines: list[str], budget: list[int]) -> bool:
        delay = 0.2
        while True:
            try:
                self.influx.write(lines)
                self._set_influx(True)
                return True
            except RetryableWriteError as exc:
                self._set_influx(False, exc)
                self.metrics.write_errors.labels("retryable").inc()
                if self._stop.is_set() and not self.mqtt_connected:
                    return False
                log.debug("InfluxDB write failed, retrying: %s", exc)
                time.sleep(delay)
                delay = min(delay * 2, 10.0) * random.uniform(0.8, 1.2)
            except PermanentWriteError as exc:
                self._set_influx(True)
                self.metrics.write_errors.labels("permanent").inc()
                if exc.partial:
                    self._count_dropped(exc.reason, exc.dropped, exc)
                    return True
                if len(lines) == 1 or budget[0] < 2:
                    self._count_dropped(exc.reason, len(lines), exc)
                    return True
                budget[0] -= 2
                half = len(lines) // 2
                return self._write_part(lines[:half], budget) and self._write_part(
                    lines[half:], budget
                )

    def _count_dropped(self, reason: str, points: int, exc: Exception) -> None:
        self.metrics.dropped_points.labels(reason).inc(points)
        self._log_limited(
            f"dropped:{reason}",
            f"InfluxDB refused {points} point(s) ({reason}), dropped; the rest are stored: {exc}",
        )

    # -- exactly-once below the low-water mark -------------------------------------------

    CHECK_GAP_NS = 600 * 10**9
    """Keys to check further apart than this are looked up by separate queries."""

    def _resolve_checks(self, check: list[CrossingSeen]) -> bool:
        """Crossings at or below their agent's low-water mark (a late re-delivery, or an
        agent whose clock went back) are applied only if InfluxDB does not hold their
        point yet. Every crossing applied before is stored by now: it arrived earlier,
        and a message with checks starts its own batch once every earlier one is written.
        False when shutting down before InfluxDB answered."""
        by_agent: dict[str, list[int]] = {}
        for c in check:
            if c.ts_ms >= self._last_reset_ms:
                by_agent.setdefault(c.key[0], []).append(c.key[1])
        stored: set[tuple[str, int]] = set()
        for agent, times in by_agent.items():
            found = self._stored_until_answered(agent, times)
            if found is None:
                return False
            stored.update((agent, t) for t in found)
        now = self.clock.now_ms()
        changed: set[str] = set()
        with self._lock:
            for c in check:
                if c.ts_ms < self._last_reset_ms:
                    self.metrics.late.inc()
                elif c.ts_ms >= self._next_reset_ms:
                    self._held.append(c)
                elif c.key in stored:
                    self.metrics.duplicates.inc()
                else:
                    stored.add(c.key)  # a second copy in the same message is a duplicate
                    changed.update(self.engine.apply(c.door, c.dir))
            if changed:
                self._dirty |= changed
                for z in changed:
                    self._pending_occupancy[(z, now)] = self.engine.state(z)
        return True

    def _stored(self, agent: str, times: list[int]) -> set[int]:
        """Which of these point times of an agent's crossings InfluxDB holds."""
        wanted = set(times)
        ordered = sorted(wanted)
        site = self.site.site.replace("\\", "\\\\").replace("'", "\\'")
        who = agent.replace("\\", "\\\\").replace("'", "\\'")
        found: set[int] = set()
        lo = prev = ordered[0]
        for t in [*ordered[1:], None]:
            if t is not None and t - prev <= self.CHECK_GAP_NS:
                prev = t
                continue
            q = (
                f'SELECT "count" FROM "crossing" WHERE "site" = \'{site}\' '
                f"AND \"agent\" = '{who}' AND time >= {lo} AND time <= {prev}"
            )
            for page in self.influx.query_chunks(q):
                i_time = page["columns"].index("time")
                found.update(int(row[i_time]) for row in page["values"])
            if t is not None:
                lo = prev = t
        return found & wanted

    def _stored_until_answered(self, agent: str, times: list[int]) -> set[int] | None:
        """`_stored`, retried while InfluxDB is away (None once shutting down). A query it
        refuses would be a bug: the crossings are then taken as stored (not applied),
        rather than maybe applied twice."""
        delay = 0.2
        while True:
            try:
                return self._stored(agent, times)
            except RetryableWriteError as exc:
                self._set_influx(False, exc)
                if self._stop.is_set() and not self.mqtt_connected:
                    return None
                log.debug("InfluxDB check failed, retrying: %s", exc)
                time.sleep(delay)
                delay = min(delay * 2, 10.0) * random.uniform(0.8, 1.2)
            except PermanentWriteError as exc:
                log.error("InfluxDB refused the exactly-once check, crossings not applied: %s", exc)
                return set(times)

    def _set_influx(self, ok: bool, exc: Exception | None = None) -> None:
        """Logged once per change, with the reason and what to check (`InfluxLink`)."""
        if ok:
            self.influx_link.ok()
        else:
            self.influx_link.failed(exc)
        self.influx_ok = ok
        self.metrics.connected.labels("influx").set(int(ok))

    # -- periodic work ---------------------------------------------------------------

    def _ticker(self) -> None:
        ing = self.settings.ingest
        next_heartbeat = 0.0
        next_ping = 0.0
        while not self._stop.wait(0.1):
            now = self.clock.now_ms()
            points: list[Point] = []
            with self._lock:
                if now >= self._next_reset_ms:
                    points += self._reset(now)
                if time.monotonic() >= next_heartbeat:
                    next_heartbeat = time.monotonic() + ing.occupancy_heartbeat_s
                    points += self._occupancy_points({z.id for z in self.site.zones}, now)
                    self._dirty.update(z.id for z in self.site.zones)
                for agent, a in self._agents.items():
                    if a.online and now - a.last_seen_ms > ing.agent_silent_s * 1000:
                        a.online = False
                        points.append(self._agent_point(agent, False, "silent", now))
                dirty, self._dirty = self._dirty, set()
                states = [self.engine.state(z) for z in sorted(dirty)]
            if points:
                lines = [p.line() for p in points]
                with self._lock:
                    self._queued_lines += len(lines)
                self._queue.put(_Work(lines))
            if self.mqtt_connected:
                for s in states:
                    payload = {
                        "count": s.count,
                        "capacity": s.capacity,
                        "ratio": None if s.ratio is None else round(s.ratio, 4),
                        "ts": format_ts(now),
                    }
                    self.client.publish(
                        zone_occupancy_topic(self.site.site, s.zone),
                        json.dumps(payload, separators=(",", ":")),
                        1,
                        True,
                    )
            else:
                with self._lock:
                    self._dirty.update(s.zone for s in states)
            if time.monotonic() >= next_ping:
                next_ping = time.monotonic() + 5.0
                self._set_influx(self.influx.ping())

    def _reset(self, now: int) -> list[Point]:
        """The daily reset (under the lock): every zone to 0, what was left recorded."""
        drift = {s.zone: s.drift for s in self.engine.states()}
        before = self.engine.reset()
        self._recent.clear()
        ended = self._last_reset_ms
        self._last_reset_ms = self._next_reset_ms
        self._next_reset_ms = next_reset_after(self.site, max(now, self._last_reset_ms))
        log.info("daily reset: %s", ", ".join(f"{z}={c}" for z, c in before.items() if c))
        points = [
            # the window that just ended: every hour of it gets its rollup, quiet ones too
            history_pending_point(self.site.site, ended, ended, self._unique_ns(now)),
            *(
                Point(
                    "occupancy_reset",
                    {"site": self.site.site, "zone": z},
                    {"count_before": c, "clamped_before": drift[z]},
                    self._last_reset_ms * 1_000_000,
                )
                for z, c in before.items()
            ),
        ]
        # Held crossings were written when they came, applied only now: nothing is
        # forgotten before the trim below, so their duplicates are found here and none
        # needs the InfluxDB check (which takes a stored crossing as applied).
        held, self._held = self._held, []
        check: list[CrossingSeen] = []
        for c in held:
            self._apply_crossing(c, check)
        for agent in {c.agent for c in held}:
            self._recent.trim(agent)
        points += self._occupancy_points({z.id for z in self.site.zones}, now)
        self._dirty.update(z.id for z in self.site.zones)
        return points

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
        with self._lock:
            return {
                s.zone: {
                    "count": s.count,
                    "capacity": s.capacity,
                    "ratio": s.ratio,
                    "drift": s.drift,
                }
                for s in self.engine.states()
            }

    @property
    def unacked(self) -> int:
        return self._unacked

    @property
    def queued_points(self) -> int:
        return self._queued_lines

    @property
    def dedup_keys(self) -> int:
        """Crossing keys held for exactly-once occupancy (bounded per agent)."""
        return len(self._recent)

    @property
    def healthy(self) -> bool:
        return self.mqtt_connected and self.influx_ok

    def _log_limited(self, key: str, message: str) -> None:
        """At most once a minute per kind, so a misbehaving device cannot flood the log."""
        now = time.monotonic()
        if now - self._last_logged.get(key, -1e9) >= 60.0:
            self._last_logged[key] = now
            log.warning(message)
