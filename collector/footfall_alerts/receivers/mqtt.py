"""The retained `footfall/v1/{site}/alert/{id}` topic: the latest transition of every
alert, as the contract's `Alert` model, for the live board and any other system."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as mqtt

from footfall_contract.messages import Alert
from footfall_contract.topics import alert_topic

from . import Refused, Retryable


def message(site: str, alert: Mapping[str, Any]) -> tuple[str, bytes]:
    """Topic and payload, checked against the contract model (a bug here is refused, not
    published)."""
    try:
        model = Alert.model_validate(alert)
    except ValueError as exc:
        raise Refused(f"alert payload does not match the contract: {exc}") from None
    return alert_topic(site, model.id), model.model_dump_json().encode()


def publish(client: mqtt.Client, site: str, alert: Mapping[str, Any], timeout_s: float) -> None:
    topic, payload = message(site, alert)
    if not client.is_connected():
        raise Retryable("not connected to the MQTT broker")
    info = client.publish(topic, payload, qos=1, retain=True)
    try:
        info.wait_for_publish(timeout_s)
    except (RuntimeError, ValueError) as exc:
        raise Retryable(f"publish failed: {exc}") from None
    if not info.is_published():
        raise Retryable("no PUBACK from the broker")
