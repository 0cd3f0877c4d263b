"""MQTT topic names (docs/spec.md §2). Identity comes from the topic, which the broker's ACL
ties to the agent's credentials, so payloads never carry the agent id."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

PREFIX: Final = "footfall/v1"
AgentKind = Literal["status", "crossing", "presence", "fault", "health"]
AGENT_KINDS: Final[tuple[AgentKind, ...]] = ("status", "crossing", "presence", "fault", "health")
ID_PATTERN: Final = r"[a-z0-9][a-z0-9-]*"
_ID = re.compile(ID_PATTERN)


def check_id(value: str, what: str) -> str:
    """Ids appear in topics and InfluxDB tags: lowercase letters, digits and '-' only.
    A full match: with `re.match` and `$`, "library\\n" would pass."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(f"{what} {value!r} must match [a-z0-9-]+ (lowercase, digits, '-')")
    return value


def agent_topic(site: str, agent: str, kind: AgentKind) -> str:
    return f"{PREFIX}/{site}/agent/{agent}/{kind}"


def zone_occupancy_topic(site: str, zone: str) -> str:
    return f"{PREFIX}/{site}/zone/{zone}/occupancy"


def agent_subscription(site: str, kind: AgentKind | Literal["+"] = "+") -> str:
    return f"{PREFIX}/{site}/agent/+/{kind}"


def zone_occupancy_subscription(site: str) -> str:
    """Every zone's occupancy at `site` (`+` for every site)."""
    return f"{PREFIX}/{site}/zone/+/occupancy"


def alert_subscription(site: str) -> str:
    """Every retained alert of `site` (`+` for every site)."""
    return f"{PREFIX}/{site}/alert/+"


TopicKind = Literal["agent", "zone", "alert"]


def topic_kind(topic: str) -> TopicKind | None:
    """Which family a topic under PREFIX belongs to, before it is parsed in full (None:
    none of ours); the parse functions say what is wrong with one that claims a family."""
    parts = topic.split("/", 4)
    if len(parts) < 4 or f"{parts[0]}/{parts[1]}" != PREFIX:
        return None
    kind = parts[3]
    return kind if kind in ("agent", "zone", "alert") else None  # type: ignore[return-value]


@dataclass(frozen=True)
class AgentTopic:
    site: str
    agent: str
    kind: AgentKind


@lru_cache(maxsize=1024)
def parse_agent_topic(topic: str) -> AgentTopic:
    """Split an agent topic; ValueError says what is wrong with it. Cached: each agent
    uses a handful of topics."""
    parts = topic.split("/")
    if len(parts) != 6 or "/".join(parts[:2]) != PREFIX or parts[3] != "agent":
        raise ValueError(f"not a {PREFIX}/<site>/agent/<agent>/<kind> topic: {topic!r}")
    site, agent, kind = parts[2], parts[4], parts[5]
    check_id(site, "site")
    check_id(agent, "agent")
    if kind not in AGENT_KINDS:
        raise ValueError(f"unknown message kind {kind!r} in topic {topic!r}")
    return AgentTopic(site, agent, kind)


@dataclass(frozen=True)
class ZoneTopic:
    site: str
    zone: str


def parse_zone_occupancy_topic(topic: str) -> ZoneTopic:
    """Split `footfall/v1/<site>/zone/<zone>/occupancy`; ValueError says what is wrong."""
    parts = topic.split("/")
    if len(parts) != 6 or "/".join(parts[:2]) != PREFIX or parts[3:6:2] != ["zone", "occupancy"]:
        raise ValueError(f"not a {PREFIX}/<site>/zone/<zone>/occupancy topic: {topic!r}")
    return ZoneTopic(check_id(parts[2], "site"), check_id(parts[4], "zone"))


def alert_topic(site: str, alert_id: str) -> str:
    """Retained, one per alert; published by footfall-alerts, read by the web board and
    any other system."""
    return f"{PREFIX}/{site}/alert/{alert_id}"


@dataclass(frozen=True)
class AlertTopic:
    site: str
    alert_id: str


def parse_alert_topic(topic: str) -> AlertTopic:
    """Split `footfall/v1/<site>/alert/<id>`; ValueError says what is wrong."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != PREFIX or parts[3] != "alert":
        raise ValueError(f"not a {PREFIX}/<site>/alert/<id> topic: {topic!r}")
    return AlertTopic(check_id(parts[2], "site"), check_id(parts[4], "alert id"))
