"""The site model (docs/spec.md §3): one YAML file per site, so a new building is data, not code.

A bad site file must stop the program at start with the file, the line and the reason,
so every problem becomes a `SiteError` pointing at the YAML node that caused it (the
YAML machinery is yamlfile.py's, the opening-hours notation hours.py's). PyYAML is
imported only when a file is parsed: the edge agent imports this package without
needing it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from . import yamlfile
from .hours import (
    DAYS,
    Hours,
    OpeningHours,
    ResetAt,
    hours_table,
    pick_hours,
    within,
)
from .siteindex import SiteIndex, index_site
from .topics import check_id
from .yamlfile import FileError, Located, LocatedField

if TYPE_CHECKING:
    from .sitecheck import SiteProblem

__all__ = [
    "DAYS",
    "NAME_LANGS",
    "Door",
    "Hours",
    "Lang",
    "PresenceSensor",
    "Site",
    "SiteError",
    "Zone",
    "load_site",
    "parse_site",
    "site_files",
]

Lang = Literal["fi", "sv", "en"]
NAME_LANGS: Final[tuple[Lang, ...]] = ("fi", "sv", "en")
"""Languages a site file may give names in (`names:`): those the web pages and the alert
texts speak (footfall_web.i18n and footfall_alerts.wording take theirs from here)."""


class SiteError(FileError):
    """A site file that cannot be used: `file:line: reason`, as an operator needs it."""


def _check_names(value: dict[str, str]) -> dict[str, str]:
    # full match and lower case: "FI" or "fi-FI" would never be looked up
    for key in value:
        if key not in NAME_LANGS:
            raise LocatedField(
                f"unknown language {key!r} (use {', '.join(NAME_LANGS[:-1])} or "
                f"{NAME_LANGS[-1]}, in lower case)",
                (key,),
            )
    return value


def _id_of(what: str) -> AfterValidator:
    return AfterValidator(lambda value: check_id(value, what))


Names = Annotated[dict[str, Annotated[str, Field(min_length=1)]], AfterValidator(_check_names)]


# --- models --------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Zone(_Frozen):
    """A node of the zone tree; a crossing counts in every zone that contains its side."""

    id: Annotated[str, _id_of("zone id")]
    name: str
    names: Names = {}
    parent: str | None = None
    capacity: Annotated[StrictInt, Field(gt=0)] | None = None
    opening_hours: OpeningHours | None = None
    public: StrictBool = False
    """Whether the zone has a public crowding display (docs/spec.md §3); off unless the
    site file says so, so that no clinic is shown to the world by default."""

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_id(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "name" not in data and isinstance(data.get("id"), str):
            return {**data, "name": data["id"]}
        return data

    def name_in(self, lang: str | None) -> str:
        """The name in `lang` when the file gives one, else `name` (the default)."""
        return self.names.get(lang, self.name) if lang is not None else self.name

    @model_validator(mode="after")
    def _no_day_twice(self) -> Zone:
        if self.opening_hours:
            hours_table(self.opening_hours, f"zone {self.id!r}: ")
        return self


class Door(_Frozen):
    """A door between two zones; `outside` None is the street or the mall."""

    id: Annotated[str, _id_of("door id")]
    outside: str | None
    inside: str


class PresenceSensor(_Frozen):
    id: Annotated[str, _id_of("presence sensor id")]
    zone: str


class Site(_Frozen):
    """A whole site file; the helpers answer the questions counting and alerting ask."""

    site: Annotated[str, _id_of("site id")]
    name: str
    names: Names = {}
    timezone: str
    reset_at: ResetAt = "03:00"
    opening_hours: OpeningHours = {}
    zones: list[Zone]
    doors: list[Door] = []
    presence: list[PresenceSensor] = []

    def name_in(self, lang: str | None) -> str:
        """The site's name in `lang` when the file gives one, else `name`."""
        return self.names.get(lang, self.name) if lang is not None else self.name

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Helsinki)"
            ) from None
        return value

    @field_validator("zones")
    @classmethod
    def _some_zones(cls, value: list[Zone]) -> list[Zone]:
        if not value:
            raise ValueError("a site needs at least one zone")
        return value

    @model_validator(mode="after")
    def _references(self) -> Site:
        """Cross-references pydantic cannot see; each error points at the field at fault."""
        hours_table(self.opening_hours, "")
        _unique("zone", "zones", self.zones)
        zones = {zone.id: zone for zone in self.zones}
        for i, zone in enumerate(self.zones):
            if zone.parent is not None and zone.parent not in zones:
                raise Located(
                    f"zone {zone.id!r}: parent zone {zone.parent!r} does not exist",
                    ("zones", i, "parent"),
                )
        for i, zone in enumerate(self.zones):
            path = [zone.id]
            parent = zone.parent
            while parent is not None and parent not in path:
                path.append(parent)
                parent = zones[parent].parent
            if parent == zone.id:
                raise Located(
                    f"zone {zone.id!r}: parent cycle {' -> '.join([*path, zone.id])}",
                    ("zones", i, "parent"),
                )
        _unique("door", "doors", self.doors)
        for i, door in enumerate(self.doors):
            for side in ("inside", "outside"):
                target = getattr(door, side)
                if target is not None and target not in zones:
                    raise Located(
                        f"door {door.id!r}: {side} zone {target!r} does not exist",
                        ("doors", i, side),
                    )
            if door.outside == door.inside:
                raise Located(
                    f"door {door.id!r}: outside and inside are the same zone {door.inside!r}",
                    ("doors", i, "outside"),
                )
        _unique("presence sensor", "presence", self.presence)
        for i, sensor in enumerate(self.presence):
            if sensor.zone not in zones:
                raise Located(
                    f"presence sensor {sensor.id!r}: zone {sensor.zone!r} does not exist",
                    ("presence", i, "zone"),
                )
        return self

    # --- helpers --------------------------------------------------------------------

    @cached_property
    def _idx(self) -> SiteIndex:
        """Lookups built once (the model is frozen); a cached_property rather than a
        private attribute, so that it stays out of `==`."""
        return index_site(self)

    def zone(self, zone_id: str) -> Zone:
        return _get(self._idx.zones, zone_id, "zone", self.site)

    def door(self, door_id: str) -> Door:
        return _get(self._idx.doors, door_id, "door", self.site)

    def sensor(self, sensor_id: str) -> PresenceSensor:
        return _get(self._idx.sensors, sensor_id, "presence sensor", self.site)

    def fault_sources(self) -> frozenset[str]:
        """What a fault's `source` may name (docs/spec.md §2): a door's beam,
        `<door>/outer` or `<door>/inner`, or a presence sensor. Anything else is refused,
        so that no agent can make up tag values (series) without end."""
        return self._idx.fault_sources

    def lineage(self, zone_id: str) -> list[str]:
        """The zone, its parent, ..., the root."""
        return list(_get(self._idx.lineage, zone_id, "zone", self.site))

    def contains(self, zone_id: str, other: str | None) -> bool:
        """Whether `other` is `zone_id` or inside it (None, the street, is in no zone)."""
        self.zone(zone_id)
        return other is not None and zone_id in self.lineage(other)

    def door_effects(self, door_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The door algebra (§3): the zones an `in` through `door_id` enters (they contain
        its inside, not its outside) and the zones it leaves (the reverse); `out` swaps
        the two. Between two rooms of one parent the parent is in neither."""
        return _get(self._idx.effects, door_id, "door", self.site)

    def problems(self) -> list[SiteProblem]:
        """What will not count as meant although the file is valid (sitecheck.py):
        errors (it cannot work) first, then warnings."""
        from .sitecheck import site_problems

        return site_problems(self)

    def warnings(self) -> list[SiteProblem]:
        return [p for p in self.problems() if p.severity == "warning"]

    def errors(self) -> list[SiteProblem]:
        return [p for p in self.problems() if p.severity == "error"]

    @property
    def tz(self) -> ZoneInfo:
        return self._idx.tz

    def reset_time(self) -> dt.time:
        return self._idx.reset

    def hours_on(self, day: dt.date, zone_id: str | None = None) -> Hours | None:
        """Opening hours on `day`, or None when closed.

        The nearest zone on the lineage with an entry for that weekday wins, then the
        site's. A site without any opening hours is open all day; one with some is
        closed on the days it does not list.
        """
        index = self._idx
        levels = self.lineage(zone_id) if zone_id is not None else []
        return pick_hours(
            (index.hours[level] for level in levels), index.hours[None], day.weekday()
        )

    def is_open(self, when: dt.datetime, zone_id: str | None = None) -> bool:
        """Whether the site (or zone) is open at `when`, judged on the site's wall clock."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("is_open needs a timezone-aware datetime")
        local = when.astimezone(self.tz)
        return within(self.hours_on(local.date(), zone_id), local.time().replace(tzinfo=None))


def _unique(kind: str, field: str, items: Sequence[Zone | Door | PresenceSensor]) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.id in seen:
            raise Located(
                f"{kind} {item.id!r} is defined twice ({field}[{seen[item.id]}] and {field}[{i}])",
                (field, i, "id"),
            )
        seen[item.id] = i


T = TypeVar("T")


def _get(table: Mapping[str, T], key: str, kind: str, site: str) -> T:
    try:
        return table[key]
    except KeyError:
        raise KeyError(f"unknown {kind} {key!r} in site {site!r}") from None


# --- loading -------------------------------------------------------------------------


def site_files(folder: Path) -> list[Path]:
    """The site files in a folder: NAME.yaml (or .yml). Companions such as the alert
    rules, NAME.alerts.yaml, have a dot in the stem and are not sites."""
    return sorted(p for p in [*folder.glob("*.yaml"), *folder.glob("*.yml")] if "." not in p.stem)


def load_site(path: str | os.PathLike[str]) -> Site:
    """Read and check a site file; every failure, a missing file too, is a SiteError."""
    file, text = yamlfile.read_text(path, "site file", SiteError)
    return parse_site(text, file)


def parse_site(text: str, file: str = "<site>") -> Site:
    """Parse YAML text into a checked Site; SiteError names `file`, the line and why."""
    doc = yamlfile.parse_mapping(
        text,
        file,
        SiteError,
        what="site file",
        top_level="the top level must be a mapping (site:, name:, timezone:, zones:, ...), "
        "not {kind}",
    )
    if doc is None:
        raise SiteError(file, None, "the site file is empty")
    return doc.validate(Site, SiteError, {"outside": "use null for the street or the mall"})
