"""footfall-alerts: the engine's state, kept and acted on under one lock.

Its own process (not part of the collector) so that the collector's exactly-once path
never waits on a mail server, and so that alerting can be restarted or upgraded alone.

Every change -- MQTT messages (intake.py), an API action, a tick, a drift reading -- runs
on the engine under one lock and is committed to SQLite together with the outbox entries
it decided on, before the messages behind it are acknowledged. Nothing sent twice: the
engine resumes from that state, and the outbox (drained by delivery.py, one channel per
receiver plus MQTT and InfluxDB, each retried with back-off, in order) marks each entry
sent once its receiver took it. The HTTP API (api.py) is handed this service by cli.py.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from footfall_collector.influx import Influx, PermanentWriteError, RetryableWriteError, connect
from footfall_collector.influxql import tag_is
from footfall_collector.schema import OCCUPANCY_DRIFT
from footfall_contract.hours import last_reset_before
from footfall_contract.site import Site
from footfall_runtime.config import ConfigError
from footfall_runtime.ratelog import LogLimiter
from footfall_runtime.service import Clock, SystemClock, Threads

from .config import AlertsSettings, token_required
from .delivery import Delivery
from .engine import (
    PUBLISHED,
    RECORDED,
    DriftObs,
    Effect,
    Engine,
    FaultObs,
    Notification,
    Transition,
)
from .intake import MqttIntake
from .metrics import Metrics
from .rules import EmailReceiver, Route, RulesFile, WebhookReceiver
from .status import alerts_json, health_json
from .store import open_store

log = logging.getLogger(__name__)

SAVE_EVERY_MS = 5_000
"""State that changed without any transition (a zone count, a health time) is saved at
most this often: retained zone and status topics are delivered again on reconnect."""
THREAD_JOIN_S = 15.0
PRUNE_EVERY_S = 3600.0


def with_defaults(rules: RulesFile | None, settings: AlertsSettings) -> RulesFile:
    """Without a rules file: the default rules, and warnings and above by e-mail to
    `smtp.default_to` when that is set (MQTT and InfluxDB get everything anyway)."""
    if rules is not None:
        return rules
    if not settings.smtp.default_to:
        return RulesFile()
    return RulesFile(
        receivers={"default-email": EmailReceiver(type="email", to=settings.smtp.default_to)},
        routes=[Route(receivers=["default-email"], severities=["warning", "critical"])],
    )


class AlertsService:
    def __init__(
        self,
        settings: AlertsSettings,
        site: Site,
        rules: RulesFile | None = None,
        clock: Clock | None = None,
        influx: Influx | None = None,
    ) -> None:
        self.settings = settings
        # first: refuse to open the API to the network without a token
        self.token_required = settings.http.port is not None and token_required(
            settings.http.host, len(settings.http.tokens)
        )
        self.site = site
        self.rules = with_defaults(rules, settings)
        self.clock: Clock = clock or SystemClock()
        self.influx = influx or connect(settings.influx)
        self.metrics = Metrics()
        self.store = open_store(settings.state_dir, site.site)
        parts = self.store.load_parts()
        legacy = None if parts else self.store.load_legacy()
        self.engine = Engine(site, self.rules, state=legacy, parts=parts)
        for line in self.engine.repairs:
            log.warning("saved alert state in %s: %s", self.store.path, line)
        # What restoring repaired, or the whole state of a one-document file, as parts.
        self.store.commit(
            self.engine.take_changes(), [], self.clock.now_ms(), drop_legacy=legacy is not None
        )
        self._lock = threading.RLock()  # the engine and its saving
        self._last_save = 0
        self._stop = threading.Event()
        self._threads = Threads()
        self._limiter = LogLimiter()
        self.intake = MqttIntake(
            settings, site, self.metrics, self._decide, self._log_limited, self._stop
        )
        self.client = self.intake.client
        self.ready = self.intake.ready
        self.delivery = Delivery(
            settings,
            site,
            self.rules,
            self.store,
            self.influx,
            self.client,
            self.metrics,
            self.clock,
            self._log_limited,
            self._stop,
        )
        self.http: Any = None
        """The HTTP API once cli.start_with_api started it (stopped with the service)."""
        self._check_receivers()

    @property
    def mqtt_connected(self) -> bool:
        return self.intake.connected

    def _check_receivers(self) -> None:
        for name, receiver in self.rules.receivers.items():
            if isinstance(receiver, EmailReceiver) and not self.settings.smtp.host:
                raise ConfigError(
                    f"receiver {name!r} sends e-mail but no SMTP server is set "
                    "(FOOTFALL_SMTP__HOST or [smtp] host in the config file)"
                )
            if isinstance(receiver, WebhookReceiver) and receiver.url_env:
                try:
                    receiver.resolved_url()
                except ValueError as exc:
                    raise ConfigError(f"receiver {name!r}: {exc}") from None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:  # pipeline_silent: the collector's heartbeat is awaited from now
            self.engine.watch(self.clock.now_ms())
        for channel in self.delivery.channels():
            self._threads.spawn(functools.partial(self.delivery.run, channel), f"deliver-{channel}")
        self._threads.spawn(self._ticker, "ticker")
        self._threads.spawn(self.intake.run, "messages")
        if any(r.kind == "drift_clamped" for r in self.engine.rules):
            self._threads.spawn(self._drift_poller, "drift-poller")
        self.intake.start()

    def stop(self) -> None:
        self._stop.set()
        self.store.wake()
        if self.http is not None:
            self.http.stop()
        self.intake.stop()
        self._threads.join(THREAD_JOIN_S)
        self.delivery.close()
        self.influx.close()
        self.store.close()

    # -- changes to the engine, each committed with what it decided ------------------------

    def _decide(self, batch: list[mqtt.MQTTMessage]) -> list[mqtt.MQTTMessage] | None:
        """The messages of a batch on the engine and saved in one transaction; those
        handled (to acknowledge), or None when saving failed."""
        handled: list[mqtt.MQTTMessage] = []
        effects: list[Effect] = []
        force = False
        with self._lock:
            for msg in batch:
                now = self.clock.now_ms()
                obs = self.intake.read(msg, now)
                try:
                    for o in obs:
                        effects += self.engine.observe(o, now)
                except Exception:  # not acknowledged: the broker delivers it again
                    log.exception("failed to handle a message on %s", msg.topic)
                    continue
                # Faults are not retained: what they changed must be saved now.
                force = force or any(isinstance(o, FaultObs) for o in obs)
                handled.append(msg)
            try:
                self._commit(effects, self.clock.now_ms(), force=force)
            except Exception:  # none acknowledged: the broker delivers them again
                log.exception("failed to save the state after %d messages", len(handled))
                return None
        return handled

    def apply(self, action: Callable[[Engine, int], list[Effect]]) -> None:
        """Run an API action on the engine and commit what it decided."""
        with self._lock:
            now = self.clock.now_ms()
            effects = action(self.engine, now)
            self._commit(effects, now, force=True)

    def _commit(self, effects: list[Effect], now: int, force: bool = False) -> None:
        """Save what changed in the engine state and the entries for `effects` in one
        transaction (caller holds the lock). Without effects at most every 5 s."""
        if not effects and not force and now - self._last_save < SAVE_EVERY_MS:
            return
        entries: list[tuple[str, dict[str, Any]]] = []
        for e in effects:
            if isinstance(e, Transition):
                self.metrics.transitions.labels(e.state).inc()
                record = {"state": e.state, "alert": e.alert, "by": e.by, "reason": e.reason}
                if e.state in RECORDED:
                    entries.append(("influx", record))
                if e.state in PUBLISHED:
                    entries.append(("mqtt", {"alert": e.alert}))
                # every flap and every new figure: debug only
                quiet = e.state in ("pending", "cancelled", "updated")
                log.log(
                    logging.DEBUG if quiet else logging.INFO,
                    "alert %s %s: %s",
                    e.alert["id"],
                    e.state,
                    e.alert["summary"],
                )
            elif isinstance(e, Notification):
                self.metrics.notifications.labels(e.receiver, e.event).inc()
                entries.append((f"receiver:{e.receiver}", self._notification(e)))
        self.store.commit(self.engine.take_changes(), entries, now)
        self._last_save = now

    def _notification(self, n: Notification) -> dict[str, Any]:
        return {
            "site": self.site.site,
            "site_name": self.site.name,
            "receiver": n.receiver,
            "rule": n.rule,
            "event": n.event,
            "alerts": list(n.alerts),
            "ts_ms": n.ts_ms,
            "timezone": self.site.timezone,
            "link": self.settings.link,
            "board_url": self.settings.board_url,
        }

    # -- periodic work ---------------------------------------------------------------------

    def _ticker(self) -> None:
        next_prune = 0.0
        while not self._stop.wait(self.settings.tick_s):
            try:
                with self._lock:
                    now = self.clock.now_ms()
                    self._commit(self.engine.tick(now), now)
                    alerts = self.engine.alerts.values()
                    self.metrics.firing.set(sum(a.state == "firing" for a in alerts))
                    self.metrics.open_alerts.set(len(alerts))
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_EVERY_S
                    keep = self.settings.delivery.keep_sent_days * 86_400_000
                    self.store.prune(self.clock.now_ms() - round(keep))
                for channel, (count, _) in self.store.pending().items():
                    self.metrics.outbox.labels(channel).set(count)
            except Exception:
                log.exception("tick failed")

    def _drift_poller(self) -> None:
        """drift_clamped: the collector's `occupancy_drift` since the last daily reset."""
        while not self._stop.is_set():
            now = self.clock.now_ms()
            since = last_reset_before(self.site, now)
            q = (
                f'SELECT last("clamped") FROM "{OCCUPANCY_DRIFT}" '
                f'WHERE {tag_is("site", self.site.site)} AND time >= {since}ms GROUP BY "zone"'
            )
            try:
                series = self.influx.query(q, epoch="ms")
                found = {s["tags"]["zone"]: int(s["values"][0][1]) for s in series}
                self.metrics.connected.labels("influx").set(1)
                with self._lock:
                    effects: list[Effect] = []
                    for zone in (z.id for z in self.site.zones):
                        effects += self.engine.observe(DriftObs(zone, found.get(zone, 0), now), now)
                    self._commit(effects, now)
            except (RetryableWriteError, PermanentWriteError, KeyError, ValueError) as exc:
                self.metrics.connected.labels("influx").set(0)
                self._log_limited("drift", f"cannot read {OCCUPANCY_DRIFT}: {exc}")
            self._stop.wait(self.settings.drift_poll_s)

    # -- status ------------------------------------------------------------------------------

    def snapshot_alerts(self) -> dict[str, Any]:
        with self._lock:
            return alerts_json(self.site, self.engine, self.clock.now_ms())

    def health(self) -> dict[str, Any]:
        return health_json(self.site, self.store, self.mqtt_connected, self.clock.now_ms())

    def _log_limited(self, key: str, message: str) -> None:
        """A warning about what outsiders send or what is down: once a minute per key."""
        if self._limiter.allow(key) is not None:
            log.warning(message)
