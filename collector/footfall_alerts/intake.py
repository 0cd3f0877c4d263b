"""MQTT in: the inbox between paho's network thread and the engines, batched so that one
commit per site covers a burst, and the acknowledgement that only follows that commit.
One consumer (one persistent session) for every site the service serves; the topics
follow the sites (`set_sites`) when the site folder changes.

Nothing missed: the persistent MQTT v5 session (fixed client id, QoS 1;
`footfall_runtime.consumer`) keeps what the agents and the collector publish while the
service is away, and a message is acknowledged only once `decide` has committed what it
changed. What to do with a message is the service's (`decide`); reading it into
observations, counting and logging what was wrong with it is here."""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable

import paho.mqtt.client as mqtt

from footfall_contract.limits import MAX_PACKET_BYTES
from footfall_contract.site import Site
from footfall_runtime.consumer import AckingConsumer
from footfall_runtime.service import Stopping

from .config import AlertsSettings
from .engine import Observation
from .inputs import Dropped, observations, subscriptions
from .metrics import Metrics

log = logging.getLogger(__name__)

BATCH_MAX = 500
"""Messages handled in one transaction at most."""
INBOX_QOS0_MAX = 10_000
"""QoS 0 messages (agent health) waiting at most; past it they are dropped and counted."""
RECEIVE_MAXIMUM = 1000
"""QoS 1 messages the broker sends before waiting for acknowledgements."""

Decide = Callable[[list[mqtt.MQTTMessage]], list[mqtt.MQTTMessage] | None]
"""Handles a batch and commits it; returns the messages handled (to acknowledge), None
when nothing was saved (none acknowledged: the broker delivers them again)."""
Warn = Callable[[str, str], None]
"""(key, message): a warning, at most once a minute per key."""


def site_topics(sites: list[str]) -> list[str]:
    return [t for site in sorted(sites) for t in subscriptions(site)]


class MqttIntake:
    def __init__(
        self,
        settings: AlertsSettings,
        client_id: str,
        sites: list[str],
        metrics: Metrics,
        decide: Decide,
        warn: Warn,
        stopping: Stopping,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._decide = decide
        self._warn = warn
        self._stopping = stopping
        self._inbox: queue.Queue[tuple[int, mqtt.MQTTMessage]] = queue.Queue()
        self.sites = sorted(sites)
        self.client_id = client_id
        self.consumer = AckingConsumer(
            settings.mqtt,
            client_id,
            [(t, 1) for t in site_topics(self.sites)],
            self._on_message,
            logger=log,
            meanwhile="No alert is raised or resolved meanwhile",
            stopping=stopping,
            session_expiry_s=settings.session_expiry_s,
            receive_maximum=RECEIVE_MAXIMUM,
            # retained status or alert topics stored before the broker had a size limit
            max_packet_bytes=MAX_PACKET_BYTES,
            on_connection=lambda up: metrics.connected.labels("mqtt").set(1 if up else 0),
            # an acknowledgement is often followed at once by an alert publish
            tcp_nodelay=True,
        )
        self.client = self.consumer.client
        self.ready = self.consumer.ready

    @property
    def connected(self) -> bool:
        return self.consumer.connected

    def start(self) -> None:
        self.consumer.start()

    def set_sites(self, sites: list[str]) -> None:
        """Subscribe to these sites' topics from now on, and to no others. What the
        broker already queued for a dropped site still arrives (the service drops it)."""
        old, new = site_topics(self.sites), site_topics(sites)
        self.sites = sorted(sites)
        for topic in new:
            if topic not in old:
                self.consumer.subscribe(topic, 1)
        for topic in old:
            if topic not in new:
                self.consumer.unsubscribe(topic)

    def stop(self) -> None:
        self.consumer.stop()

    def _on_message(self, generation: int, msg: mqtt.MQTTMessage) -> None:
        """Queued, not handled here (paho's network thread): it must stay free to answer
        the broker (keepalive) however long a burst takes. QoS 1 messages are bounded by
        the session's receive maximum (unacknowledged ones); QoS 0 ones (health) here."""
        if msg.qos == 0 and self._inbox.qsize() >= INBOX_QOS0_MAX:
            self.metrics.messages.inc()
            self.metrics.rejected.inc()
            self._warn("inbox", f"{INBOX_QOS0_MAX} messages waiting: dropped QoS 0 ones")
            return
        self._inbox.put((generation, msg))

    # -- the "messages" thread -------------------------------------------------------------

    def run(self) -> None:
        """Until the service stops: every message queued meanwhile in one batch."""
        while not self._stopping.is_set():
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
        """One transaction per burst, then acknowledged: one commit (fsync) per burst, not
        per message, so that one agent's flood of faults costs the others a fraction of a
        second, not minutes."""
        generation = self.consumer.generation
        # received before a reconnect: the broker sends it again
        current = [msg for gen, msg in batch if gen == generation or msg.qos == 0]
        handled = self._decide(current)
        if handled is None:
            return  # not saved: none acknowledged
        # dropped if reconnected meanwhile: ids of the old connection
        self.consumer.ack_all((generation, msg.mid, msg.qos) for msg in handled)

    def read(self, site: Site, msg: mqtt.MQTTMessage, now_ms: int) -> list[Observation]:
        """What a message says; one that cannot be read is counted, logged and empty."""
        self.metrics.messages.inc()
        dropped: Dropped = []
        try:
            obs = observations(site, msg.topic, bytes(msg.payload), now_ms, dropped)
        except ValueError as exc:
            self.metrics.rejected.inc()
            self._warn(f"bad:{msg.topic}", f"ignored a message: {exc}")
            obs = []
        for reason, _ in dropped:
            self.metrics.dropped_events.labels(site.site, reason).inc()
        if dropped:
            reason, text = dropped[0]
            more = f" (and {len(dropped) - 1} more in this message)" if len(dropped) > 1 else ""
            self._warn(f"drop:{reason}:{msg.topic}", f"dropped a fault event: {text}{more}")
        return obs
