"""Response models of the JSON API (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from .levels import Level, State


class ErrorOut(BaseModel):
    detail: str = Field(description="What was wrong with the request")


class ZoneInfo(BaseModel):
    id: str
    name: str
    names: dict[str, str] = Field(description="The name in fi, sv, en where the site file gives it")
    parent: str | None
    capacity: int | None
    public: bool = Field(description="Whether the zone has a public crowding display")


class SiteInfo(BaseModel):
    site: str
    name: str
    names: dict[str, str] = Field(description="The name in fi, sv, en where the site file gives it")
    timezone: str
    open_now: bool
    zones: list[ZoneInfo]


class SitesOut(BaseModel):
    sites: list[SiteInfo]


class ZoneOccupancy(BaseModel):
    site: str
    zone: str
    name: str
    parent: str | None
    count: int | None = Field(description="People in the zone now; null before any reading")
    capacity: int | None
    ratio: float | None = Field(description="count / capacity")
    ts: str | None = Field(description="When the collector computed it (RFC 3339)")
    stale: bool = Field(description="Older than crowding.stale_after_s, or no reading")


class AgentOut(BaseModel):
    site: str
    agent: str
    online: bool
    ts: str
    sw: str


class AlertOut(BaseModel):
    site: str
    id: str
    rule: str
    kind: str
    severity: Literal["info", "warning", "critical"]
    state: Literal["firing", "resolved"]
    scope: dict[str, str]
    summary: str
    started: str
    ts: str
    value: float | None = None
    acknowledged_by: str | None = None
    silenced_until: str | None = None


class SiteOccupancy(BaseModel):
    site: str
    name: str
    now: str = Field(description="Server time (RFC 3339)")
    zones: list[ZoneOccupancy]
    agents: list[AgentOut]
    alerts: list[AlertOut] = Field(description="Firing alerts only")


class HistoryPoint(BaseModel):
    t: str = Field(description="Start of the interval (RFC 3339)")
    count: int | None = Field(
        description="Occupancy at the end of the interval (event time; a quiet interval "
        "carries the level); null while no level is known"
    )
    max: int | None = Field(description="Highest occupancy within the interval")
    visits: int = Field(description="Entries of the zone in the interval")


class HistoryOut(BaseModel):
    site: str
    zone: str
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    every_s: int
    timezone: str = Field(
        description="The site's time zone: intervals of a day or more are its days"
    )
    capacity: int | None
    points: list[HistoryPoint]

    model_config = {"populate_by_name": True}


class TypicalOut(BaseModel):
    site: str
    zone: str
    weekday: int = Field(description="0 = Monday, in the site's time zone")
    step_min: int
    weeks: int = Field(description="Weeks of history the profile is made of")
    values: list[float | None] = Field(description="Typical occupancy per slot of the local day")
    peak_slot: int | None
    peak_time: str | None = Field(description="Start of the peak slot, HH:MM local time")


class ForecastPoint(BaseModel):
    time: str = Field(description="HH:MM local time")
    percent: int | None = Field(description="Typical share of capacity, for zones with one")
    count: float | None = Field(description="Typical people, only for zones without a capacity")


class PublicCrowding(BaseModel):
    """Aggregates only: what the public display shows."""

    site: str
    zone: str
    name: str
    lang: Literal["fi", "sv", "en"]
    state: State
    level: Level | None
    label: str = Field(description="The state or level in the chosen language")
    percent: int | None
    count: int | None = Field(description="Only for zones without a capacity")
    updated: str | None
    updated_time: str | None = Field(description="When the figures were taken, HH:MM site time")
    fresh_for_s: float | None = Field(
        description="Seconds these figures stay valid; a display that cannot refresh by "
        "then must stop showing them"
    )
    hours_today: str | None
    peak_time: str | None
    peak_label: str | None
    now_time: str = Field(description="The site's time of this answer, HH:MM (the chart's now)")
    forecast: list[ForecastPoint]


class AlertAckIn(BaseModel):
    """Acknowledge a firing alert (the user's name is the login's)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=500, description="default: from the live board")


class AgentRetireIn(BaseModel):
    """Retire an agent that is gone for good (its Pi replaced or removed)."""

    model_config = ConfigDict(extra="forbid")

    force: StrictBool = Field(
        False,
        description="retire it although its status says online (it returns when it connects again)",
    )


class AlertSilenceIn(BaseModel):
    """Silence one alert for some hours (the user's name is the login's)."""

    model_config = ConfigDict(extra="forbid")

    hours: float = Field(1.0, gt=0, le=24 * 7, description="how long, up to a week")
    reason: str | None = Field(None, max_length=500, description="default: from the live board")
