"""The board's retire action: clear an agent's retained status over footfall-web's own
MQTT connection, as `footfall-collector retire-agent` does with the collector's account
(footfall_collector.retire, docs/spec.md §2), and wait until the broker sends the clearing
back, which is what shows the broker took it (MQTT 3.1.1 would drop a denied message
silently)."""

from __future__ import annotations

import threading

from paho.mqtt.enums import MQTTErrorCode

from footfall_collector.retire import not_authorized, not_known, still_online
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import agent_topic

from .actions import ActionError
from .live import AgentState, Change, LiveState


def retire(
    live: LiveState,
    site: str,
    agent: str,
    *,
    force: bool,
    username: str | None,
    timeout_s: float = 10.0,
) -> AgentState:
    """The agent's state before it was retired; ActionError 404 (no status), 409 (online,
    not forced), 503 (no broker) or 502 (the broker did not take it)."""
    state = live.agent(site, agent)
    if state is None:
        raise ActionError(404, str(not_known(site, agent)))
    if state.online and not force:
        raise ActionError(409, str(still_online(site, agent, format_ts(state.ts_ms))))
    done = threading.Event()

    def listener(change: Change) -> None:
        removed = change.data.get("removed")
        if removed and (change.kind, change.site, change.key) == ("agent", site, agent):
            done.set()

    live.add_listener(listener)
    try:
        info = live.client.publish(agent_topic(site, agent, "status"), b"", qos=1, retain=True)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise ActionError(503, "not connected to the MQTT broker: try again in a moment")
        if not done.wait(timeout_s):
            raise ActionError(502, str(not_authorized(username, "the status is still there")))
    finally:
        live.remove_listener(listener)
    return state
