"""MQTT messages to engine observations (pure): the zone occupancy the collector
publishes and the agents' status, health, fault and data messages (docs/spec.md §2)."""

from __future__ import annotations

from pydantic import ValidationError

from footfall_contract.messages import FaultBatch, Health, Occupancy, Status
from footfall_contract.site import Site
from footfall_contract.timefmt import parse_ts
from footfall_contract.topics import PREFIX, parse_agent_topic, parse_zone_occupancy_topic

from .engine import FaultObs, ForgetObs, HealthObs, Observation, SeenObs, StatusObs, ZoneObs


def subscriptions(site: str) -> list[str]:
    return [
        f"{PREFIX}/{site}/zone/+/occupancy",
        f"{PREFIX}/{site}/agent/+/status",
        f"{PREFIX}/{site}/agent/+/health",
        f"{PREFIX}/{site}/agent/+/fault",
        f"{PREFIX}/{site}/agent/+/crossing",
    ]


def observations(site: Site, topic: str, payload: bytes, now_ms: int) -> list[Observation]:
    """What a message says about the live state; ValueError names what is wrong."""
    try:
        if topic.split("/")[3:4] == ["zone"]:
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
            batch = FaultBatch.model_validate_json(payload)
            return [FaultObs(at.agent, e.source, e.fault, e.active, e.ts_ms) for e in batch.events]
        return [SeenObs(at.agent, now_ms)]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise ValueError(f"{topic}: {where}: {first['msg']}") from None
    except KeyError as exc:
        raise ValueError(f"{topic}: {exc.args[0]}") from None
