"""Validation of what arrives on the agent topics, turned into InfluxDB points.

Pure: the caller gives the receive time. Anything a device can send gets either points
or a `Rejection` with a reason (a tag in the `rejected` measurement); nothing raises.
One bad event in a batch rejects that event only."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

from pydantic import ValidationError

from footfall_contract.limits import MAX_PAYLOAD_BYTES
from footfall_contract.messages import (
    CrossingEvent,
    FaultEvent,
    Health,
    PresenceEvent,
    ReceivedBatch,
    ReceivedCrossings,
    ReceivedFaults,
    ReceivedPresence,
    Status,
    check_event,
)
from footfall_contract.site import Site
from footfall_contract.timefmt import parse_ts
from footfall_contract.topics import parse_agent_topic

from .points import FieldValue, Point, event_time_ns
from .schema import (
    agent_health_point,
    crossing_point,
    fault_point,
    presence_point,
    rejected_point,
    zone_flow_points,
)

REASONS = (
    "too_large",
    "bad_topic",
    "wrong_site",
    "invalid_json",
    "schema",
    "unknown_door",
    "unknown_sensor",
    "unknown_source",
    "future",
    "too_old",
)


@dataclass(frozen=True)
class Rejection:
    reason: str
    detail: str
    agent: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class CrossingSeen:
    """A valid crossing: `key` identifies it for exactly-once occupancy."""

    agent: str
    key: tuple[str, int]
    ts_ms: int
    door: str
    dir: str


@dataclass
class Outcome:
    agent: str | None = None
    kind: str | None = None
    points: list[Point] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    """Points already in line protocol (crossings and their zone_flow, the hot path)."""
    crossings: list[CrossingSeen] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    events: int = 0
    status: Status | None = None
    retired: bool = False
    """The agent's retained status was cleared (an empty status message): retired."""
    health: bool = False


@dataclass(frozen=True)
class Limits:
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    max_future_ms: int = 300_000
    max_age_ms: int | None = 400 * 24 * 3600 * 1000
    """The raw retention: InfluxDB drops older points, so they are refused with a reason."""


Ev = TypeVar("Ev", CrossingEvent, PresenceEvent, FaultEvent)


def _schema_detail(exc: ValidationError, prefix: str = "") -> str:
    """The first five problems, each with where it is (`events.3.dir`)."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join([prefix, *(str(p) for p in err["loc"])] if prefix else map(str, err["loc"]))
        parts.append(f"{loc or 'payload'}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


class Ingest:
    def __init__(self, site: Site, limits: Limits | None = None) -> None:
        self.site = site
        self.limits = limits or Limits()
        self._doors = {d.id for d in site.doors}
        # The crossing's and its zone_flow points' lines but for the time, per door,
        # direction and agent: formatting them is most of the cost of an event. Bounded:
        # agents come from topics the broker's ACL allows.
        self._crossing_heads = lru_cache(maxsize=4096)(self._heads)
        self._sensors = {p.id: p.zone for p in site.presence}
        self._fault_sources = site.fault_sources()

    def _heads(
        self, door: str, direction: str, agent: str, unsynced: bool = False
    ) -> tuple[str, ...]:
        entered, left = self.site.door_effects(door)
        if direction == "out":
            entered, left = left, entered
        site = self.site.site
        points = [crossing_point(site, door, direction, agent, 0, unsynced)]
        points += zone_flow_points(site, entered, left, agent, 0)
        return tuple(p.line()[:-1] for p in points)  # without the time "0"

    def handle(self, topic: str, payload: bytes, now_ms: int) -> Outcome:
        out = Outcome()
        if len(payload) > self.limits.max_payload_bytes:
            out.rejections.append(
                Rejection("too_large", f"{len(payload)} bytes > {self.limits.max_payload_bytes}")
            )
            return out
        try:
            t = parse_agent_topic(topic)
        except ValueError as exc:
            out.rejections.append(Rejection("bad_topic", str(exc)))
            return out
        out.agent, out.kind = t.agent, t.kind
        if t.site != self.site.site:
            out.rejections.append(
                Rejection(
                    "wrong_site",
                    f"topic site {t.site!r} is not {self.site.site!r}",
                    t.agent,
                    t.kind,
                )
            )
            return out
        handler = getattr(self, f"_{t.kind}")
        try:
            handler(t.agent, payload, now_ms, out)
        except ValidationError as exc:
            if exc.errors()[0]["type"] == "json_invalid":
                out.rejections.append(
                    Rejection("invalid_json", exc.errors()[0]["msg"][:200], t.agent, t.kind)
                )
            else:
                out.rejections.append(Rejection("schema", _schema_detail(exc), t.agent, t.kind))
        return out

    # -- per kind ----------------------------------------------------------------------

    def _check_time(self, ts_ms: int, now_ms: int, agent: str, kind: str, out: Outcome) -> bool:
        if ts_ms > now_ms + self.limits.max_future_ms:
            out.rejections.append(
                Rejection(
                    "future", f"ts {ts_ms - now_ms} ms ahead of the collector's clock", agent, kind
                )
            )
            return False
        if self.limits.max_age_ms is not None and ts_ms < now_ms - self.limits.max_age_ms:
            out.rejections.append(
                Rejection("too_old", f"ts {(now_ms - ts_ms) // 1000} s old", agent, kind)
            )
            return False
        return True

    def _events(
        self,
        batch_type: type[ReceivedBatch[Ev]],
        model: type[Ev],
        agent: str,
        data: bytes,
        out: Outcome,
    ) -> list[Ev]:
        """The valid events of a message. A bad envelope (not JSON, no epoch, no events)
        raises for the whole message; a bad event becomes its own `schema` rejection
        and the others are kept."""
        batch = batch_type.model_validate_json(data)
        valid: list[Ev] = []
        for i, item in enumerate(batch.events):
            if isinstance(item, model):
                valid.append(item)
                continue
            try:
                valid.append(check_event(model, item))
            except ValidationError as exc:
                detail = _schema_detail(exc, f"events.{i}")
                out.rejections.append(Rejection("schema", detail, agent, out.kind))
        return valid

    def _crossing(self, agent: str, data: bytes, now_ms: int, out: Outcome) -> None:
        for e in self._events(ReceivedCrossings, CrossingEvent, agent, data, out):
            if e.door not in self._doors:
                out.rejections.append(
                    Rejection(
                        "unknown_door",
                        f"door {e.door!r} is not in site {self.site.site!r}",
                        agent,
                        "crossing",
                    )
                )
                continue
            ts = parse_ts(e.ts)
            if not self._check_time(ts, now_ms, agent, "crossing", out):
                continue
            time_ns = event_time_ns(ts, e.seq)
            t = str(time_ns)
            out.lines.extend(
                head + t for head in self._crossing_heads(e.door, e.dir, agent, e.clock_unsynced)
            )
            out.crossings.append(CrossingSeen(agent, (agent, time_ns), ts, e.door, e.dir))
            out.events += 1

    def _presence(self, agent: str, data: bytes, now_ms: int, out: Outcome) -> None:
        for e in self._events(ReceivedPresence, PresenceEvent, agent, data, out):
            zone = self._sensors.get(e.sensor)
            if zone is None:
                out.rejections.append(
                    Rejection(
                        "unknown_sensor",
                        f"sensor {e.sensor!r} is not in site {self.site.site!r}",
                        agent,
                        "presence",
                    )
                )
                continue
            ts = parse_ts(e.ts)
            if not self._check_time(ts, now_ms, agent, "presence", out):
                continue
            out.points.append(
                presence_point(
                    self.site.site, zone, e.sensor, agent, e.occupied, event_time_ns(ts, e.seq)
                )
            )
            out.events += 1

    def _fault(self, agent: str, data: bytes, now_ms: int, out: Outcome) -> None:
        for e in self._events(ReceivedFaults, FaultEvent, agent, data, out):
            if e.source not in self._fault_sources:
                out.rejections.append(
                    Rejection(
                        "unknown_source",
                        f"fault source {e.source!r} is neither a door's beam (<door>/outer, "
                        f"<door>/inner) nor a presence sensor of site {self.site.site!r}",
                        agent,
                        "fault",
                    )
                )
                continue
            ts = parse_ts(e.ts)
            if not self._check_time(ts, now_ms, agent, "fault", out):
                continue
            out.points.append(
                fault_point(
                    self.site.site, agent, e.source, e.fault, e.active, event_time_ns(ts, e.seq)
                )
            )
            out.events += 1

    def _health(self, agent: str, data: bytes, now_ms: int, out: Outcome) -> None:
        h = Health.model_validate_json(data)
        ts = parse_ts(h.ts)
        if not self._check_time(ts, now_ms, agent, "health", out):
            return
        fields: dict[str, FieldValue] = {
            "uptime_s": float(h.uptime_s),
            "queue_depth": h.queue_depth,
            "crossings_in": sum(t.in_ for t in h.totals.values()),
            "crossings_out": sum(t.out for t in h.totals.values()),
        }
        extra = h.model_extra or {}
        for name in ("dropped", "inflight", "next_seq"):
            if isinstance(extra.get(name), int) and not isinstance(extra.get(name), bool):
                fields[name] = extra[name]
        if isinstance(extra.get("cpu_temp_c"), int | float):
            fields["cpu_temp_c"] = float(extra["cpu_temp_c"])
        if isinstance(extra.get("sw"), str):
            fields["sw"] = extra["sw"][:32]
        out.points.append(agent_health_point(self.site.site, agent, fields, ts * 1_000_000))
        out.health = True

    def _status(self, agent: str, data: bytes, now_ms: int, out: Outcome) -> None:
        # A retained status (or a Last Will written at connect time) carries an old ts:
        # what matters is when the collector learnt it.
        if not data:
            out.retired = True  # the retained status cleared: the agent is retired
            return
        out.status = Status.model_validate_json(data)


def rejection_point(site: str, r: Rejection, time_ns: int) -> Point:
    return rejected_point(site, r.reason, r.kind, r.detail, r.agent, time_ns)
