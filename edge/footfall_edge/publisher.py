"""MQTT side of the agent (paho-mqtt 2.x): drains the outbox in seq order, QoS 1, and
deletes events only on PUBACK. Status is retained and doubles as the Last Will. A message
holds at most `batch_max` events and never more than the contract's MAX_PAYLOAD_BYTES.

paho re-sends unacknowledged QoS 1 messages itself after a reconnect, so in-flight
messages are kept across reconnects; after a restart everything still in the outbox
goes out again and the collector does not count it twice: it keys an event by
(agent, ts + seq mod 10^6 ns), its point time tagged with the agent (docs/spec.md §2).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from itertools import groupby
from typing import Any

import paho.mqtt.client as mqtt

from footfall_contract import __version__ as SOFTWARE_VERSION
from footfall_contract.limits import MAX_PAYLOAD_BYTES
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import agent_topic
from footfall_runtime.config import MqttSettings
from footfall_runtime.mqttclient import MqttLink, make_client

from .outbox import Outbox, StoredEvent

log = logging.getLogger(__name__)

STUCK_INFLIGHT_S = 120.0  # connected yet unacknowledged this long: send from the outbox again


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Publisher:
    def __init__(
        self,
        mqtt_settings: MqttSettings,
        site: str,
        agent: str,
        outbox: Outbox,
        batch_max: int = 500,
        inflight_max: int = 10,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        health: Callable[[], dict[str, Any]] | None = None,
        health_interval_s: float = 30.0,
    ) -> None:
        self.settings = mqtt_settings
        self.site, self.agent = site, agent
        self.outbox = outbox
        self.batch_max = batch_max
        self.max_payload_bytes = max_payload_bytes
        self.inflight_max = inflight_max
        self._health = health
        self._health_interval = health_interval_s
        self._cond = threading.Condition()
        self._inflight: dict[int, tuple[float, list[int]]] = {}
        self._early_acks: dict[int, float] = {}
        self._cursor = -1  # highest seq handed to paho
        self._connected = False
        self._running = False
        self._thread: threading.Thread | None = None
        self.published_messages = 0
        self.ready_to_send: Callable[[], bool] = lambda: True
        self.client = make_client(mqtt_settings, f"footfall-{site}-{agent}")
        self.client.will_set(self._topic("status"), self._status("offline"), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.link = MqttLink(
            self.client,
            mqtt_settings,
            log,
            lambda: f"Events wait in the outbox ({self.outbox.depth} now)",
        )
        self.client.max_inflight_messages_set(max(20, inflight_max))

    def _topic(self, kind: Any) -> str:
        return agent_topic(self.site, self.agent, kind)

    def _status(self, state: str) -> str:
        return json.dumps(
            {
                "state": state,
                "epoch": self.outbox.epoch,
                "ts": format_ts(now_ms()),
                "sw": SOFTWARE_VERSION,
            },
            separators=(",", ":"),
        )

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        self.client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Flush what can be flushed, say offline (retained) and disconnect cleanly."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while (
                self._connected
                and (self._inflight or self.outbox.depth)
                and (time.monotonic() < deadline)
            ):
                self._cond.notify_all()
                self._cond.wait(0.05)
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._connected:
            info = self.client.publish(self._topic("status"), self._status("offline"), 1, True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=max(0.5, deadline - time.monotonic()))
        self.client.disconnect()
        self.client.loop_stop()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    # -- paho callbacks (network thread) -----------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self.link.refused(rc)
            return
        log.info("connected to %s:%s", self.settings.host, self.settings.port)
        self.link.connected()
        client.publish(self._topic("status"), self._status("online"), qos=1, retain=True)
        with self._cond:
            self._connected = True
            # paho sends what was in flight again now: its clock starts over.
            now = time.monotonic()
            self._inflight = {mid: (now, seqs) for mid, (_, seqs) in self._inflight.items()}
            self._cond.notify_all()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        with self._cond:
            stopping = not self._running
            self._connected = False
        self.link.disconnected(rc, stopping)

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        # paho calls this holding its own lock, so it must never wait for a thread that
        # is inside client.publish(): an ack that beats `_publish_batch` is parked.
        with self._cond:
            entry = self._inflight.pop(mid, None)
            if entry is None:
                self._early_acks[mid] = time.monotonic()
            self._cond.notify_all()
        if entry is not None:
            try:
                self.outbox.ack(entry[1])
            except Exception:  # an exception here would end paho's network thread
                log.exception("could not delete acknowledged events; they will be sent again")

    # -- sender thread ---------------------------------------------------------------

    def _run(self) -> None:
        next_health = time.monotonic() + min(5.0, self._health_interval)
        while True:
            with self._cond:
                if not self._running:
                    return
                self._cond.wait(timeout=0.5)
                connected = self._connected
                room = self.inflight_max - len(self._inflight)
                now = time.monotonic()
                stuck = connected and any(
                    now - sent > STUCK_INFLIGHT_S for sent, _ in self._inflight.values()
                )
                for mid, at in list(self._early_acks.items()):
                    if now - at > 10.0:  # acks of messages not tracked (status, health)
                        del self._early_acks[mid]
            if not connected:
                continue
            try:
                if stuck:
                    self._resend_all()
                if room > 0 and self.ready_to_send():
                    self._send(room)
                if self._health and time.monotonic() >= next_health:
                    next_health = time.monotonic() + self._health_interval
                    payload = json.dumps(self._health(), separators=(",", ":"))
                    self.client.publish(self._topic("health"), payload, qos=0)
            except Exception:
                log.exception("publisher error; retrying")
                time.sleep(1)

    def _resend_all(self) -> None:
        log.warning("acknowledgements overdue; sending the outbox again from the start")
        with self._cond:
            self._inflight.clear()
            self._cursor = -1

    def _send(self, room: int) -> None:
        events = self.outbox.pending(self._cursor, self.batch_max * room)
        if not events:
            return
        if any(e.provisional for e in events):
            events = self.outbox.seal(events)  # their ts is fixed once they go out
        own = self.outbox.epoch
        for (kind, epoch), group in groupby(events, key=lambda e: (e.kind, e.origin_epoch or own)):
            for batch, payload in self.batches(epoch, list(group)):
                if room <= 0:
                    return
                self._publish_batch(kind, batch, payload)
                room -= 1

    def batches(
        self, epoch: str, events: list[StoredEvent]
    ) -> Iterator[tuple[list[StoredEvent], str]]:
        """Messages of at most `batch_max` events and `max_payload_bytes` bytes: the
        collector refuses a bigger message whole. The payload is what
        `json.dumps({"epoch": ..., "events": [...]})` gives, built once; JSON is ASCII
        here (`ensure_ascii`), so characters are bytes."""
        head = '{"epoch":' + json.dumps(epoch) + ',"events":['
        room = self.max_payload_bytes - len(head) - len("]}")
        batch: list[StoredEvent] = []
        parts: list[str] = []
        size = 0
        for e in events:
            part = json.dumps(e.wire(), separators=(",", ":"))
            if batch and (len(batch) >= self.batch_max or size + 1 + len(part) > room):
                yield batch, head + ",".join(parts) + "]}"
                batch, parts, size = [], [], 0
            # One event alone always fits: its ids are bounded (docs/spec.md §2).
            size += len(part) + (1 if parts else 0)
            batch.append(e)
            parts.append(part)
        if batch:
            yield batch, head + ",".join(parts) + "]}"

    def _publish_batch(self, kind: str, batch: list[StoredEvent], payload: str) -> None:
        seqs = [e.seq for e in batch]
        info = self.client.publish(self._topic(kind), payload, qos=1)
        with self._cond:
            self._cursor = batch[-1].seq
            self.published_messages += 1
            now = time.monotonic()
            acked = self._early_acks.pop(info.mid, None) is not None
            if not acked:
                self._inflight[info.mid] = (now, seqs)
        if acked:
            self.outbox.ack(seqs)
