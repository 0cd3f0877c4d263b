"""What goes into the alert engine and what comes out of it, as plain values: the
service turns MQTT messages into observations and carries out the effects (InfluxDB,
MQTT, receivers), so the engine itself never touches I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

TransitionState = Literal[
    "pending",
    "firing",
    "resolved",
    "cancelled",
    "acknowledged",
    "silenced",
    "unsilenced",
    "updated",
]
Event = Literal["firing", "resolved", "repeat"]
PUBLISHED: Final = frozenset(
    {"firing", "resolved", "acknowledged", "silenced", "unsilenced", "updated"}
)
"""Transitions that change the retained MQTT alert (pending and cancelled do not)."""
RECORDED: Final = frozenset(
    {"pending", "firing", "resolved", "cancelled", "acknowledged", "silenced", "unsilenced"}
)
"""Transitions written to InfluxDB (`updated`, a new summary, is not a state change)."""


# --- observations ---------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneObs:
    zone: str
    count: int
    ts_ms: int


@dataclass(frozen=True)
class StatusObs:
    agent: str
    online: bool
    ts_ms: int


@dataclass(frozen=True)
class HealthObs:
    agent: str
    queue_depth: int
    ts_ms: int


@dataclass(frozen=True)
class FaultObs:
    agent: str
    source: str
    fault: str
    active: bool
    ts_ms: int


@dataclass(frozen=True)
class SeenObs:
    """Any other message from an agent (crossings, presence): it is alive."""

    agent: str
    ts_ms: int


@dataclass(frozen=True)
class DriftObs:
    zone: str
    clamped: int
    ts_ms: int


@dataclass(frozen=True)
class ForgetObs:
    """The agent's retained status was cleared: it is out of service, forget it."""

    agent: str
    ts_ms: int


Observation = ZoneObs | StatusObs | HealthObs | FaultObs | SeenObs | DriftObs | ForgetObs


# --- effects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """One alert's change: recorded in InfluxDB; the PUBLISHED ones also go to MQTT."""

    state: TransitionState
    alert: dict[str, Any]
    """The contract `Alert` payload as of this transition."""
    ts_ms: int
    by: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Notification:
    """One message to one receiver: alerts of one rule that fired, resolved or repeat."""

    receiver: str
    rule: str
    event: Event
    alerts: tuple[dict[str, Any], ...]
    ts_ms: int


Effect = Transition | Notification
