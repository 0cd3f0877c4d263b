"""The acknowledging consumer on a real Mosquitto: a message stays with the broker until
it is acknowledged on the connection that delivered it, and an acknowledgement of an
older connection is dropped, not sent where its id names another message."""

from __future__ import annotations

import logging
import socket
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from footfall_runtime.config import MqttSettings
from footfall_runtime.consumer import AckingConsumer
from footfall_sim.localservices import Mosquitto
from tests.support.waiting import eventually

TOPIC = "footfall-test/consumer"


class Owner:
    """What a service does with the consumer: keeps each message with its generation."""

    def __init__(self, port: int, fail_on: bytes = b"") -> None:
        self.lock = threading.Lock()
        self.got: list[tuple[int, bytes, int, int]] = []  # (generation, payload, mid, qos)
        self.fail_on = fail_on
        self.states: list[bool] = []
        self.stopping = threading.Event()
        self.consumer = AckingConsumer(
            MqttSettings(host="127.0.0.1", port=port),
            "footfall-test-consumer",
            [(f"{TOPIC}/#", 1)],
            self.handle,
            logger=logging.getLogger("test.consumer"),
            meanwhile="Nothing happens meanwhile",
            stopping=self.stopping,
            session_expiry_s=300,
            receive_maximum=10,
            on_connection=self.states.append,
        )

    def handle(self, generation: int, msg: mqtt.MQTTMessage) -> None:
        if msg.payload == self.fail_on:
            raise RuntimeError("the owner could not handle it")
        with self.lock:
            self.got.append((generation, bytes(msg.payload), msg.mid, msg.qos))

    def find(self, payload: bytes) -> list[tuple[int, bytes, int, int]]:
        with self.lock:
            return [g for g in self.got if g[1] == payload]

    def drop_connection(self) -> int:
        """Once the acks queued are sent, cut the TCP connection under paho (no
        DISCONNECT: the session stays); wait for the reconnect, return its generation."""
        client = self.consumer.client
        eventually(lambda: not client.want_write(), 10, "the acks sent")
        before = self.consumer.generation
        sock = client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        eventually(
            lambda: self.consumer.connected and self.consumer.generation >= before + 2,
            20,
            "the reconnect",
        )
        return self.consumer.generation

    def close(self) -> None:
        self.stopping.set()
        self.consumer.stop()


def publish(port: int, *payloads: bytes, qos: int = 1) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="footfall-test-publisher")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        for p in payloads:
            pub.publish(f"{TOPIC}/x", p, qos=qos).wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()


def test_only_acks_of_the_current_connection_reach_the_broker(mosquitto: Mosquitto) -> None:
    owner = Owner(mosquitto.port)
    try:
        owner.consumer.start()
        assert owner.consumer.ready.wait(10)
        first = owner.consumer.generation
        publish(mosquitto.port, b"a", b"b")
        eventually(lambda: owner.find(b"a") and owner.find(b"b"), 20, "both messages")
        gen_a, _, mid_a, qos_a = owner.find(b"a")[0]
        gen_b, _, mid_b, qos_b = owner.find(b"b")[0]
        assert gen_a == gen_b == first
        assert owner.consumer.ack(gen_a, mid_a, qos_a)  # "a" is done, "b" is not

        second = owner.drop_connection()
        eventually(lambda: owner.states[:3] == [True, False, True], 10, "the gauge's states")
        # the unacknowledged "b" comes again, on the new connection; "a" does not
        eventually(lambda: len(owner.find(b"b")) == 2, 20, "b delivered again")
        again = owner.find(b"b")[1]
        assert again[0] == second
        assert not owner.consumer.ack(gen_b, mid_b, qos_b), "an old connection's ack"
        assert owner.consumer.ack_all([(again[0], again[2], again[3])]) == 1

        owner.drop_connection()
        publish(mosquitto.port, b"marker")  # after whatever the session held
        eventually(lambda: owner.find(b"marker"), 20, "the marker")
        assert len(owner.find(b"a")) == 1
        assert len(owner.find(b"b")) == 2
    finally:
        owner.close()


def test_a_message_the_owner_fails_on_is_logged_and_left_unacknowledged(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="test.consumer")
    owner = Owner(mosquitto.port, fail_on=b"bad")
    try:
        owner.consumer.start()
        assert owner.consumer.ready.wait(10)
        assert "connected to MQTT" in caplog.text
        publish(mosquitto.port, b"bad", b"good")
        eventually(lambda: owner.find(b"good"), 20, "the good message")
        assert f"failed to handle a message on {TOPIC}/x" in caplog.text
        owner.fail_on = b""
        owner.drop_connection()
        eventually(lambda: owner.find(b"bad"), 20, "the failed message delivered again")
    finally:
        owner.close()
