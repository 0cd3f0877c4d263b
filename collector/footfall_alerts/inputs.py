"""MQTT messages to engine observations (pure): the zone occupancy the collector
publishes and the agents' status, health, fault and data messages (docs/spec.md §2).

The service reads MQTT itself, not what the collector accepted, so it checks fault
sources against the site here: an agent that makes sources up (each would be an alert of
its own) gets its events dropped and counted, never evaluated."""

from __future__ import annotations

from pydantic import ValidationError

from footfall_contract.messages import (
    FaultEvent,
    Health,
    Occupancy,
    ReceivedFaults,
    Status,
    check_event,
)
from footfall_contract.site import Site
from footfall_contract.timefmt import parse_ts
from footfall_contract.topics import (
    AgentKind,
    agent_subscription,
    parse_agent_topic,
    parse_zone_occupancy_topic,
    topic_kind,
    zone_occupancy_subscription,
)

from .engine import FaultObs, ForgetObs, HealthObs, Observation, SeenObs, StatusObs, ZoneObs


def subscriptions(site: str) -> list[str]:
    """The zone occupancy the collector publishes and what the agents say of themselves
    (crossings only as a sign of life; presence is not subscribed to)."""
    agent_kinds: tuple[AgentKind, ...] = ("status", "health", "fault", "crossing")
    return [zone_occupancy_subscription(site)] + [agent_subscription(site, k) for k in agent_kinds]


Dropped = list[tuple[str, str]]
"""(reason, what was wrong) for each event dropped from a message that was kept."""


def observations(
    site: Site, topic: str, payload: bytes, now_ms: int, dropped: Dropped | None = None
) -> list[Observation]:
    """What a message says about the live state; ValueError names what is wrong with a
    message as a whole. A bad fault event is dropped on its own, with its reason added to
    `dropped` ("unknown_source" or "invalid"); the others are kept."""
    try:
        if topic_kind(topic) == "zone":
            zt = parse_zone_occupancy_topic(topic)
            if zt.site != site.site:
                raise ValueError(f"topic of another site: {topic}")
            zone = zt.zone
            site.zone(zone)
            occ = Occupancy.model_validate_json(payload)
            return [ZoneObs(zone, occ.count, parse_ts(occ.ts))]
        at = parse_agent_topic(topic)
        if at.site != site.site:
            raise ValueError(f"topic of another site: {topic}")
        if at.kind == "status":
            if not payload:
                return [ForgetObs(at.agent, now_ms)]  # retained status cleared
            status = Status.model_validate_json(payload)
            # Receive time, not the payload's: a Last Will carries the time it was set
            # (when the agent connected), not when the agent vanished.
            return [StatusObs(at.agent, status.state == "online", now_ms)]
        if at.kind == "health":
            health = Health.model_validate_json(payload)
            return [HealthObs(at.agent, health.queue_depth, parse_ts(health.ts))]
        if at.kind == "fault":
            return _faults(site, topic, at.agent, payload, now_ms, dropped)
        return [SeenObs(at.agent, now_ms)]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise ValueError(f"{topic}: {where}: {first['msg']}") from None
    except KeyError as exc:
        raise ValueError(f"{topic}: {exc.args[0]}") from None


def _faults(
    site: Site, topic: str, agent: str, payload: bytes, now_ms: int, dropped: Dropped | None
) -> list[Observation]:
    batch = ReceivedFaults.model_validate_json(payload)
    sources = site.fault_sources()
    out: list[Observation] = []
    for i, raw in enumerate(batch.events):
        event = raw
        if not isinstance(event, FaultEvent):
            try:
                event = check_event(FaultEvent, raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                _drop(dropped, "invalid", f"{topic}: events.{i}.{where}: {first['msg']}")
                continue
        if event.source not in sources:
            _drop(
                dropped,
                "unknown_source",
                f"{topic}: events.{i}.source: unknown fault source {event.source!r} in site "
                f"{site.site!r} (a door's beam, DOOR/outer or DOOR/inner, or a presence "
                "sensor of the site file)",
            )
            continue
        out.append(FaultObs(agent, event.source, event.fault, event.active, event.ts_ms))
    return out or [SeenObs(agent, now_ms)]  # nothing usable, but the agent is alive


def _drop(dropped: Dropped | None, reason: str, text: str) -> None:
    if dropped is not None:
        dropped.append((reason, text))
