"""Broker accounts for the deployment tests: a real Mosquitto started from the repository's
production broker configuration (deploy/mosquitto), and MQTT clients that log in.

`RepoBroker` is `footfall_sim.localservices.Mosquitto` (its own loopback listener, data
and log lines first) with the production config appended: the listeners move to free
loopback ports and every absolute path is mapped to the repository or a temporary folder;
a path the mapping does not know fails the test, so a new path in the config cannot go
unnoticed."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from footfall_sim.localservices import Mosquitto, find_binary, free_port
from tests.support.mqtt import Recorder

REPO = Path(__file__).resolve().parents[2]
MOSQUITTO_DIR = REPO / "deploy" / "mosquitto"

Variant = Literal["container", "distro"]

# Lines `Mosquitto` already writes: Mosquitto refuses a second value for most of them.
_SET_BY_HELPER = {"persistence_location", "log_dest", "user", "pid_file"}
_TLS_KEYS = {"certfile", "keyfile", "cafile", "capath", "tls_version", "ciphers"}


def add_users(passwd: Path, users: Mapping[str, str]) -> None:
    """Add (or update) accounts in a Mosquitto password file, as an operator would."""
    tool = find_binary("mosquitto_passwd")
    passwd.touch(mode=0o600, exist_ok=True)
    for name, password in users.items():
        subprocess.run(
            [tool, "-b", str(passwd), name, password], check=True, capture_output=True, timeout=30
        )


def _map_path(value: str, paths: Mapping[str, Path]) -> Path:
    for prefix in sorted(paths, key=len, reverse=True):
        if value == prefix.rstrip("/"):
            return paths[prefix]
        if prefix.endswith("/") and value.startswith(prefix):
            return paths[prefix] / value[len(prefix) :]
    raise AssertionError(f"the broker config names {value!r}: map it in tests/support/broker_users")


def adapt_config(text: str, paths: Mapping[str, Path], tls_port: int | None) -> str:
    """The production config for a test broker: `listener 1883` goes (`Mosquitto` puts its
    own loopback listener first, which then takes the plain listener's settings),
    `listener 8883` moves to `tls_port` on loopback (or goes, with its TLS lines, when
    `tls_port` is None), lines the helper writes itself go, and absolute paths are mapped
    (a prefix ending in "/" maps a folder)."""
    out: list[str] = []
    in_tls = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        value = value.strip()
        if key == "listener":
            port = value.split()[0]
            in_tls = port == "8883"
            if port == "1883":
                continue
            if port != "8883":
                raise AssertionError(f"unexpected listener in the broker config: {line!r}")
            if tls_port is not None:
                out.append(f"listener {tls_port} 127.0.0.1")
            continue
        if key in _SET_BY_HELPER or (in_tls and tls_port is None and key in _TLS_KEYS):
            continue
        if value.startswith("/"):
            value = str(_map_path(value, paths))
        out.append(f"{key} {value}")
    return "\n".join(out) + "\n"


def repo_config(variant: Variant, passwd: Path, tls_dir: Path | None, tls_port: int | None) -> str:
    """deploy/mosquitto as the compose file mounts it ("container"), or as
    docs/deployment.md installs it into a distro Mosquitto ("distro")."""
    tls = tls_dir or Path("/nonexistent")
    if variant == "container":
        text = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
        paths = {
            "/mosquitto/config/": MOSQUITTO_DIR,  # ../mosquitto:/mosquitto/config:ro
            "/mosquitto/secrets/passwd": passwd,  # ./secrets/mosquitto:/mosquitto/secrets
            "/mosquitto/secrets/tls/": tls,
        }
        return adapt_config(text, paths, tls_port)
    # The package's mosquitto.conf ends with `include_dir /etc/mosquitto/conf.d`, where
    # footfall-listeners.conf and footfall.conf are installed.
    text = (MOSQUITTO_DIR / "debian" / "footfall-listeners.conf").read_text()
    paths = {
        "/etc/mosquitto/passwd": passwd,
        "/etc/mosquitto/footfall.acl": MOSQUITTO_DIR / "acl",
        "/etc/mosquitto/certs/": tls,
    }
    return adapt_config(text, paths, tls_port) + f"include_dir {MOSQUITTO_DIR / 'conf.d'}\n"


class RepoBroker(Mosquitto):
    """A real Mosquitto running the repository's broker config with `passwd`; with
    `tls_dir` (server.crt, server.key, ca.crt) also its TLS listener on `tls_port`."""

    def __init__(
        self,
        workdir: Path,
        passwd: Path,
        tls_dir: Path | None = None,
        variant: Variant = "container",
    ) -> None:
        super().__init__(workdir, anonymous=False)
        self.tls_port: int | None = free_port() if tls_dir else None
        self.extra_config = repo_config(variant, passwd, tls_dir, self.tls_port)

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads the password file and the ACL again."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


class UserRecorder(Recorder):
    """`Recorder` that logs in: its client gets the credentials as it is created, before
    `Recorder.__init__` connects."""

    def __init__(self, port: int, username: str, password: str, topic: str = "#") -> None:
        self._credentials = (username, password)
        super().__init__(port, topic)

    @property
    def client(self) -> mqtt.Client:
        return self._client

    @client.setter
    def client(self, value: mqtt.Client) -> None:
        value.username_pw_set(*self._credentials)
        self._client = value

    def topics(self) -> list[str]:
        with self._lock:
            return [m.topic for m in self.messages]


class User:
    """One MQTT connection with (optional) credentials, TLS and Last Will. `connack` is the
    broker's answer; `publish` waits for the PUBACK and returns its reason code (always
    success for MQTT 3.1.1, where Mosquitto drops denied messages silently; "Not
    authorized" for a denied MQTT v5 publish)."""

    def __init__(
        self,
        port: int,
        username: str | None = None,
        password: str | None = None,
        *,
        v5: bool = False,
        client_id: str = "",
        ca_certs: Path | None = None,
        host: str = "127.0.0.1",
        will: tuple[str, str] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.timeout_s = timeout_s
        self.connack: ReasonCode | None = None
        self._connected = threading.Event()
        self._pubacks: dict[int, ReasonCode] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_certs is not None:
            self.client.tls_set(ca_certs=str(ca_certs))
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._connected.wait(timeout_s):
            self.close()
            raise TimeoutError("no CONNACK from the broker")

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if self.connack is None:
            self.connack = rc
        if rc.is_failure:
            client.disconnect()  # no automatic reconnection attempts
        self._connected.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        with self._lock:
            self._pubacks[mid] = rc

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(
        self, topic: str, payload: str = "{}", *, qos: int = 1, retain: bool = False
    ) -> ReasonCode | None:
        assert self.accepted, f"not connected: {self.connack}"
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(self.timeout_s)
        assert info.is_published(), f"no PUBACK for {topic}"
        with self._lock:
            return self._pubacks.get(info.mid)

    def die(self) -> None:
        """Vanish without DISCONNECT (a power cut): the broker publishes the Last Will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
