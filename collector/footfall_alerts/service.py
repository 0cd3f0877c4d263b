"""footfall-alerts: the MQTT adapter around the engine, the outbox and the receivers.

Its own process (not part of the collector) so that the collector's exactly-once path
never waits on a mail server, and so that alerting can be restarted or upgraded alone.

Nothing missed: a persistent MQTT v5 session (fixed client id, QoS 1) keeps what the
agents and the collector publish while the service is away; a message is acknowledged
only after the engine's new state and the messages it decided on are committed to
SQLite. Nothing sent twice: the engine resumes from that state, and the outbox marks each
entry sent once its receiver took it. Receivers that are down only delay their entries:
each channel (one per receiver, plus MQTT and InfluxDB) is retried with back-off, in
order.
"""

from __future__ import annotations

import functools
import logging
import queue
import random
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from footfall_collector.influx import (
    Influx,
    InfluxLink,
    PermanentWriteError,
    RetryableWriteError,
    connect,
)
from footfall_contract.limits import MAX_PACKET_BYTES
from footfall_contract.site import Site
from footfall_contract.timefmt import format_ts
from footfall_runtime.mqttclient import MqttLink, make_client, start_persistent_session

from .config import AlertsSettings, token_required
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
from .inputs import Dropped, observations, subscriptions
from .metrics import Metrics
from .receivers import Refused, Retryable, smtp
from .receivers import mqtt as mqtt_receiver
from .receivers.webhook import WebhookSender
from .record import alert_point
from .rules import EmailReceiver, Route, RulesFile, WebhookReceiver

log = logging.getLogger(__name__)

SAVE_EVERY_MS = 5_000
"""State that changed without any transition (a zone count, a health time) is saved at
most this often: retained zone and status topics are delivered again on reconnect."""
BATCH_MAX = 500
"""Messages handled in one transaction at most."""
INBOX_QOS0_MAX = 10_000
"""QoS 0 messages (agent health) waiting at most; past it they are dropped and counted."""


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


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
        self.clock = clock or SystemClock()
        self.influx = influx or connect(settings.influx)
        self.metrics = Metrics()
        from footfall_runtime.config import ConfigError

        from .store import Store

        path = Path(settings.state_dir) / f"{site.site}.sqlite3"
        try:
            self.store = Store(path)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"state_dir: cannot keep the alert state in {path}: {exc} "
                "(set FOOTFALL_STATE_DIR to a folder this user may write)"
            ) from None
        parts = self.store.load_parts()
        legacy = None if parts else self.store.load_legacy()
        self.engine = Engine(site, self.rules, state=legacy, parts=parts)
        for line in self.engine.repairs:
            log.warning("saved alert state in %s: %s", path, line)
        # What restoring repaired, or the whole state of a one-document file, as parts.
        self.store.commit(
            self.engine.take_changes(), [], self.clock.now_ms(), drop_legacy=legacy is not None
        )
        self._lock = threading.RLock()  # the engine and its saving
        self._last_save = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._webhooks = WebhookSender()
        self._logged: dict[str, float] = {}
        self._inbox: queue.Queue[tuple[int, mqtt.MQTTMessage]] = queue.Queue()
        self._generation = 0
        """Bumped on every connect: message ids are only valid on their connection."""
        self.mqtt_connected = False
        self.ready = threading.Event()
        self.client = make_client(
            settings.mqtt,
            settings.client_id or f"footfall-alerts-{site.site}",
            v5=True,
            manual_ack=True,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.mqtt_link = MqttLink(
            self.client, settings.mqtt, log, "No alert is raised or resolved meanwhile"
        )
        self.influx_link = InfluxLink(
            settings.influx, log, "Alert history waits in the outbox until it answers"
        )
        self.http: Any = None
        self._check_receivers()

    def _check_receivers(self) -> None:
        from footfall_runtime.config import ConfigError

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
        channels = {"mqtt", "influx"} | {f"receiver:{r}" for r in self.rules.receivers}
        channels |= set(self.store.channels())  # entries of receivers since removed
        for channel in sorted(channels):
            self._spawn(functools.partial(self._deliver_loop, channel), f"deliver-{channel}")
        self._spawn(self._ticker, "ticker")
        self._spawn(self._processor, "messages")
        if any(r.kind == "drift_clamped" for r in self.engine.rules):
            self._spawn(self._drift_poller, "drift-poller")
        start_persistent_session(
            self.client,
            self.settings.mqtt,
            session_expiry_s=self.settings.session_expiry_s,
            receive_maximum=1000,
            # retained status or alert topics stored before the broker had a size limit
            max_packet_bytes=MAX_PACKET_BYTES,
        )
        if self.settings.http.port is not None:
            from .api import serve

            self.http = serve(self, self.settings.http.host, self.settings.http.port)

    def stop(self) -> None:
        self._stop.set()
        self.store.wake()
        if self.http is not None:
            self.http.stop()
        self.client.disconnect()
        self.client.loop_stop()
        for t in self._threads:
            t.join(timeout=15)
        self._webhooks.close()
        self.influx.close()
        self.store.close()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # -- MQTT in ---------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self.mqtt_link.refused(rc)
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):
            # An acknowledgement followed at once by an alert publish would otherwise wait
            # for the broker's delayed ACK (Nagle): 40 ms on every alert.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._generation += 1
        client.subscribe([(t, 1) for t in subscriptions(self.site.site)])
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
        self.mqtt_connected = False
        self.metrics.connected.labels("mqtt").set(0)
        self.mqtt_link.disconnected(rc, self._stop.is_set())

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        """Queued, not handled here: paho's network thread must stay free to answer the
        broker (keepalive) however long a burst takes. QoS 1 messages are bounded by the
        session's receive maximum (unacknowledged ones); QoS 0 ones (health) here."""
        if msg.qos == 0 and self._inbox.qsize() >= INBOX_QOS0_MAX:
            self.metrics.messages.inc()
            self.metrics.rejected.inc()
            self._log_limited("inbox", f"{INBOX_QOS0_MAX} messages waiting: dropped QoS 0 ones")
            return
        self._inbox.put((self._generation, msg))

    def _processor(self) -> None:
        while not self._stop.is_set():
            try:
                batch = [self._inbox.get(timeout=0.2)]
            except queue.Empty:
                continue
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            self._handle(batch)

    def _handle(self, batch: list[tuple[int, mqtt.MQTTMessage]]) -> None:
        """Every message queued meanwhile in one transaction, then acknowledged: one
        commit (fsync) per burst, not per message, so that one agent's flood of faults
        costs the others a fraction of a second, not minutes."""
        generation = self._generation
        handled: list[mqtt.MQTTMessage] = []
        effects: list[Effect] = []
        force = False
        with self._lock:
            for gen, msg in batch:
                if gen != generation and msg.qos > 0:
                    continue  # received before a reconnect: the broker sends it again
                now = self.clock.now_ms()
                obs = self._read(msg, now)
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
                return
        if generation != self._generation:
            return  # reconnected meanwhile: their ids belong to the old connection
        for msg in handled:
            if msg.qos > 0:
                self.client.ack(msg.mid, msg.qos)

    def _read(self, msg: mqtt.MQTTMessage, now: int) -> list[Observation]:
        self.metrics.messages.inc()
        dropped: Dropped = []
        try:
            obs = observations(self.site, msg.topic, bytes(msg.payload), now, dropped)
        except ValueError as exc:
            self.metrics.rejected.inc()
            self._log_limited(f"bad:{msg.topic}", f"ignored a message: {exc}")
            obs = []
        for reason, _ in dropped:
            self.metrics.dropped_events.labels(reason).inc()
        if dropped:
            reason, text = dropped[0]
            more = f" (and {len(dropped) - 1} more in this message)" if len(dropped) > 1 else ""
            self._log_limited(f"drop:{reason}:{msg.topic}", f"dropped a fault event: {text}{more}")
        return obs

    # -- engine effects -> outbox ----------------------------------------------------------

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

    def apply(self, action: Callable[[Engine, int], list[Effect]]) -> None:
        """Run an API action on the engine and commit what it decided."""
        with self._lock:
            now = self.clock.now_ms()
            effects = action(self.engine, now)
            self._commit(effects, now, force=True)

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
                    next_prune = time.monotonic() + 3600
                    keep = self.settings.delivery.keep_sent_days * 86_400_000
                    self.store.prune(self.clock.now_ms() - round(keep))
                for channel, (count, _) in self.store.pending().items():
                    self.metrics.outbox.labels(channel).set(count)
            except Exception:
                log.exception("tick failed")

    def _drift_poller(self) -> None:
        """drift_clamped: the collector's `occupancy_drift` since the last daily reset."""
        from footfall_contract.hours import last_reset_before

        while not self._stop.is_set():
            now = self.clock.now_ms()
            since = last_reset_before(self.site, now)
            q = (
                'SELECT last("clamped") FROM "occupancy_drift" '
                f'WHERE "site" = \'{self.site.site}\' AND time >= {since}ms GROUP BY "zone"'
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
                self._log_limited("drift", f"cannot read occupancy_drift: {exc}")
            self._stop.wait(self.settings.drift_poll_s)

    # -- delivery --------------------------------------------------------------------------

    def _deliver_loop(self, channel: str) -> None:
        d = self.settings.delivery
        if channel == "influx":
            self._prepare_influx()
        while not self._stop.is_set():
            now = self.clock.now_ms()
            seen = self.store.version
            limit = 500 if channel == "influx" else 1
            entries, wake_at = self.store.due(channel, now, limit)
            if not entries:
                wait = 1.0 if wake_at is None else min(1.0, max(0.01, (wake_at - now) / 1000))
                if not self._stop.is_set():
                    self.store.wait_for_change(seen, wait)
                continue
            ids = [e.id for e in entries]
            try:
                self._deliver(channel, [e.body for e in entries], f"{self.site.site}-{ids[0]}")
            except Retryable as exc:
                attempts = entries[0].attempts + 1
                delay = min(d.retry_max_s, d.retry_min_s * 2 ** min(attempts - 1, 20))
                delay *= random.uniform(0.8, 1.2)
                self.store.mark_retry(ids, str(exc), self.clock.now_ms() + round(delay * 1000))
                self.metrics.deliveries.labels(channel, "retry").inc()
                self._log_limited(
                    f"retry:{channel}", f"{channel}: {exc}; retrying in {delay:.0f} s"
                )
                continue
            except Refused as exc:
                self.store.mark_failed(ids, str(exc))
                self.metrics.deliveries.labels(channel, "refused").inc()
                log.error("%s refused entry %s for good: %s", channel, ids, exc)
                continue
            sent = self.clock.now_ms()
            self.store.mark_sent(ids, sent)
            self.metrics.deliveries.labels(channel, "sent").inc(len(ids))
            if channel.startswith("receiver:"):
                self.metrics.delivery_delay.observe((sent - entries[0].created_ms) / 1000)
                log.info("%s: sent %s", channel, entries[0].body["event"])

    def _prepare_influx(self) -> None:
        """Create the database (unless told not to) before the first `alert` point; the
        collector may not have run yet."""
        delay = 0.5
        while not self._stop.is_set():
            try:
                self.influx.ensure_database()
                self.metrics.connected.labels("influx").set(1)
                self.influx_link.ok()
                return
            except (RetryableWriteError, PermanentWriteError) as exc:
                self.metrics.connected.labels("influx").set(0)
                self.influx_link.failed(exc)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)

    def _deliver(self, channel: str, bodies: list[dict[str, Any]], key: str) -> None:
        if channel == "mqtt":
            mqtt_receiver.publish(self.client, self.site.site, bodies[0]["alert"], 10.0)
        elif channel == "influx":
            lines = [alert_point(self.site.site, b).line() for b in bodies]
            try:
                self.influx.write(lines)
            except RetryableWriteError as exc:
                raise Retryable(str(exc)) from None
            except PermanentWriteError as exc:
                raise Refused(str(exc)) from None
        else:
            name = channel.removeprefix("receiver:")
            receiver = self.rules.receivers.get(name)
            if receiver is None:
                raise Refused(f"receiver {name!r} is no longer in the rules file")
            if isinstance(receiver, EmailReceiver):
                smtp.send(self.settings.smtp, receiver.to, bodies[0], key)
            else:
                self._webhooks.send(receiver, bodies[0], key)

    # -- status ------------------------------------------------------------------------------

    def snapshot_alerts(self) -> dict[str, Any]:
        with self._lock:
            now = self.clock.now_ms()
            return {
                "site": self.site.site,
                "alerts": self.engine.active(now),
                "silences": [
                    {
                        "id": s.id,
                        "matchers": s.matchers,
                        "until": _iso(s.until),
                        "by": s.by,
                        "reason": s.reason,
                        "created": _iso(s.created),
                    }
                    for s in self.engine.silences.values()
                    if s.until > now
                ],
            }

    def health(self) -> dict[str, Any]:
        now = self.clock.now_ms()
        pending = self.store.pending()
        oldest = min((t for _, t in pending.values() if t is not None), default=None)
        return {
            "ready": self.mqtt_connected,
            "mqtt": self.mqtt_connected,
            "site": self.site.site,
            "outbox_open": sum(c for c, _ in pending.values()),
            "outbox_oldest_s": None if oldest is None else round((now - oldest) / 1000, 1),
            **{f"outbox_{k}": v for k, v in self.store.counts().items() if k != "open"},
        }

    def _log_limited(self, key: str, message: str) -> None:
        now = time.monotonic()
        if now - self._logged.get(key, -1e9) >= 60.0:
            self._logged[key] = now
            log.warning(message)


def _iso(ms: int) -> str:
    return format_ts(ms)
