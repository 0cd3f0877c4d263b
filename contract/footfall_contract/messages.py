"""Payload models for every topic in docs/spec.md §2, used to build messages on the edge and to
validate them in the collector (and by anyone writing a third-party producer)."""

from __future__ import annotations

import math
from typing import Annotated, Final, Generic, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)
from pydantic_core import to_json

from . import __version__
from .limits import MAX_PAYLOAD_BYTES as MAX_PAYLOAD_BYTES
from .timefmt import format_ts, parse_ts
from .topics import ID_PATTERN

SOFTWARE_VERSION = __version__


def _check_ts(value: str) -> str:
    parse_ts(value)
    return value


Timestamp = Annotated[str, AfterValidator(_check_ts)]
# pydantic's (Rust) patterns: `$` is the end of the text, so "door\n" is refused.
Id = Annotated[str, StringConstraints(pattern=rf"^{ID_PATTERN}$", max_length=64)]
Epoch = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Seq = Annotated[StrictInt, Field(ge=0)]
Direction = Literal["in", "out"]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""InfluxDB refuses inf and NaN: such a number is refused here, with a reason."""
Beam = Literal["outer", "inner"]
BEAMS: Final[tuple[Beam, ...]] = get_args(Beam)
FaultName = Literal["beam_blocked", "beam_flapping"]
FAULT_NAMES: Final[tuple[FaultName, ...]] = get_args(FaultName)
"""The faults the edge raises (docs/spec.md §1); a `source` is a door's beam,
`<door>/<beam>`, or a presence sensor of the site (`Site.fault_sources`)."""


class _Message(BaseModel):
    # Unknown extra fields are ignored so that newer producers stay readable.
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Event(_Message):
    seq: Seq
    ts: Timestamp
    clock_unsynced: StrictBool = False
    """`ts` came from a clock NTP had not set and could not be corrected before the event
    was first sent: kept and counted, but its time may be off (docs/spec.md §2)."""

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
    fault: FaultName
    active: StrictBool


E = TypeVar("E", CrossingEvent, PresenceEvent, FaultEvent)


class EventBatch(_Message, Generic[E]):
    """1..N events of one kind from one agent epoch, so a backlog flushes quickly."""

    epoch: Epoch
    events: Annotated[list[E], Field(min_length=1)]


CrossingBatch = EventBatch[CrossingEvent]
PresenceBatch = EventBatch[PresenceEvent]
FaultBatch = EventBatch[FaultEvent]


class ReceivedBatch(_Message, Generic[E]):
    """What a receiver checks as a whole is the envelope; each event is checked on its
    own, so that one bad event never costs the others (docs/spec.md §2). A valid event
    comes back as its model, an invalid one as the JSON value it was: `check_event`
    says why it is invalid."""

    epoch: Epoch
    events: Annotated[
        list[Annotated[E | JsonValue, Field(union_mode="left_to_right")]], Field(min_length=1)
    ]


ReceivedCrossings = ReceivedBatch[CrossingEvent]
ReceivedPresence = ReceivedBatch[PresenceEvent]
ReceivedFaults = ReceivedBatch[FaultEvent]


def check_event(model: type[E], raw: object) -> E:
    """`raw` (an event a `ReceivedBatch` kept as it came) validated again as JSON, as in
    the batch: the ValidationError it raises names the problems."""
    return model.model_validate_json(to_json(raw, inf_nan_mode="constants"))


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
    uptime_s: Annotated[FiniteFloat, Field(ge=0)]
    queue_depth: Annotated[StrictInt, Field(ge=0)]
    totals: dict[str, DoorTotals]

    @model_validator(mode="after")
    def _finite_extras(self) -> Health:
        """1e999 and NaN parse as floats; InfluxDB would refuse them later, so refuse
        them here, in any extra field too."""
        for name, value in (self.model_extra or {}).items():
            if not _all_finite(value):
                raise ValueError(f"{name}: numbers must be finite (not inf or NaN)")
        return self


def _all_finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_all_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    return True


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
