"""The MQTT consumer of a service that must not lose a message: a persistent MQTT v5
session (fixed client id, clean start off, QoS 1) whose messages are acknowledged only
once their effect is durable (paho `manual_ack`), so a crash, a broker restart or an
outage of the store just means the broker delivers them again.

The collector (acknowledging after InfluxDB has a message's points) and the alerts
service (after SQLite committed what it changed) both need this, and the part that is
easy to get wrong lives here once: a message id is valid only on the connection that
delivered it. Each connection (and each loss of one) starts a new generation, every
message is handed on with its generation, and an acknowledgement of an older generation
is dropped -- on the next connection the same id names another message, and the broker
delivers the unacknowledged one again anyway."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import paho.mqtt.client as mqtt

from .config import MqttSettings
from .mqttclient import MqttLink, make_client, start_persistent_session
from .service import Stopping

MessageHandler = Callable[[int, mqtt.MQTTMessage], None]
"""(generation, message), on paho's network thread: keep it short, and acknowledge
through `AckingConsumer.ack` with that generation once the message's effect is durable."""

Ack = tuple[int, int, int]
"""(generation, mid, qos) of a received message."""


class AckingConsumer:
    """One service's persistent session: connects, subscribes on every connect, hands each
    message to the owner, acknowledges what the owner says is durable, and tells the
    operator (`MqttLink`) and the owner (`ready`, `connected`, `on_connection`) about the
    connection."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        subscriptions: Sequence[tuple[str, int]],
        on_message: MessageHandler,
        *,
        logger: logging.Logger,
        meanwhile: str,
        stopping: Stopping,
        session_expiry_s: int,
        receive_maximum: int,
        max_packet_bytes: int | None = None,
        on_connection: Callable[[bool], None] | None = None,
        buffered_reads: bool = False,
        tcp_nodelay: bool = False,
    ) -> None:
        """`subscriptions`: (topic filter, QoS), subscribed on every connect.
        `logger`: the owner's, for the connection's log lines and a handler's failure.
        `meanwhile`: what happens to the owner's data while the broker is away (`MqttLink`).
        `stopping`: set when the owner shuts down (a disconnect then is no failure).
        `session_expiry_s`, `receive_maximum`, `max_packet_bytes`: the session
        (`start_persistent_session`). `on_connection(up)`: e.g. a gauge.
        `buffered_reads`: for a client that receives a lot (`make_client`).
        `tcp_nodelay`: for an owner that publishes right after acknowledging (no 40 ms
        wait for the broker's delayed ACK); needs a plain socket (not `buffered_reads`)."""
        self.settings = settings
        self._subscriptions = list(subscriptions)
        self._handler = on_message
        self._log = logger
        self._stopping = stopping
        self._session_expiry_s = session_expiry_s
        self._receive_maximum = receive_maximum
        self._max_packet_bytes = max_packet_bytes
        self._on_connection = on_connection
        self._tcp_nodelay = tcp_nodelay
        # The generation and the acks that depend on it: a lock of their own, so that
        # acknowledging a batch does not hold up paho's thread handling new messages.
        self._ack_lock = threading.Lock()
        self._generation = 0
        self.connected = False
        self.ready = threading.Event()
        """Set on the first connect (subscribed)."""
        self.client = make_client(
            settings, client_id, v5=True, manual_ack=True, buffered_reads=buffered_reads
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._subacks = threading.Condition()
        self._subacked: set[int] = set()
        self._ready_mid: int | None = None  # the SUBACK that makes the consumer ready
        self.link = MqttLink(self.client, settings, logger, meanwhile)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (reconnecting); returns at once."""
        start_persistent_session(
            self.client,
            self.settings,
            session_expiry_s=self._session_expiry_s,
            receive_maximum=self._receive_maximum,
            max_packet_bytes=self._max_packet_bytes,
        )

    def stop(self) -> None:
        """Disconnect and end paho's thread (the owner sets `stopping` first)."""
        self.client.disconnect()
        self.client.loop_stop()

    # -- subscriptions (any thread) --------------------------------------------------------

    def subscribe(self, topic: str, qos: int, timeout_s: float = 10.0) -> bool:
        """Subscribe now and on every later connect (a site added while running); True
        once the broker confirmed it (False: not connected now, the next connect
        subscribes). The list is replaced, never changed in place, so a connect reads a
        whole one."""
        if (topic, qos) not in self._subscriptions:
            self._subscriptions = [*self._subscriptions, (topic, qos)]
        rc, mid = self.client.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            return False
        with self._subacks:  # the SUBACK may be in already: the set keeps it
            return self._subacks.wait_for(lambda: mid in self._subacked, timeout_s)

    def unsubscribe(self, topic: str) -> None:
        """Stop a subscription now and on later connects (a site removed while running)."""
        self._subscriptions = [s for s in self._subscriptions if s[0] != topic]
        self.client.unsubscribe(topic)

    # -- acknowledging (any thread) ------------------------------------------------------

    @property
    def generation(self) -> int:
        """The current connection's generation."""
        with self._ack_lock:
            return self._generation

    def ack(self, generation: int, mid: int, qos: int) -> bool:
        """Acknowledge one message; False when it came on an older connection (or QoS 0)."""
        return self.ack_all([(generation, mid, qos)]) == 1

    def ack_all(self, acks: Iterable[Ack]) -> int:
        """Acknowledge messages, all on one hold of the lock (a disconnect does not split
        them); those of an older connection and QoS 0 ones are skipped. Returns how many
        were acknowledged."""
        pending = list(acks)
        sent = 0
        with self._ack_lock:
            for generation, mid, qos in pending:
                if generation == self._generation and qos > 0:
                    self.client.ack(mid, qos)
                    sent += 1
        return sent

    # -- paho's network thread -----------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self.link.refused(rc)
            return
        if self._tcp_nodelay:
            sock = client.socket()
            if isinstance(sock, socket.socket):
                # An acknowledgement followed at once by a publish would otherwise wait
                # for the broker's delayed ACK (Nagle): 40 ms each time.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._ack_lock:
            self._generation += 1
        subscribed: int | None = None
        if self._subscriptions:  # a shard may serve no site (yet)
            _rc, subscribed = client.subscribe(self._subscriptions)
        self.connected = True
        if self._on_connection is not None:
            self._on_connection(True)
        self._log.info(
            "connected to MQTT %s:%s (session present: %s)",
            self.settings.host,
            self.settings.port,
            getattr(flags, "session_present", "?"),
        )
        self.link.connected()
        if subscribed is None:
            self.ready.set()
        else:  # ready once the broker holds the subscriptions: a message published
            # before that, by another client, would not be queued for this session
            with self._subacks:
                self._ready_mid = subscribed
                if subscribed in self._subacked:
                    self.ready.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        with self._ack_lock:
            # Acks of this connection's messages would hit other messages on the next
            # one (an ack queued once paho has reconnected goes out on it); the broker
            # delivers them again instead.
            self._generation += 1
        self.connected = False
        if self._on_connection is not None:
            self._on_connection(False)
        self.link.disconnected(rc, self._stopping.is_set())

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        with self._subacks:
            self._subacked.add(mid)
            self._subacks.notify_all()
            if mid == self._ready_mid:
                self.ready.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        # The generation changes only on this thread (on_connect, on_disconnect).
        try:
            self._handler(self._generation, msg)
        except Exception:  # never lose the message: it stays unacknowledged
            self._log.exception("failed to handle a message on %s", msg.topic)
