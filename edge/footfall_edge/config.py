"""The edge agent's configuration as plain dataclasses: what the running agent reads.

Loading and validating it (`edge.toml`, `FOOTFALL_*` variables) is settings.py's job;
deploy/edge/edge.example.toml shows every field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le, MaxLen

from footfall_contract.topics import check_id
from footfall_runtime.config import STRICT, MqttSettings

from .detection import DetectorConfig

Id = Annotated[str, MaxLen(64)]  # and [a-z0-9-]+, checked in __post_init__
Pin = int | str
"""A BCM number (17), "GPIO17", "BCM17", "BOARD11" or "J8:11" (the header's pin 11), as
written but upper case (gpiozero's spelling); `bcm_pin` checks it and gives its number."""
Level = Literal["high", "low"]

GPIO_RANGE = range(2, 28)
"""The GPIOs on the Raspberry Pi's 40-pin header, GPIO0 and GPIO1 (reserved for the ID
EEPROM of a HAT) aside."""
HEADER_GPIO = {
    3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24, 19: 10,
    21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19,
    36: 16, 37: 26, 38: 20, 40: 21,
}  # fmt: skip
"""Physical pin of the 40-pin header -> BCM GPIO number."""
HEADER_POWER = {1: "3.3 V", 17: "3.3 V", 2: "5 V", 4: "5 V"}
PIN_FORMS = "a BCM GPIO number 2..27 (17), GPIO17, BOARD11 or J8:11 (the header's pin 11)"


def bcm_pin(pin: object, field_name: str) -> int:
    """The BCM number of a pin as the configuration names it; ValueError in words an
    installer understands when it is not a usable GPIO of the header."""
    given = f"{field_name} = {pin!r}"
    if isinstance(pin, bool) or not isinstance(pin, int | str):
        raise ValueError(f"{given}: a pin is {PIN_FORMS}")
    text = str(pin).strip().upper()
    board: int | None = None
    for prefix in ("BOARD", "J8:"):
        if text.startswith(prefix) and text[len(prefix) :].isdigit():
            board = int(text[len(prefix) :])
    if board is not None:
        if board in HEADER_POWER:
            raise ValueError(
                f"{given}: header pin {board} is {HEADER_POWER[board]} power, not a GPIO"
            )
        if board in HEADER_GPIO:
            number = HEADER_GPIO[board]
        elif 1 <= board <= 40:
            raise ValueError(f"{given}: header pin {board} is ground, not a GPIO")
        else:
            raise ValueError(f"{given}: the header has pins 1..40; a pin is {PIN_FORMS}")
    else:
        for prefix in ("GPIO", "BCM"):
            if text.startswith(prefix) and text[len(prefix) :].isdigit():
                text = text[len(prefix) :]
        if not text.lstrip("-").isdigit():
            raise ValueError(f"{given}: not a pin name; a pin is {PIN_FORMS}")
        number = int(text)
    if number in (0, 1):
        raise ValueError(
            f"{given}: GPIO{number} is reserved for the ID EEPROM of a HAT; use GPIO2..GPIO27"
        )
    if number not in GPIO_RANGE:
        raise ValueError(
            f"{given}: there is no GPIO{number} on the Raspberry Pi's 40-pin header; "
            f"a pin is {PIN_FORMS}"
        )
    return number


def header_pin(bcm: int) -> int:
    """The physical header pin of a BCM GPIO, for telling an installer where to wire."""
    return next(board for board, gpio in HEADER_GPIO.items() if gpio == bcm)


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
        outer, inner = bcm_pin(self.outer_pin, "outer_pin"), bcm_pin(self.inner_pin, "inner_pin")
        if outer == inner:
            raise ValueError(
                f"outer_pin = {self.outer_pin!r} and inner_pin = {self.inner_pin!r} are the "
                f"same pin (GPIO{outer}): each beam needs a pin of its own"
            )
        object.__setattr__(self, "outer_pin", _spelled(self.outer_pin))
        object.__setattr__(self, "inner_pin", _spelled(self.inner_pin))


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
        bcm_pin(self.pin, "pin")
        object.__setattr__(self, "pin", _spelled(self.pin))


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
            raise ValueError(
                "configure at least one door ([[doors]]) or presence sensor ([[presence]])"
            )
        ids: dict[str, str] = {}
        pins: dict[int, str] = {}
        items = [
            (f"doors[{i}] ({d.id})", d.id, (("outer_pin", d.outer_pin), ("inner_pin", d.inner_pin)))
            for i, d in enumerate(self.doors)
        ] + [
            (f"presence[{i}] ({p.id})", p.id, (("pin", p.pin),))
            for i, p in enumerate(self.presence)
        ]
        for what, item_id, item_pins in items:
            if item_id in ids:
                raise ValueError(f"{what}: id {item_id!r} is also the id of {ids[item_id]}")
            ids[item_id] = what
            for name, pin in item_pins:
                key = _pin_key(pin)
                if key in pins:
                    raise ValueError(
                        f"{what}.{name}: pin {pin} (GPIO{key}) is already used by {pins[key]}"
                    )
                pins[key] = f"{what}.{name}"
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


def _pin_key(pin: Pin) -> int:
    """17, "GPIO17", "BCM17" and "BOARD11" name the same pin."""
    return bcm_pin(pin, "pin")


def _spelled(pin: Pin) -> Pin:
    """A pin name as gpiozero accepts it: it reads "GPIO17" but not "gpio17"."""
    return pin if isinstance(pin, int) else pin.strip().upper()
