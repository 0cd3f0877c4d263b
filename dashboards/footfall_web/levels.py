"""Pure logic of the public display: how busy a zone is, or why nothing is shown.

No clock, no I/O: the caller passes the reading, the time and the settings, so every
rule here is unit-tested directly."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from footfall_contract.hours import ALL_DAY_END, minute_of_day
from footfall_contract.site import Site

Level = Literal["quiet", "moderate", "busy", "very_busy"]
LEVELS: tuple[Level, ...] = ("quiet", "moderate", "busy", "very_busy")
State = Literal["open", "closed", "no_data"]


class Thresholds(BaseModel):
    """Share of capacity where each level starts: quiet below `moderate`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    moderate: Annotated[float, Field(gt=0, le=10)] = 0.30
    busy: Annotated[float, Field(gt=0, le=10)] = 0.60
    very_busy: Annotated[float, Field(gt=0, le=10)] = 0.85

    @model_validator(mode="after")
    def _increasing(self) -> Thresholds:
        if not self.moderate < self.busy < self.very_busy:
            raise ValueError(
                "crowding thresholds must increase: moderate < busy < very_busy "
                f"(got {self.moderate}, {self.busy}, {self.very_busy})"
            )
        return self


def level_of(ratio: float, thresholds: Thresholds) -> Level:
    if ratio >= thresholds.very_busy:
        return "very_busy"
    if ratio >= thresholds.busy:
        return "busy"
    if ratio >= thresholds.moderate:
        return "moderate"
    return "quiet"


@dataclass(frozen=True)
class Reading:
    """The latest retained occupancy of a zone (docs/spec.md §2)."""

    count: int
    capacity: int | None
    ratio: float | None
    ts_ms: int


@dataclass(frozen=True)
class Crowding:
    state: State
    level: Level | None
    percent: int | None
    """Share of capacity in whole per cent (may pass 100), None without a capacity."""
    count: int | None
    """People now; shown publicly only for zones without a capacity."""
    capacity: int | None
    updated_ms: int | None
    age_s: float | None


def is_stale(reading: Reading | None, now_ms: int, stale_after_s: float) -> bool:
    return reading is None or now_ms - reading.ts_ms > stale_after_s * 1000


def crowding(
    site: Site,
    zone: str,
    reading: Reading | None,
    now_ms: int,
    thresholds: Thresholds,
    stale_after_s: float,
) -> Crowding:
    """Closed (outside the zone's opening hours) wins over no data (no reading, or one
    older than `stale_after_s`): a stale number is never shown as if live."""
    capacity = site.zone(zone).capacity
    when = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC)
    age = None if reading is None else max(0.0, (now_ms - reading.ts_ms) / 1000)
    updated = None if reading is None else reading.ts_ms
    if not site.is_open(when, zone):
        return Crowding("closed", None, None, None, capacity, updated, age)
    if reading is None or is_stale(reading, now_ms, stale_after_s):
        return Crowding("no_data", None, None, None, capacity, updated, age)
    if capacity is None:
        return Crowding("open", None, None, reading.count, None, updated, age)
    ratio = reading.count / capacity
    return Crowding(
        "open", level_of(ratio, thresholds), round(ratio * 100), None, capacity, updated, age
    )


def slot_time(slot: int, step_min: int) -> str:
    """Slot index of a local day -> "HH:MM"."""
    minutes = slot * step_min
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def rest_of_day(
    values: list[float | None],
    step_min: int,
    now_local: dt.datetime,
    hours: tuple[dt.time, dt.time] | None,
) -> list[tuple[int, float | None]]:
    """(slot, typical value) from the current slot to closing time (or midnight)."""
    if hours is None:
        return []
    first = (now_local.hour * 60 + now_local.minute) // step_min
    return [(slot, values[slot]) for slot in range(first, _end_slot(values, step_min, hours))]


def busiest_slot(
    values: list[float | None], step_min: int, hours: tuple[dt.time, dt.time] | None
) -> int | None:
    """The slot with the highest typical value within opening hours (first on ties)."""
    if hours is None:
        return None
    start = minute_of_day(hours[0]) // step_min
    best: int | None = None
    for slot in range(start, _end_slot(values, step_min, hours)):
        value = values[slot]
        if value is not None and value > 0 and (best is None or value > (values[best] or 0)):
            best = slot
    return best


def _end_slot(values: list[float | None], step_min: int, hours: tuple[dt.time, dt.time]) -> int:
    """The end (exclusive) of the slots within opening hours: a slot is in if closing
    comes after its start; every slot for a day open until midnight."""
    if hours[1] == ALL_DAY_END:
        return len(values)
    return min(-(-minute_of_day(hours[1]) // step_min), len(values))
