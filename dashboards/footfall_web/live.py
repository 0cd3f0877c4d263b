"""Live state from MQTT: retained zone occupancy (the collector), agent status (the
agents' retained status and Last Will) and alerts (footfall-alerts), for several sites.

paho's network thread updates the state under a lock and hands each change to the
listeners; the web app turns that into server-sent events."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from footfall_contract.config import MqttSettings
from footfall_contract.messages import Alert, Occupancy, Status
from footfall_contract.mqttclient import make_client
from footfall_contract.site import Site
from footfall_contract.timefmt import format_ts, parse_ts
from footfall_contract.topics import PREFIX, parse_zone_occupancy_topic

from .levels import Reading

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentState:
    online: bool
    ts_ms: int
    sw: str


@dataclass(frozen=True)
class Change:
    """One change of live state: kind "occupancy", "agent" or "alert"."""

    kind: str
    site: str
    key: str
    data: dict[str, Any]


Listener = Callable[[Change], None]


def occupancy_json(site: Site, zone: str, reading: Reading | None) -> dict[str, Any]:
    z = site.zone(zone)
    return {
        "site": site.site,
        "zone": zone,
        "name": z.name,
        "parent": z.parent,
        "count": None if reading is None else reading.count,
        "capacity": z.capacity if reading is None else reading.capacity,
        "ratio": None if reading is None else reading.ratio,
        "ts": None if reading is None else format_ts(reading.ts_ms),
    }


def agent_json(site: str, agent: str, state: AgentState) -> dict[str, Any]:
    return {
        "site": site,
        "agent": agent,
        "online": state.online,
        "ts": format_ts(state.ts_ms),
        "sw": state.sw,
    }


def alert_json(alert: Alert) -> dict[str, Any]:
    return alert.model_dump()


class LiveState:
    def __init__(
        self, settings: MqttSettings, sites: Iterable[Site], client_id: str | None
    ) -> None:
        self.sites = {s.site: s for s in sites}
        self._lock = threading.Lock()
        self._occupancy: dict[tuple[str, str], Reading] = {}
        self._agents: dict[tuple[str, str], AgentState] = {}
        self._alerts: dict[tuple[str, str], Alert] = {}
        self._listeners: list[Listener] = []
        self.connected = threading.Event()
        self.client = make_client(
            settings, client_id or f"footfall-web-{secrets.token_hex(4)}", clean_session=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._settings = settings

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self.client.connect_async(
            self._settings.host, self._settings.port, self._settings.keepalive_s
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.warning("MQTT connection refused: %s", rc)
            return
        subs = []
        for site in self.sites:
            subs += [
                (f"{PREFIX}/{site}/zone/+/occupancy", 1),
                (f"{PREFIX}/{site}/agent/+/status", 1),
                (f"{PREFIX}/{site}/alert/+", 1),
            ]
        client.subscribe(subs)
        self.connected.set()
        log.info("MQTT connected, following %d site(s)", len(self.sites))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connected.clear()
        if rc.is_failure:
            log.warning("MQTT disconnected (%s); reconnecting", rc)

    # -- listeners -------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    # -- messages --------------------------------------------------------------------

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            change = self.apply(msg.topic, bytes(msg.payload))
        except Exception:  # a bad message must not stop the network thread
            log.exception("cannot handle %s", msg.topic)
            return
        if change is not None:
            self.notify(change)

    def notify(self, change: Change) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(change)

    def apply(self, topic: str, payload: bytes) -> Change | None:
        """Update the state from one message; the change, or None when ignored."""
        parts = topic.split("/")
        if len(parts) < 5 or "/".join(parts[:2]) != PREFIX or parts[2] not in self.sites:
            return None
        site = self.sites[parts[2]]
        kind = parts[3]
        try:
            if kind == "zone":
                return self._apply_occupancy(site, parse_zone_occupancy_topic(topic).zone, payload)
            if kind == "agent" and len(parts) == 6 and parts[5] == "status":
                return self._apply_status(site.site, parts[4], payload)
            if kind == "alert" and len(parts) == 5:
                return self._apply_alert(site.site, parts[4], payload)
        except (ValidationError, ValueError) as exc:
            log.warning("ignoring bad message on %s: %s", topic, str(exc).splitlines()[0])
        return None

    def _apply_occupancy(self, site: Site, zone: str, payload: bytes) -> Change | None:
        if zone not in {z.id for z in site.zones}:
            return None
        if not payload:
            with self._lock:
                self._occupancy.pop((site.site, zone), None)
            return Change("occupancy", site.site, zone, occupancy_json(site, zone, None))
        occ = Occupancy.model_validate_json(payload)
        reading = Reading(occ.count, occ.capacity, occ.ratio, parse_ts(occ.ts))
        with self._lock:
            self._occupancy[(site.site, zone)] = reading
        return Change("occupancy", site.site, zone, occupancy_json(site, zone, reading))

    def _apply_status(self, site: str, agent: str, payload: bytes) -> Change | None:
        if not payload:
            with self._lock:
                self._agents.pop((site, agent), None)
            return Change("agent", site, agent, {"site": site, "agent": agent, "removed": True})
        status = Status.model_validate_json(payload)
        state = AgentState(status.state == "online", parse_ts(status.ts), status.sw)
        with self._lock:
            self._agents[(site, agent)] = state
        return Change("agent", site, agent, agent_json(site, agent, state))

    def _apply_alert(self, site: str, alert_id: str, payload: bytes) -> Change | None:
        if not payload:
            with self._lock:
                self._alerts.pop((site, alert_id), None)
            return Change(
                "alert", site, alert_id, {"site": site, "id": alert_id, "state": "resolved"}
            )
        alert = Alert.model_validate(json.loads(payload))
        with self._lock:
            if alert.state == "firing":
                self._alerts[(site, alert_id)] = alert
            else:
                self._alerts.pop((site, alert_id), None)
        return Change("alert", site, alert_id, {"site": site, **alert_json(alert)})

    # -- queries ---------------------------------------------------------------------

    def reading(self, site: str, zone: str) -> Reading | None:
        with self._lock:
            return self._occupancy.get((site, zone))

    def site_occupancy(self, site: str) -> list[dict[str, Any]]:
        s = self.sites[site]
        with self._lock:
            readings = {z.id: self._occupancy.get((site, z.id)) for z in s.zones}
        return [occupancy_json(s, z.id, readings[z.id]) for z in s.zones]

    def site_agents(self, site: str) -> list[dict[str, Any]]:
        with self._lock:
            items = sorted((a, st) for (s, a), st in self._agents.items() if s == site)
        return [agent_json(site, a, st) for a, st in items]

    def site_alerts(self, site: str) -> list[dict[str, Any]]:
        with self._lock:
            items = sorted(
                (al for (s, _), al in self._alerts.items() if s == site), key=lambda a: a.started
            )
        return [{"site": site, **alert_json(a)} for a in items]

    def snapshot(self, sites: Iterable[str]) -> dict[str, Any]:
        return {
            site: {
                "site": site,
                "name": self.sites[site].name,
                "zones": self.site_occupancy(site),
                "agents": self.site_agents(site),
                "alerts": self.site_alerts(site),
            }
            for site in sites
        }
