"""The edge agent's configuration as plain dataclasses: what the running agent reads.

Loading and validating it (`edge.toml`, `FOOTFALL_*` variables) is settings.py's job;
deploy/edge/edge.example.toml shows every field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le, MaxLen

from footfall_contract.config import STRICT, MqttSettings
from footfall_contract.topics import check_id

from .detection import DetectorConfig

Id = Annotated[str, MaxLen(64)]  # and [a-z0-9-]+, checked in __post_init__
Pin = int | str  # BCM number (17) or any name gpiozero accepts ("GPIO17", "BOARD11")
Level = Literal["high", "low"]


@dataclass(frozen=True)
class DoorSettings:
    __pydantic_config__ = STRICT

    id: Id
    outer_pin: Pin
    inner_pin: Pin
    invert: bool = False
    """The door is wired the other way round: swap in and out."""
    pull_up: bool = True
    """Most break-beam receivers are open collector: they need the Pi's pull-up."""
    blocked_when: Level = "high"
    """The pin level that means the beam is interrupted (open collector + pull-up: high)."""
    debounce_ms: Annotated[int, Ge(0), Le(1000)] | None = None
    blocked_s: Annotated[float, Gt(0)] | None = None

    def __post_init__(self) -> None:
        check_id(self.id, "door id")


@dataclass(frozen=True)
class PresenceSettings:
    __pydantic_config__ = STRICT

    id: Id
    pin: Pin
    hold_s: Annotated[float, Ge(0)] = 120.0
    pull_up: bool = False
    active_when: Level = "high"

    def __post_init__(self) -> None:
        check_id(self.id, "presence sensor id")


@dataclass(frozen=True)
class DetectorSettings:
    __pydantic_config__ = STRICT

    debounce_ms: Annotated[int, Ge(0), Le(1000)] = 20
    blocked_s: Annotated[float, Gt(0)] = 30.0
    gap_ms: Annotated[int, Ge(0)] = 250
    flap_changes: Annotated[int, Ge(4)] = 50
    flap_window_s: Annotated[float, Gt(0)] = 5.0


@dataclass(frozen=True)
class PublishSettings:
    __pydantic_config__ = STRICT

    batch_max: Annotated[int, Ge(1), Le(5000)] = 500
    """Events per message at most, when a backlog goes out after an outage; the publisher
    also keeps every message within the contract's MAX_PAYLOAD_BYTES."""
    inflight_max: Annotated[int, Ge(1), Le(100)] = 10
    health_interval_s: Annotated[float, Gt(0)] = 30.0
    wait_for_clock_s: Annotated[float, Ge(0)] = 300.0
    """After start, hold events stamped before the clock was synchronized (NTP) this
    long, so that their times can be corrected first; 0 = never hold."""


@dataclass(frozen=True)
class EdgeConfig:
    site: Id
    agent: Id
    state_dir: Path = Path("/var/lib/footfall-edge")
    max_events: Annotated[int, Ge(100)] = 2_000_000
    """Outbox bound: when full the oldest events are dropped, counted and reported."""
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    doors: list[DoorSettings] = field(default_factory=list)
    presence: list[PresenceSettings] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_id(self.site, "site")
        check_id(self.agent, "agent")
        if not self.doors and not self.presence:
            raise ValueError("configure at least one door or presence sensor")
        ids: set[str] = set()
        pins: dict[str, str] = {}
        for what, item_id, item_pins in [
            *(("door", d.id, (d.outer_pin, d.inner_pin)) for d in self.doors),
            *(("presence sensor", p.id, (p.pin,)) for p in self.presence),
        ]:
            if item_id in ids:
                raise ValueError(f"{what} id {item_id!r} is used twice")
            ids.add(item_id)
            for pin in item_pins:
                key = _pin_key(pin)
                if key in pins:
                    raise ValueError(f"pin {pin} of {item_id!r} is already used by {pins[key]!r}")
                pins[key] = item_id
        for door in self.doors:
            try:
                self.detector_config(door)
            except ValueError as exc:
                raise ValueError(f"door {door.id!r}: {exc}") from None

    def detector_config(self, door: DoorSettings) -> DetectorConfig:
        d = self.detector
        return DetectorConfig(
            debounce_ms=door.debounce_ms if door.debounce_ms is not None else d.debounce_ms,
            blocked_ms=round(1000 * (door.blocked_s or d.blocked_s)),
            gap_ms=d.gap_ms,
            flap_changes=d.flap_changes,
            flap_window_ms=round(1000 * d.flap_window_s),
            invert=door.invert,
        )

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox.sqlite3"


def _pin_key(pin: Pin) -> str:
    """17, "GPIO17", "BCM17" and "gpio17" name the same pin."""
    text = str(pin).strip().upper()
    for prefix in ("GPIO", "BCM"):
        if text.startswith(prefix) and text[len(prefix) :].isdigit():
            text = text[len(prefix) :]
    return f"GPIO{int(text)}" if text.isdigit() else text
