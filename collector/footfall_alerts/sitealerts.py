"""One site's alerting: its engine, rules, time zone, opening hours and state, kept and
acted on under one lock, and committed with the outbox entries it decided on.

Every change -- the site's MQTT messages (handed in by the service), an API action, a
tick, a drift reading -- runs on the engine under the lock and is committed to the site's
own SQLite file (`state_dir/SITE.sqlite3`) together with the outbox entries it decided
on, before the messages behind it are acknowledged. Nothing sent twice: the engine resumes
from that state, and the outbox (drained by delivery.py, one channel per receiver plus
MQTT and InfluxDB, each retried with back-off, in order) marks each entry sent once its
receiver took it. One file per site keeps that one transaction per site: sites share no
state, so a site added, reloaded or removed touches no other's file."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from footfall_collector.influx import Influx, PermanentWriteError, RetryableWriteError
from footfall_collector.influxql import tag_is
from footfall_collector.schema import OCCUPANCY_DRIFT
from footfall_contract.hours import last_reset_before
from footfall_contract.site import Site
from footfall_runtime.config import ConfigError
from footfall_runtime.service import Clock, Threads

from .config import AlertsSettings
from .delivery import Delivery
from .engine import (
    PUBLISHED,
    RECORDED,
    DriftObs,
    Effect,
    Engine,
    FaultObs,
    Notification,
    Observation,
    Transition,
)
from .metrics import Metrics
from .rules import EmailReceiver, Route, RulesFile, WebhookReceiver
from .status import alerts_json, outbox_json
from .store import open_store

log = logging.getLogger("footfall_alerts.service")

SAVE_EVERY_MS = 5_000
"""State that changed without any transition (a zone count, a health time) is saved at
most this often: retained zone and status topics are delivered again on reconnect."""
THREAD_JOIN_S = 15.0

Read = Callable[[Site, mqtt.MQTTMessage, int], list[Observation]]
"""What a message says for a site (intake.MqttIntake.read)."""
Warn = Callable[[str, str], None]


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


def check_receivers(rules: RulesFile, settings: AlertsSettings) -> None:
    """ConfigError for a receiver that cannot work with these settings."""
    for name, receiver in rules.receivers.items():
        if isinstance(receiver, EmailReceiver) and not settings.smtp.host:
            raise ConfigError(
                f"receiver {name!r} sends e-mail but no SMTP server is set "
                "(FOOTFALL_SMTP__HOST or [smtp] host in the config file)"
            )
        if isinstance(receiver, WebhookReceiver) and receiver.url_env:
            try:
                receiver.resolved_url()
            except ValueError as exc:
                raise ConfigError(f"receiver {name!r}: {exc}") from None


class SiteAlerts:
    """One site's engine, state file and delivery threads. The service hands it the
    site's messages (`decide`) and calls `tick`; `start` starts its delivery (and drift
    poller), `halt` + `close` stop it."""

    def __init__(
        self,
        settings: AlertsSettings,
        site: Site,
        rules: RulesFile | None,
        *,
        clock: Clock,
        influx: Influx,
        client: mqtt.Client,
        metrics: Metrics,
        warn: Warn,
    ) -> None:
        self.settings = settings
        self.site = site
        self.rules = with_defaults(rules, settings)
        check_receivers(self.rules, settings)
        self.clock = clock
        self.influx = influx
        self.metrics = metrics
        self._warn = warn
        self.store = open_store(settings.state_dir, site.site)
        try:
            parts = self.store.load_parts()
            legacy = None if parts else self.store.load_legacy()
            self.engine = Engine(site, self.rules, state=legacy, parts=parts)
            for line in self.engine.repairs:
                log.warning("saved alert state in %s: %s", self.store.path, line)
            # What restoring repaired, or the whole state of a one-document file, as parts.
            self.store.commit(
                self.engine.take_changes(), [], clock.now_ms(), drop_legacy=legacy is not None
            )
        except BaseException:
            self.store.close()
            raise
        self.lock = threading.RLock()  # the engine and its saving
        self._last_save = 0
        self._stop = threading.Event()
        self._threads = Threads()
        self.delivery = Delivery(
            settings,
            site,
            self.rules,
            self.store,
            influx,
            client,
            metrics,
            clock,
            warn,
            self._stop,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        with self.lock:  # pipeline_silent: the collector's heartbeat is awaited from now
            self.engine.watch(self.clock.now_ms())
        name = self.site.site
        for channel in self.delivery.channels():
            self._threads.spawn(
                functools.partial(self.delivery.run, channel), f"deliver-{name}-{channel}"
            )
        if any(r.kind == "drift_clamped" for r in self.engine.rules):
            self._threads.spawn(self._drift_poller, f"drift-{name}")

    def flush(self) -> None:
        """Save what is not saved yet (a zone count, a health time)."""
        with self.lock:
            self._commit([], self.clock.now_ms(), force=True)

    def halt(self) -> None:
        """Save what is not saved yet and stop the delivery threads (not waiting)."""
        try:
            self.flush()
        except Exception:
            log.exception("site %s: failed to save the state", self.site.site)
        self._stop.set()
        self.store.wake()

    def close(self) -> None:
        """After `halt`: wait for the threads, then close the state file."""
        self._threads.join(THREAD_JOIN_S)
        self.delivery.close()
        self.store.close()

    # -- changes to the engine, each committed with what it decided ------------------------

    def decide(self, batch: list[mqtt.MQTTMessage], read: Read) -> list[mqtt.MQTTMessage] | None:
        """The site's messages of a batch on the engine and saved in one transaction;
        those handled (to acknowledge), or None when saving failed."""
        handled: list[mqtt.MQTTMessage] = []
        effects: list[Effect] = []
        force = False
        with self.lock:
            for msg in batch:
                now = self.clock.now_ms()
                obs = read(self.site, msg, now)
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
        with self.lock:
            now = self.clock.now_ms()
            effects = action(self.engine, now)
            self._commit(effects, now, force=True)

    def tick(self) -> tuple[int, int]:
        """The time-driven work; (firing, open) alerts."""
        with self.lock:
            now = self.clock.now_ms()
            self._commit(self.engine.tick(now), now)
            alerts = self.engine.alerts.values()
            return sum(a.state == "firing" for a in alerts), len(alerts)

    def _commit(self, effects: list[Effect], now: int, force: bool = False) -> None:
        """Save what changed in the engine state and the entries for `effects` in one
        transaction (caller holds the lock). Without effects at most every 5 s."""
        if not effects and not force and now - self._last_save < SAVE_EVERY_MS:
            return
        entries: list[tuple[str, dict[str, Any]]] = []
        for e in effects:
            if isinstance(e, Transition):
                self.metrics.transitions.labels(self.site.site, e.state).inc()
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
                self.metrics.notifications.labels(self.site.site, e.receiver, e.event).inc()
                entries.append((f"receiver:{e.receiver}", self._notification(e)))
        self.store.commit(self.engine.take_changes(), entries, now)
        self._last_save = now

    def _notification(self, n: Notification) -> dict[str, Any]:
        """What a receiver's entry keeps: all its texts need, as they were when it was due
        (the language and the zone outlive a change of the files)."""
        lang = self.rules.language
        return {
            "site": self.site.site,
            "site_name": self.site.name_in(lang),
            "language": lang,
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
                with self.lock:
                    effects: list[Effect] = []
                    for zone in (z.id for z in self.site.zones):
                        effects += self.engine.observe(DriftObs(zone, found.get(zone, 0), now), now)
                    self._commit(effects, now)
            except (RetryableWriteError, PermanentWriteError, KeyError, ValueError) as exc:
                self.metrics.connected.labels("influx").set(0)
                self._warn(f"drift:{self.site.site}", f"cannot read {OCCUPANCY_DRIFT}: {exc}")
            self._stop.wait(self.settings.drift_poll_s)

    # -- status ------------------------------------------------------------------------------

    def snapshot_alerts(self) -> dict[str, Any]:
        with self.lock:
            return alerts_json(self.site, self.engine, self.clock.now_ms())

    def outbox(self) -> dict[str, Any]:
        return outbox_json(self.store, self.clock.now_ms())
