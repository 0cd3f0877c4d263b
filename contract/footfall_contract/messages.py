"""Payload models for every topic in docs/spec.md §2, used to build messages on the edge and to
validate them in the collector (and by anyone writing a third-party producer)."""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from . import __version__
from .timefmt import format_ts, parse_ts
from .topics import ID_PATTERN

SOFTWARE_VERSION = __version__


def _check_ts(value: str) -> str:
    parse_ts(value)
    return value


Timestamp = Annotated[str, AfterValidator(_check_ts)]
Id = Annotated[str, StringConstraints(pattern=rf"^{ID_PATTERN}$", max_length=64)]
Epoch = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Seq = Annotated[StrictInt, Field(ge=0)]
Direction = Literal["in", "out"]


class _Message(BaseModel):
    # Unknown extra fields are ignored so that newer producers stay readable.
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Event(_Message):
    seq: Seq
    ts: Timestamp

    @property
    def ts_ms(self) -> int:
        return parse_ts(self.ts)


class CrossingEvent(_Event):
    door: Id
    dir: Direction


class PresenceEvent(_Event):
    sensor: Id
    occupied: StrictBool


class FaultEvent(_Event):
    source: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_./:-]{1,128}$")]
    fault: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$", max_length=64)]
    active: StrictBool


E = TypeVar("E", CrossingEvent, PresenceEvent, FaultEvent)


class EventBatch(_Message, Generic[E]):
    """1..N events of one kind from one agent epoch, so a backlog flushes quickly."""

    epoch: Epoch
    events: Annotated[list[E], Field(min_length=1)]


CrossingBatch = EventBatch[CrossingEvent]
PresenceBatch = EventBatch[PresenceEvent]
FaultBatch = EventBatch[FaultEvent]


class Status(_Message):
    state: Literal["online", "offline"]
    epoch: Epoch
    ts: Timestamp
    sw: str


class DoorTotals(_Message):
    in_: Annotated[StrictInt, Field(ge=0, alias="in")]
    out: Annotated[StrictInt, Field(ge=0)]
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class Health(BaseModel):
    """Agent health every 30 s; extra figures (cpu_temp_c, dropped, ...) are allowed."""

    model_config = ConfigDict(extra="allow", frozen=True)
    epoch: Epoch
    ts: Timestamp
    uptime_s: Annotated[float, Field(ge=0)]
    queue_depth: Annotated[StrictInt, Field(ge=0)]
    totals: dict[str, DoorTotals]


class Occupancy(_Message):
    count: Annotated[StrictInt, Field(ge=0)]
    capacity: StrictInt | None
    ratio: float | None
    ts: Timestamp


def now_ts(epoch_ms: int) -> str:
    return format_ts(epoch_ms)


Severity = Literal["info", "warning", "critical"]


class Alert(_Message):
    """Payload of the retained `footfall/v1/{site}/alert/{id}` topic: the alert's latest
    transition. `state` "firing" while it lasts, then "resolved" (kept retained so late
    readers see the recovery; the board shows only firing ones)."""

    id: Id
    rule: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    kind: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$", max_length=64)]
    severity: Severity
    state: Literal["firing", "resolved"]
    scope: dict[str, str]
    """What it is about: {"zone": ...}, {"agent": ...}, {"agent": ..., "source": ...}."""
    summary: Annotated[str, StringConstraints(max_length=1000)]
    started: Timestamp
    ts: Timestamp
    """When this transition happened."""
    value: float | None = None
    acknowledged_by: str | None = None
    silenced_until: Timestamp | None = None
