"""The outbox drained: one thread per channel (each receiver, the retained MQTT alert
topic, the InfluxDB `alert` measurement), each in order, so that a receiver that is down
only delays its own entries. `Retryable` is tried again with back-off (jittered, capped
at `delivery.retry_max_s`), `Refused` is recorded for good; an entry is marked sent right
after its receiver took it."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from footfall_collector.influx import Influx, InfluxLink, PermanentWriteError, RetryableWriteError
from footfall_collector.schema import alert_point
from footfall_contract.site import Site
from footfall_runtime.service import Clock, Stopping

from .config import AlertsSettings
from .metrics import Metrics
from .receivers import Refused, Retryable, smtp
from .receivers import mqtt as mqtt_receiver
from .receivers.webhook import WebhookSender
from .rules import EmailReceiver, RulesFile
from .store import Store

log = logging.getLogger(__name__)

INFLUX_BATCH = 500
"""`alert` points written in one request; a receiver gets one entry at a time."""
PUBLISH_TIMEOUT_S = 10.0


class Delivery:
    def __init__(
        self,
        settings: AlertsSettings,
        site: Site,
        rules: RulesFile,
        store: Store,
        influx: Influx,
        client: mqtt.Client,
        metrics: Metrics,
        clock: Clock,
        warn: Callable[[str, str], None],
        stopping: Stopping,
    ) -> None:
        self.settings = settings
        self.site = site
        self.rules = rules
        self.store = store
        self.influx = influx
        self.client = client
        self.metrics = metrics
        self.clock = clock
        self._warn = warn
        self._stopping = stopping
        self._webhooks = WebhookSender()
        self.influx_link = InfluxLink(
            settings.influx, log, "Alert history waits in the outbox until it answers"
        )

    def channels(self) -> list[str]:
        """Every channel of the rules, and those of receivers since removed that still
        have entries (they are refused, and so recorded)."""
        channels = {"mqtt", "influx"} | {f"receiver:{r}" for r in self.rules.receivers}
        channels |= set(self.store.channels())
        return sorted(channels)

    def close(self) -> None:
        self._webhooks.close()

    def run(self, channel: str) -> None:
        """The thread of one channel, until the service stops."""
        d = self.settings.delivery
        if channel == "influx":
            self._prepare_influx()
        while not self._stopping.is_set():
            now = self.clock.now_ms()
            seen = self.store.version
            limit = INFLUX_BATCH if channel == "influx" else 1
            entries, wake_at = self.store.due(channel, now, limit)
            if not entries:
                wait = 1.0 if wake_at is None else min(1.0, max(0.01, (wake_at - now) / 1000))
                if not self._stopping.is_set():
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
                self._warn(f"retry:{channel}", f"{channel}: {exc}; retrying in {delay:.0f} s")
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
        while not self._stopping.is_set():
            try:
                self.influx.ensure_database()
                self.metrics.connected.labels("influx").set(1)
                self.influx_link.ok()
                return
            except (RetryableWriteError, PermanentWriteError) as exc:
                self.metrics.connected.labels("influx").set(0)
                self.influx_link.failed(exc)
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)

    def _deliver(self, channel: str, bodies: list[dict[str, Any]], key: str) -> None:
        if channel == "mqtt":
            mqtt_receiver.publish(
                self.client, self.site.site, bodies[0]["alert"], PUBLISH_TIMEOUT_S
            )
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
