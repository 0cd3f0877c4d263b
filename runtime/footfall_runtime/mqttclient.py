"""One way to build a paho-mqtt 2.x client from `MqttSettings` (credentials, TLS,
back-off), used by the edge agent and the collector alike. Needs the `edge` or
`collector` extra (paho-mqtt)."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .config import MqttSettings
from .linklog import LinkLog


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


class _Client(mqtt.Client):
    """paho's client, remembering why the last connection attempt failed: paho's own
    `on_connect_fail` is told only that it failed, and `MqttLink` logs the reason."""

    connect_error: OSError | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            rc = super().reconnect()
        except OSError as exc:
            self.connect_error = exc
            raise
        self.connect_error = None
        return rc


class _BufferedClient(_Client):
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
    cls = _BufferedClient if buffered_reads else _Client
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


# -- telling the operator what is wrong ----------------------------------------------


def broker_target(settings: MqttSettings) -> str:
    """`host:port` and whether TLS is on, as a log line names the broker."""
    return f"{settings.host}:{settings.port} ({'TLS' if settings.tls else 'no TLS'})"


_WHERE = "mqtt.host and mqtt.port (FOOTFALL_MQTT__HOST, FOOTFALL_MQTT__PORT)"


def explain_connect_error(exc: BaseException, settings: MqttSettings) -> tuple[str, str]:
    """(short reason, what to check) for a connection attempt that failed before the
    broker answered: nothing listening, no such host, no route, or TLS."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or str(exc)
        return (
            f"the broker's TLS certificate is not trusted ({detail})",
            "mqtt.ca_certs (the CA that signed the broker's certificate) and that mqtt.host "
            "is a name in the certificate (mqtt.insecure = true for a broker reached by IP)",
        )
    tls_port = (
        "that mqtt.port is the broker's TLS port (usually 8883; a port without TLS, "
        "usually 1883, needs mqtt.tls = false)"
    )
    if settings.tls and isinstance(
        exc, ConnectionResetError | ConnectionAbortedError | ssl.SSLEOFError
    ):
        # A broker without TLS on that port reads the TLS greeting as a bad packet.
        return ("TLS handshake failed (the broker closed the connection)", tls_port)
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if not settings.tls:
            return (f"TLS error ({reason})", "mqtt.tls")
        return (
            f"TLS handshake failed ({reason})",
            f"{tls_port}, mqtt.ca_certs, mqtt.certfile and mqtt.keyfile",
        )
    if isinstance(exc, ConnectionRefusedError):
        return (
            "connection refused (nothing listens on that port)",
            f"{_WHERE}, and that the broker (mosquitto) runs there",
        )
    if isinstance(exc, socket.gaierror):
        return (f"host name {settings.host!r} not found", "mqtt.host and the DNS")
    if isinstance(exc, TimeoutError):
        return ("no answer (timed out)", f"{_WHERE}, the network and any firewall between")
    if isinstance(exc, OSError) and exc.strerror:
        return (exc.strerror.lower(), f"{_WHERE} and the network")
    return (str(exc) or type(exc).__name__, f"{_WHERE} and the network")


def explain_refusal(rc: Any, settings: MqttSettings) -> tuple[str, str]:
    """(reason, what to check) for a CONNACK that refuses us."""
    text = str(rc)
    if "user name or password" in text.lower() or "authori" in text.lower():
        who = (
            f"mqtt.username ({settings.username!r})"
            if settings.username
            else "mqtt.username (none is set)"
        )
        return (
            f"the broker refused the login ({text})",
            f"{who}, mqtt.password (FOOTFALL_MQTT__PASSWORD) and the broker's password "
            "file and ACL",
        )
    return (f"the broker refused the connection ({text})", "the broker's log")


class MqttLink:
    """Logs what happens to one MQTT connection, once per change: the first failure to
    connect (with the reason paho keeps to itself and what to check), a refusal, a
    connection that closes before the broker answers (often TLS on one side only), a
    lost connection, and the recovery. The service calls `connected`, `refused` and
    `disconnected` from its own paho callbacks; connection errors arrive by themselves
    (`on_connect_fail`)."""

    def __init__(
        self,
        client: mqtt.Client,
        settings: MqttSettings,
        logger: logging.Logger,
        meanwhile: str | Callable[[], str] = "",
    ) -> None:
        """`meanwhile`: what happens to the service's data while the broker is away
        ("events wait in the outbox"); appended to each failure."""
        self.settings = settings
        self.target = broker_target(settings)
        self.meanwhile = meanwhile
        self._up = False
        self._refused = False
        self.log = LinkLog(logger, f"MQTT broker {self.target} reachable again")
        client.on_connect_fail = self._connect_failed

    def _failed(self, key: str, reason: str, check: str) -> None:
        retry = (
            f"Retrying every {self.settings.reconnect_min_s:g} to "
            f"{self.settings.reconnect_max_s:g} s"
        )
        meanwhile = self.meanwhile() if callable(self.meanwhile) else self.meanwhile
        tail = f"; {meanwhile[:1].lower()}{meanwhile[1:]}" if meanwhile else ""
        self.log.failed(key, f"MQTT broker {self.target}: {reason}; check {check}. {retry}{tail}")

    def _connect_failed(self, client: mqtt.Client, _userdata: Any) -> None:
        exc = getattr(client, "connect_error", None)
        if exc is None:
            self._failed("connect failed", "cannot connect", f"{_WHERE} and the network")
            return
        reason, check = explain_connect_error(exc, self.settings)
        self._failed(reason, reason, check)

    def connected(self) -> None:
        self._up = True
        self.log.ok()

    def refused(self, rc: Any) -> None:
        self._refused = True
        reason, check = explain_refusal(rc, self.settings)
        self._failed(reason, reason, check)

    def disconnected(self, rc: Any, stopping: bool = False) -> None:
        was_up, self._up = self._up, False
        if stopping or not rc.is_failure:
            return
        if was_up:
            reason = f"MQTT connection lost ({rc})"
            self._failed(reason, f"{reason}; reconnecting", "the broker and the network")
            return
        if self._refused:
            self._refused = False
            return  # the broker closes the connection it refused: said already
        reason = f"the connection closed before the broker answered ({rc})"
        check = (
            "that mqtt.port is the broker's MQTT port and mqtt.tls matches it (a TLS port "
            "closes a connection without TLS)"
            if not self.settings.tls
            else f"{_WHERE} and the broker's log"
        )
        self._failed(reason, reason, check)
