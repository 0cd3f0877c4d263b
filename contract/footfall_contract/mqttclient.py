"""One way to build a paho-mqtt 2.x client from `MqttSettings` (credentials, TLS,
back-off), used by the edge agent and the collector alike. Needs the `edge` or
`collector` extra (paho-mqtt)."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .config import MqttSettings


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    v5: bool = False,
    clean_session: bool = True,
    manual_ack: bool = False,
) -> mqtt.Client:
    client = mqtt.Client(
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
