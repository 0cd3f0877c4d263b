"""The collector: MQTT in, InfluxDB out, live occupancy per zone, for one site (`--site`)
or many (`--sites-dir`, a shard of them with `--shard`). This module is the MQTT side and
wires the parts: per site (`sitestate.py`) `ingest.py` validates, `live.py` keeps the live
occupancy and `history.py` recomputes history; `writer.py` writes to InfluxDB for all.

Many sites share one MQTT session (one subscription per site served, so a shard never
receives another shard's messages) and one InfluxDB writer. Sites are added, replaced
(their state rebuilt) and removed while running (`load_site`, `remove_site`; the folder
is watched by `sitesdir.py`).

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
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt

from footfall_contract import shards
from footfall_contract.shards import Shard
from footfall_contract.site import Site
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import agent_subscription
from footfall_runtime.consumer import AckingConsumer
from footfall_runtime.ratelog import LogLimiter
from footfall_runtime.service import Clock, StopFlag, SystemClock, Threads

from .config import CollectorSettings
from .influx import Influx, InfluxLink, PermanentWriteError, RetryableWriteError, connect
from .metrics import Metrics
from .points import UniqueTimes
from .prepare import BatchPrep
from .sitestate import (
    REBUILD_PAGE,
    REBUILD_SPAN_MS,
    SiteState,
    forget_metrics,
    message_work,
    new_state,
    not_served_work,
    rebuild_once,
)
from .writer import InfluxWriter, Work

log = logging.getLogger(__name__)


class Collector:
    REBUILD_SPAN_MS = REBUILD_SPAN_MS
    REBUILD_PAGE = REBUILD_PAGE

    def __init__(
        self,
        settings: CollectorSettings,
        sites: Site | Iterable[Site],
        clock: Clock | None = None,
        influx: Influx | None = None,
        *,
        shard: Shard | None = None,
    ) -> None:
        """`sites`: one Site (`--site`: that site alone, as ever) or any number (a
        folder, or a shard of one: more can be loaded while running)."""
        self.settings = settings
        self.multi = not isinstance(sites, Site)
        initial = list(sites) if not isinstance(sites, Site) else [sites]
        self.shard = shard
        self.clock = clock or SystemClock()
        self.influx = influx or connect(settings.influx)
        self.metrics = Metrics()
        self._overload_drops = self.metrics.rejected.labels("overload_qos0")
        self._stop = StopFlag()  # set by `interrupt`, from a signal handler
        self._threads = Threads()
        self._unique = UniqueTimes()
        self._limiter = LogLimiter(60.0)
        self._changing = threading.Lock()  # one site change at a time
        self._states: dict[str, SiteState] = {s.site: self._new_state(s) for s in initial}
        self._served = sorted(self._states)
        self._draining: dict[str, SiteState] = {}
        """Sites removed: messages the broker sent before the unsubscribe still count."""
        self.writer = InfluxWriter(
            self.influx,
            settings.ingest,
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
        client_id = settings.client_id or shards.client_id(
            "footfall-collector", None if self.multi else initial[0].site, shard
        )
        self.consumer = AckingConsumer(
            settings.mqtt,
            client_id,
            [(agent_subscription(site_id), 1) for site_id in self._states],
            self._handle,
            logger=log,
            meanwhile="Nothing is counted meanwhile; agents keep their events until it connects",
            stopping=self._stop,
            session_expiry_s=settings.ingest.session_expiry_s,
            receive_maximum=settings.ingest.receive_maximum,
            on_connection=lambda up: self.metrics.connected.labels("mqtt").set(1 if up else 0),
            buffered_reads=True,
        )
        self.client = self.consumer.client
        self.client_id = client_id
        self.ready = self.consumer.ready

    def _new_state(self, site: Site) -> SiteState:
        return new_state(site, self.settings, self.metrics, self._unique, self.influx)

    # -- the sites served ----------------------------------------------------------------

    @property
    def sites(self) -> list[str]:
        """The sites served (a site added while running: once its subscription is)."""
        return self._served

    @property
    def site(self) -> Site:
        """The site of a one-site collector (`--site`)."""
        if len(self._states) != 1:
            raise AttributeError("this collector serves several sites: see `sites`")
        return next(iter(self._states.values())).site

    def load_site(self, site: Site) -> bool:
        """Serve a new site, or a new version of one served: its state is rebuilt from
        InfluxDB, and messages of the site that arrive meanwhile are held for it (the old
        state's are all written first). False when stopped meanwhile."""
        with self._changing:
            site_id = site.site
            old = self._states.get(site_id) or self._draining.get(site_id)
            if old is not None:
                with old.lock:
                    old.paused = True
                if not self._written(old):
                    return False
            state = self._new_state(site)
            if not self._rebuild(state):
                return False
            subscribe = site_id not in self._states
            if old is None:
                self._states[site_id] = state
            else:
                with old.lock, state.lock:
                    old.replaced = True
                    self._draining.pop(site_id, None)
                    self._states[site_id] = state
                    held, old.held = old.held, []
                    for generation, msg in held:
                        self._process(state, generation, msg)
            if subscribe:
                self.consumer.subscribe(agent_subscription(site_id), 1)
                self._served = sorted({*self._served, site_id})
            return True

    def remove_site(self, site_id: str) -> None:
        """Stop serving a site: unsubscribed, its state kept only for the messages the
        broker sent before (they are written and acknowledged as usual)."""
        with self._changing:
            state = self._states.get(site_id)
            if state is None:
                return
            self.consumer.unsubscribe(agent_subscription(site_id))
            self._draining[site_id] = state
            del self._states[site_id]
            self._served = [i for i in self._served if i != site_id]
            forget_metrics(state, self.metrics)

    def _written(self, state: SiteState) -> bool:
        """Wait until everything queued so far is stored (False once stopping)."""
        done = threading.Event()
        self.writer.put(Work([], state=state, done=done))
        while not done.wait(0.2):
            if self._stop.is_set():
                return False
        return True

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Rebuild from InfluxDB (waiting for it), then consume; returns once running."""
        self.writer.retry("create database", self.influx.ensure_database)
        if self._stop.is_set():  # interrupted while waiting for InfluxDB
            return
        for state in list(self._states.values()):
            if not self._rebuild(state):
                return
        # Everything so far lives as long as the process: keep the cyclic collector off
        # it, and let it run less often (messages make short-lived objects, no cycles).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        prepare = BatchPrep(
            self.influx,
            self.writer,
            self.consumer,
            self.clock,
            self._unique,
            lambda: [*self._states.values(), *self._draining.values()],
        )
        self._threads.spawn(lambda: self.writer.run(prepare), "influx-writer")
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

    def _rebuild(self, state: SiteState) -> bool:
        """The site's occupancy since its last reset from the crossings InfluxDB holds."""
        applied = self.writer.retry(
            "rebuild occupancy",
            lambda: rebuild_once(
                state,
                self.influx,
                self.clock.now_ms(),
                self.settings.ingest.max_future_s,
                self.REBUILD_SPAN_MS,
                self.REBUILD_PAGE,
            ),
        )
        if applied is None:
            return False
        log.info(
            "rebuilt occupancy from %d crossings since %s (site %s)",
            applied,
            format_ts(state.live.last_reset_ms),
            state.id,
        )
        return True

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
        parts = msg.topic.split("/", 3)
        site_id = parts[2] if len(parts) > 2 else ""
        while True:
            state = self._states.get(site_id) or self._draining.get(site_id)
            if state is None:
                self._not_served(generation, msg)
                return
            with state.lock:
                if state.replaced:
                    continue  # swapped for a new version meanwhile: look it up again
                if state.paused:
                    state.held.append((generation, msg))
                    return
                self._process(state, generation, msg)
                return

    def _not_served(self, generation: int, msg: mqtt.MQTTMessage) -> None:
        """A message of a site this collector does not serve (`wrong_site`): with one
        subscription per site served, only a misconfigured broker sends one."""
        served = ", ".join(self.sites) or "none"
        where = f" (shard {self.shard})" if self.shard else ""
        now = self.clock.now_ms()
        work = not_served_work(
            msg, served + where, now, self.metrics, self._unique, self._log_limited
        )
        work.ack = (generation, msg.mid, msg.qos)
        self.writer.put(work)

    def _process(self, state: SiteState, generation: int, msg: mqtt.MQTTMessage) -> None:
        """One message of a served site (under its lock)."""
        now = self.clock.now_ms()
        work = message_work(state, msg, now, self.metrics, self._unique, self._log_limited)
        work.ack = (generation, msg.mid, msg.qos)
        self.writer.put(work)

    # -- periodic work ---------------------------------------------------------------

    def _ticker(self) -> None:
        """Every site's daily reset (at its own time), heartbeat and silent agents."""
        ing = self.settings.ingest
        next_heartbeat = 0.0
        next_ping = 0.0
        while not self._stop.wait(0.1):
            now = self.clock.now_ms()
            heartbeat = time.monotonic() >= next_heartbeat
            if heartbeat:
                next_heartbeat = time.monotonic() + ing.occupancy_heartbeat_s
            for state in list(self._states.values()):
                live = state.live
                points, states = live.tick(now, heartbeat, ing.agent_silent_s * 1000)
                if points:
                    self.writer.put(Work([p.line() for p in points], state=state))
                if self.mqtt_connected:
                    for s in states:
                        topic, payload = live.zone_message(s, now)
                        self.client.publish(topic, payload, 1, True)
                else:
                    live.touch({s.zone for s in states})
            if time.monotonic() >= next_ping:
                next_ping = time.monotonic() + 5.0
                self.writer.ping()

    def _history(self) -> None:
        """Occupancy history and rollups of the windows that received data, per site."""
        while not self._stop.wait(self.settings.history.interval_s):
            for state in list(self._states.values()):
                started = time.monotonic()
                try:
                    done = state.history.run_once(self.clock.now_ms())
                except (RetryableWriteError, PermanentWriteError) as exc:
                    self._log_limited(
                        "history", f"history recompute of {state.id} failed, retrying: {exc}"
                    )
                    continue
                if done:
                    self.metrics.history_windows.inc(done)
                    self.metrics.history_seconds.observe(time.monotonic() - started)

    # -- status ------------------------------------------------------------------------

    def occupancy(self, site_id: str | None = None) -> dict[str, Any]:
        """Zone -> state of a one-site collector (or of `site_id`); of a multi-site one,
        site -> zone -> state."""
        if site_id is not None:
            state = self._states.get(site_id)
            return state.live.occupancy() if state is not None else {}
        if not self.multi:
            return self._states[self.site.site].live.occupancy()
        return {site_id: s.live.occupancy() for site_id, s in sorted(self._states.items())}

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
        return sum(s.live.dedup_keys for s in list(self._states.values()))

    @property
    def healthy(self) -> bool:
        return self.mqtt_connected and self.influx_ok

    def _log_limited(self, key: str, message: str) -> None:
        """At most once a minute per kind, so a misbehaving device cannot flood the log."""
        if self._limiter.allow(key) is not None:
            log.warning(message)
