"""Retiring an agent that is gone for good (its Pi replaced or taken away): its retained
status is cleared, an empty retained message on `footfall/v1/{site}/agent/{agent}/status`
(docs/spec.md §2). Everyone reading that topic acts on it: the collector records an
`agent_status` point with reason `retired` and stops watching the agent for silence,
footfall-web takes it off the board, footfall-alerts forgets it and resolves its alerts.
An agent that connects again publishes its status again and is back.

`footfall-collector retire-agent` uses this with the collector's broker account; the
board's retire action does the same through footfall-web's own connection."""

from __future__ import annotations

import queue
import secrets
import threading
from typing import Any

from pydantic import ValidationError

from footfall_contract.messages import Status
from footfall_contract.topics import agent_subscription, agent_topic
from footfall_runtime.config import MqttSettings
from footfall_runtime.mqttclient import make_client

RETAINED_WAIT_S = 1.0
"""How long after the subscription is granted a retained status may take to arrive (the
broker sends it at once; this is slack for a loaded machine)."""

STATUS_ACL = agent_subscription("+", "status")


class RetireError(Exception):
    """Why an agent was not retired, said for the operator."""


def not_known(site: str, agent: str) -> RetireError:
    return RetireError(
        f"agent {agent!r} of site {site!r} has no status on the broker: it never connected, "
        "or it is retired already (nothing to do)"
    )


def still_online(site: str, agent: str, since: str) -> RetireError:
    return RetireError(
        f"agent {agent!r} of site {site!r} is online (status since {since}): retire only an "
        "agent that is gone (its Pi switched off or replaced); force it, and it returns as "
        "soon as it connects again"
    )


def not_authorized(username: str | None, detail: str) -> RetireError:
    return RetireError(
        f"the broker did not take the retirement ({detail}): the account "
        f"{username or '(anonymous)'} needs write access to {STATUS_ACL} (deploy/mosquitto/acl)"
    )


def retire_agent(
    settings: MqttSettings, site: str, agent: str, *, force: bool = False, timeout_s: float = 10.0
) -> Status | None:
    """Clear the agent's retained status; the status it had (None when it was not a
    valid status). RetireError when the broker cannot be used, the agent has no status,
    is online (unless `force`), or the account may not clear it."""
    topic = agent_topic(site, agent, "status")
    client = make_client(settings, f"footfall-retire-{secrets.token_hex(4)}", v5=True)
    connected = threading.Event()
    subscribed = threading.Event()
    published = threading.Event()
    result: dict[str, Any] = {}
    payloads: queue.Queue[bytes] = queue.Queue()

    def on_connect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        result["connect"] = rc
        connected.set()

    def on_subscribe(_c: Any, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        result["subscribe"] = codes
        subscribed.set()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        payloads.put(bytes(msg.payload))

    def on_publish(_c: Any, _u: Any, _mid: int, rc: Any, _p: Any) -> None:
        result["publish"] = rc
        published.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_publish = on_publish
    where = f"broker {settings.host}:{settings.port}"
    try:
        client.connect(settings.host, settings.port, keepalive=30)
    except (OSError, ValueError) as exc:
        raise RetireError(f"{where} is not reachable ({exc})") from None
    client.loop_start()
    try:
        if not connected.wait(timeout_s):
            raise RetireError(f"{where}: no answer to CONNECT within {timeout_s:g} s")
        if result["connect"].is_failure:
            raise RetireError(f"{where} refused the login: {result['connect']}")
        client.subscribe(topic, qos=1)
        if not subscribed.wait(timeout_s) or any(c.is_failure for c in result["subscribe"]):
            raise RetireError(f"{where} refused to let {settings.username} read {topic}")
        try:
            current = payloads.get(timeout=RETAINED_WAIT_S)
        except queue.Empty:
            raise not_known(site, agent) from None
        if not current:
            raise not_known(site, agent)
        try:
            status: Status | None = Status.model_validate_json(current)
        except ValidationError:
            status = None  # not a valid status: nothing on the board to keep it
        if status is not None and status.state == "online" and not force:
            raise still_online(site, agent, status.ts)
        client.publish(topic, b"", qos=1, retain=True)
        if not published.wait(timeout_s):
            raise RetireError(f"{where}: no acknowledgement within {timeout_s:g} s")
        if result["publish"].is_failure:
            raise not_authorized(settings.username, str(result["publish"]))
        # The clearing comes back to this subscription once the broker has applied it.
        try:
            while payloads.get(timeout=timeout_s):
                pass
        except queue.Empty:
            raise not_authorized(settings.username, "the status is still there") from None
        return status
    finally:
        client.disconnect()
        client.loop_stop()
