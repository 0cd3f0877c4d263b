"""Live state from MQTT: retained zone occupancy (the collector), agent status (the
agents' retained status and Last Will) and alerts (footfall-alerts), for several sites.

paho's network thread updates the state under a lock and hands each change to the
listeners; the web app turns that into server-sent events.

What it keeps is bounded whatever is published: the broker never sends it a message over
`MAX_PACKET_BYTES` (MQTT v5 Maximum Packet Size, also the broker's own `max_packet_size`
in deploy/mosquitto), a payload over the contract's 256 KiB is dropped unread, every
string kept is cut to a bound, and so is the number of agents and alerts per site.
Dropped messages are counted by reason (`rejected`, shown by /healthz) and logged at most
once a minute per reason.

The sites followed can change while it runs (`set_sites`, a folder of sites read again):
`sites` is then replaced, never changed in place, the new and changed sites are
subscribed (the broker sends their retained state again), the removed ones unsubscribed,
and what was kept of them dropped."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

# the largest MQTT packet the broker may send us (payload, topic, headers): the same as
# `max_packet_size` in deploy/mosquitto/conf.d/footfall.conf
from footfall_contract.limits import MAX_PACKET_BYTES as MAX_PACKET_BYTES
from footfall_contract.limits import MAX_PAYLOAD_BYTES as MAX_PAYLOAD_BYTES
from footfall_contract.messages import Alert, Occupancy, Status
from footfall_contract.site import Site
from footfall_contract.timefmt import parse_ts
from footfall_contract.topics import (
    agent_subscription,
    alert_subscription,
    parse_agent_topic,
    parse_alert_topic,
    parse_zone_occupancy_topic,
    topic_kind,
    zone_occupancy_subscription,
)
from footfall_runtime.config import MqttSettings
from footfall_runtime.mqttclient import MqttLink, make_client
from footfall_runtime.ratelog import LogLimiter

from .levels import Reading
from .livejson import MAX_SW_CHARS as MAX_SW_CHARS
from .livejson import AgentState as AgentState
from .livejson import Change as Change
from .livejson import agent_json as agent_json
from .livejson import alert_json, bounded_alert, cut, occupancy_json

log = logging.getLogger(__name__)

MAX_ID_CHARS: Final = 64
"""An agent or alert id taken from a topic."""
MAX_PER_SITE: Final = 10_000
"""Agents, and firing alerts, kept per site."""
_T = TypeVar("_T")


def _topic(parse: Callable[[str], _T], topic: str) -> _T:
    """The topic parsed by the contract; one that does not parse is a bad_topic."""
    try:
        return parse(topic)
    except ValueError as exc:
        raise Rejected("bad_topic", str(exc)[:300]) from None


def _id(value: str, what: str) -> str:
    """An id from a topic, kept only up to MAX_ID_CHARS (the contract's ids are short)."""
    if len(value) > MAX_ID_CHARS:
        raise Rejected("bad_topic", f"{what} {value[:80]!r}... is longer than {MAX_ID_CHARS}")
    return value


class Rejected(ValueError):
    """A message that is dropped, with the reason it is counted under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


Listener = Callable[[Change], None]


def _topics(site: str) -> list[str]:
    """What is followed of a site: its zones' occupancy, its agents' status, its alerts."""
    return [
        zone_occupancy_subscription(site),
        agent_subscription(site, "status"),
        alert_subscription(site),
    ]


def _has_zone(sites: Mapping[str, Site], site: str, zone: str) -> bool:
    found = sites.get(site)
    return found is not None and any(z.id == zone for z in found.zones)


class LiveState:
    def __init__(
        self,
        settings: MqttSettings,
        sites: Iterable[Site],
        client_id: str | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sites: Mapping[str, Site] = {s.site: s for s in sites}
        """Replaced whole by `set_sites`: read it once per use."""
        self._lock = threading.Lock()
        self._subscribing = threading.Lock()
        """Held while the subscriptions follow `sites` (paho's thread on a connect, the
        reloading thread on a change), so that neither misses the other's change."""
        self._occupancy: dict[tuple[str, str], Reading] = {}
        self._agents: dict[tuple[str, str], AgentState] = {}
        self._alerts: dict[tuple[str, str], Alert] = {}
        self._listeners: list[Listener] = []
        self.connected = threading.Event()
        self.rejected: Counter[str] = Counter()
        """Messages dropped, by reason: too_large, bad_topic, bad_payload, too_many, error."""
        self._log_limit = LogLimiter(60.0, clock=clock)
        # MQTT v5 for its Maximum Packet Size: the broker drops a larger message for us
        # instead of sending it (a retained one stored before the broker had a limit too)
        self.client = make_client(
            settings, client_id or f"footfall-web-{secrets.token_hex(4)}", v5=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._settings = settings
        self.link = MqttLink(
            self.client, settings, log, "The board and the public displays show no live data"
        )

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.MaximumPacketSize = MAX_PACKET_BYTES
        # clean start and no session expiry: a throw-away session, it only reads retained
        self.client.connect_async(
            self._settings.host,
            self._settings.port,
            self._settings.keepalive_s,
            clean_start=True,
            properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self.link.refused(rc)
            return
        with self._subscribing:
            sites = list(self.sites)
            if sites:
                client.subscribe([(t, 1) for s in sites for t in _topics(s)])
            self.connected.set()
        log.info("MQTT connected, following %d site(s)", len(sites))
        self.link.connected()

    def set_sites(self, sites: Iterable[Site]) -> Change | None:
        """Follow these sites from now on; the "sites" change for the listeners (None:
        the same sites), for the caller to `notify` once everything else follows too."""
        new = {s.site: s for s in sites}
        with self._subscribing:
            with self._lock:
                old, self.sites = self.sites, new
                self._occupancy = {k: v for k, v in self._occupancy.items() if _has_zone(new, *k)}
                self._agents = {k: v for k, v in self._agents.items() if k[0] in new}
                self._alerts = {k: v for k, v in self._alerts.items() if k[0] in new}
            added = sorted(set(new) - set(old))
            changed = sorted(s for s in new if s in old and old[s] != new[s])
            removed = sorted(set(old) - set(new))
            # a lost connection meanwhile is fine: the next connect subscribes `sites`
            if self.connected.is_set() and removed:
                self.client.unsubscribe([t for s in removed for t in _topics(s)])
            if self.connected.is_set() and (added or changed):
                self.client.subscribe([(t, 1) for s in added + changed for t in _topics(s)])
        if not (added or changed or removed):
            return None
        return Change("sites", "", "", {"added": added, "changed": changed, "removed": removed})

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connected.clear()
        self.link.disconnected(rc)

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
            change = self.apply(msg.topic, msg.payload)
        except Exception as exc:  # a bad message must not stop the network thread
            self._reject("error", msg.topic, f"cannot handle it: {exc!r}")
            return
        if change is not None:
            self.notify(change)

    def _reject(self, reason: str, topic: str, message: str) -> None:
        """Count a dropped message; log it unless one of this reason was logged less than
        a minute ago (a misbehaving publisher must not flood the log)."""
        with self._lock:
            self.rejected[reason] += 1
        left_out = self._log_limit.allow(reason)
        if left_out is not None:
            more = f" (and {left_out} more {reason} since the last such line)" if left_out else ""
            log.warning("ignoring %s message on %s: %s%s", reason, topic[:300], message, more)

    def rejected_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.rejected)

    def notify(self, change: Change) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(change)

    def apply(self, topic: str, payload: bytes | bytearray) -> Change | None:
        """Update the state from one message; the change, or None when ignored (a dropped
        message is counted in `rejected` and logged, at most once a minute per reason)."""
        try:
            return self._apply(topic, payload)
        except Rejected as exc:
            self._reject(exc.reason, topic, str(exc))
        except (ValidationError, ValueError) as exc:
            self._reject("bad_payload", topic, str(exc).splitlines()[0][:300])
        return None

    def _apply(self, topic: str, data: bytes | bytearray) -> Change | None:
        if len(data) > MAX_PAYLOAD_BYTES:  # before anything reads it
            raise Rejected(
                "too_large", f"{len(data)} bytes, over the {MAX_PAYLOAD_BYTES} of the contract"
            )
        payload = bytes(data)
        family = topic_kind(topic)
        if family == "zone":
            # a zone topic that does not parse counts as bad_payload (a ValueError)
            zone = parse_zone_occupancy_topic(topic)
            site = self.sites.get(zone.site)
            return None if site is None else self._apply_occupancy(site, zone.zone, payload)
        if family == "agent":
            agent = _topic(parse_agent_topic, topic)
            if agent.site not in self.sites or agent.kind != "status":
                return None
            return self._apply_status(agent.site, _id(agent.agent, "agent id"), payload)
        if family == "alert":
            alert = _topic(parse_alert_topic, topic)
            if alert.site not in self.sites:
                return None
            return self._apply_alert(alert.site, _id(alert.alert_id, "alert id"), payload)
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
            if self.sites.get(site.site) is not site:  # removed or changed meanwhile
                return None
            self._occupancy[(site.site, zone)] = reading
        return Change("occupancy", site.site, zone, occupancy_json(site, zone, reading))

    def _apply_status(self, site: str, agent: str, payload: bytes) -> Change | None:
        if not payload:
            with self._lock:
                self._agents.pop((site, agent), None)
            return Change("agent", site, agent, {"site": site, "agent": agent, "removed": True})
        status = Status.model_validate_json(payload)
        sw = cut(status.sw, MAX_SW_CHARS) or ""
        state = AgentState(status.state == "online", parse_ts(status.ts), sw)
        with self._lock:
            if site not in self.sites:  # removed meanwhile
                return None
            self._keep(self._agents, site, (site, agent), "agents")
            self._agents[(site, agent)] = state
        return Change("agent", site, agent, agent_json(site, agent, state))

    def _apply_alert(self, site: str, alert_id: str, payload: bytes) -> Change | None:
        if not payload:
            with self._lock:
                self._alerts.pop((site, alert_id), None)
            return Change(
                "alert", site, alert_id, {"site": site, "id": alert_id, "state": "resolved"}
            )
        alert = bounded_alert(Alert.model_validate(json.loads(payload)))
        with self._lock:
            if site not in self.sites:  # removed meanwhile
                return None
            if alert.state == "firing":
                self._keep(self._alerts, site, (site, alert_id), "firing alerts")
                self._alerts[(site, alert_id)] = alert
            else:
                self._alerts.pop((site, alert_id), None)
        return Change("alert", site, alert_id, {"site": site, **alert_json(alert)})

    def _keep(self, table: dict[tuple[str, str], Any], site: str, key: Any, what: str) -> None:
        """Room for `key` in `table` (lock held): a new key beyond MAX_PER_SITE of the
        site is refused."""
        if key in table or len(table) < MAX_PER_SITE:
            return
        if sum(1 for s, _ in table if s == site) >= MAX_PER_SITE:
            raise Rejected("too_many", f"site {site} already has {MAX_PER_SITE} {what}")

    # -- queries ---------------------------------------------------------------------

    def reading(self, site: str, zone: str) -> Reading | None:
        with self._lock:
            return self._occupancy.get((site, zone))

    def site_occupancy(self, site: str) -> list[dict[str, Any]]:
        s = self.sites.get(site)
        if s is None:  # removed since the caller looked
            return []
        with self._lock:
            readings = {z.id: self._occupancy.get((site, z.id)) for z in s.zones}
        return [occupancy_json(s, z.id, readings[z.id]) for z in s.zones]

    def agent(self, site: str, agent: str) -> AgentState | None:
        with self._lock:
            return self._agents.get((site, agent))

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
        """The live state of those of `sites` still followed."""
        now = self.sites
        return {
            site: {
                "site": site,
                "name": now[site].name,
                "zones": self.site_occupancy(site),
                "agents": self.site_agents(site),
                "alerts": self.site_alerts(site),
            }
            for site in sites
            if site in now
        }
