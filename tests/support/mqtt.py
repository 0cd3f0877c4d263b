"""A recording MQTT subscriber for tests, and its barrier: `sync()` proves that
everything the broker had routed to it has arrived."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.waiting import barrier, eventually


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int

    def json(self) -> Any:
        return json.loads(self.payload)


class Recorder:
    """Subscribes at QoS 1 and keeps every message; `wait_until` polls a condition and
    `sync` is the barrier before asserting that nothing (more) came."""

    def __init__(
        self,
        port: int,
        topic: str = "#",
        host: str = "127.0.0.1",
        client_id: str = "",
        clean: bool = True,
    ) -> None:
        self.topic = topic
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._acked: set[int] = set()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean
        )
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("no SUBACK from the broker")

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, *_: Any) -> None:
        with self._lock:
            self._acked.add(mid)
        self._subscribed.set()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos))

    def on(self, suffix: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def wait_until(self, cond: Callable[[], bool], timeout_s: float = 20.0) -> None:
        try:
            eventually(cond, timeout_s, f"condition on {self.topic!r}", interval_s=0.05)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; got {len(self.messages)} messages") from None

    def sync(self, timeout_s: float = 10.0) -> None:
        """A SUBSCRIBE round trip on this recorder's own connection (to a topic nobody
        uses; allowed or not, the broker answers). Mosquitto handles a connection's
        packets in order and writes to each client in order, so when the SUBACK is back,
        whatever it had routed to this recorder before is in `messages`: the retained
        messages of its subscription, and every publish that another subscriber has
        already received (the broker routes a publish to all subscribers at once)."""
        mids: list[int | None] = []

        def send() -> None:
            mids.append(self.client.subscribe(f"footfall-test/sync/{id(self)}", qos=1)[1])

        def acked() -> bool:
            with self._lock:
                return mids[0] in self._acked

        barrier(send, acked, timeout_s, f"the SUBACK of a sync on {self.topic!r}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
