"""Edge agent settings: `edge.toml` and `FOOTFALL_*` variables (deploy/edge/edge.example.toml
shows every field)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from footfall_contract.settings import FootfallSettings, MqttSettings
from footfall_contract.topics import ID_PATTERN

from .detection import DetectorConfig

Id = Annotated[str, StringConstraints(pattern=rf"^{ID_PATTERN}$", max_length=64)]
Pin = int | str  # BCM number (17) or any name gpiozero accepts ("GPIO17", "BOARD11")
Level = Literal["high", "low"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DoorSettings(_Strict):
    id: Id
    outer_pin: Pin
    inner_pin: Pin
    invert: bool = False
    """The door is wired the other way round: swap in and out."""
    pull_up: bool = True
    """Most break-beam receivers are open collector: they need the Pi's pull-up."""
    blocked_when: Level = "high"
    """The pin level that means the beam is interrupted (open collector + pull-up: high)."""
    debounce_ms: int | None = Field(None, ge=0, le=1000)
    blocked_s: float | None = Field(None, gt=0)


class PresenceSettings(_Strict):
    id: Id
    pin: Pin
    hold_s: float = Field(120.0, ge=0)
    pull_up: bool = False
    active_when: Level = "high"


class DetectorSettings(_Strict):
    debounce_ms: int = Field(20, ge=0, le=1000)
    blocked_s: float = Field(30.0, gt=0)
    gap_ms: int = Field(250, ge=0)
    flap_changes: int = Field(50, ge=4)
    flap_window_s: float = Field(5.0, gt=0)


class PublishSettings(_Strict):
    batch_max: int = Field(500, ge=1, le=5000)
    """Events per message at most, when a backlog goes out after an outage."""
    inflight_max: int = Field(10, ge=1, le=100)
    health_interval_s: float = Field(30.0, gt=0)


class EdgeSettings(FootfallSettings):
    site: Id
    agent: Id
    state_dir: Path = Path("/var/lib/footfall-edge")
    max_events: int = Field(2_000_000, ge=100)
    """Outbox bound: when full the oldest events are dropped, counted and reported."""
    mqtt: MqttSettings = MqttSettings()
    publish: PublishSettings = PublishSettings()
    detector: DetectorSettings = DetectorSettings()
    doors: list[DoorSettings] = Field(default_factory=list)
    presence: list[PresenceSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Self:
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
        return self

    @model_validator(mode="after")
    def _detectors(self) -> Self:
        for door in self.doors:
            try:
                self.detector_config(door)
            except ValueError as exc:
                raise ValueError(f"door {door.id!r}: {exc}") from None
        return self

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
