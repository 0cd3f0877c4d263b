"""One way to build a paho-mqtt 2.x client from `MqttSettings` (credentials, TLS,
back-off), used by the edge agent and the collector alike. Needs the `edge` or
`collector` extra (paho-mqtt)."""

from __future__ import annotations

import ssl
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .config import MqttSettings


class _ReadBuffered:
    """A socket whose reads come from a 64 KiB buffer. paho reads every packet with
    three `recv` calls (type byte, length byte, rest), one packet per `select`; with a
    stream of small messages those system calls cost more than handling the messages.
    `pending()` is paho's own hook (meant for TLS) for bytes it cannot see with
    `select`, so buffered packets are still read without waiting."""

    _SIZE = 65536

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        if self._pos >= len(self._buf):
            data: bytes = self._sock.recv(max(size, self._SIZE))
            if len(data) <= size:
                return data
            self._buf, self._pos = data, 0
        end = self._pos + size
        chunk = self._buf[self._pos : end]
        self._pos = min(end, len(self._buf))
        return chunk

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buf) - self._pos + inner

    def send(self, buffer: bytes | bytearray) -> int:
        sent: int = self._sock.send(buffer)
        return sent

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        fd: int = self._sock.fileno()
        return fd

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def __getattr__(self, name: str) -> Any:  # anything else paho or TLS may ask for
        return getattr(self._sock, name)


class _BufferedClient(mqtt.Client):
    """paho's client with buffered reads, for receiving many small messages."""

    _BURST = 100
    """Packets read from the buffer in one go, before paho's loop gets to send acks."""

    def _create_socket(self) -> Any:
        return _ReadBuffered(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Every buffered packet (up to `_BURST`), not one per `select` as paho does."""
        rc = super().loop_read(max_packets)
        for _ in range(self._BURST):
            sock = self.socket()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or not isinstance(sock, _ReadBuffered):
                break
            if not sock.pending():
                break
            rc = super().loop_read(max_packets)
        return rc


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    v5: bool = False,
    clean_session: bool = True,
    manual_ack: bool = False,
    buffered_reads: bool = False,
) -> mqtt.Client:
    """`buffered_reads` for a client that receives a lot (the collector): fewer
    system calls a message, the same packets."""
    cls = _BufferedClient if buffered_reads else mqtt.Client
    client = cls(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=None if v5 else clean_session,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        manual_ack=manual_ack,
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set(
            ca_certs=str(settings.ca_certs) if settings.ca_certs else None,
            certfile=str(settings.certfile) if settings.certfile else None,
            keyfile=str(settings.keyfile) if settings.keyfile else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(settings.insecure)
    client.reconnect_delay_set(
        max(1, round(settings.reconnect_min_s)), max(1, round(settings.reconnect_max_s))
    )
    return client


def start_persistent_session(
    client: mqtt.Client,
    settings: MqttSettings,
    *,
    session_expiry_s: int,
    receive_maximum: int,
    max_packet_bytes: int | None = None,
) -> None:
    """Connect (in the background, reconnecting) with an MQTT v5 session the broker keeps
    while we are away (clean start off, session expiry): QoS 1 messages wait for us.
    Receive Maximum bounds how many unacknowledged messages the broker sends at once,
    which is what bounds our memory while we cannot write them anywhere."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    props.ReceiveMaximum = receive_maximum
    if max_packet_bytes is not None:  # the broker then never sends us more (MQTT v5)
        props.MaximumPacketSize = max_packet_bytes
    client.connect_async(
        settings.host, settings.port, settings.keepalive_s, clean_start=False, properties=props
    )
    client.loop_start()
