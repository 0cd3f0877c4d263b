"""The site model (docs/spec.md §3): one YAML file per site, so a new building is data, not code.

A bad site file must stop the program at start with the file, the line and the reason,
so every problem becomes a `SiteError` pointing at the YAML node that caused it.
PyYAML is imported only when a file is parsed: the edge agent imports this package
without needing it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from .messages import BEAMS
from .topics import check_id

if TYPE_CHECKING:
    from yaml import MarkedYAMLError
    from yaml.nodes import Node

    from .sitecheck import SiteProblem

__all__ = [
    "Door",
    "PresenceSensor",
    "Site",
    "SiteError",
    "Zone",
    "load_site",
    "parse_site",
]

DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names used in opening-hours keys, indexed by `date.weekday()`."""
NAME_LANGS: Final = ("fi", "sv", "en")
"""Languages a site file may give names in (`names:`), those the displays speak."""

# Used with fullmatch: `$` would accept a trailing newline.
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_HOURS = re.compile(r"(\d\d:\d\d)-(\d\d:\d\d)")
_ALL_DAY_END: Final = dt.time.max
"""`hours_on` end for "...-24:00" and for a site without any opening hours."""

Loc = tuple[str | int, ...]
Hours = tuple[dt.time, dt.time]


class SiteError(ValueError):
    """A site file that cannot be used: `file:line: reason`, as an operator needs it."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {reason}")

    def __reduce__(self) -> tuple[type[SiteError], tuple[str, int | None, str]]:
        return (type(self), (self.file, self.line, self.reason))


class _Located(ValueError):
    """A validator's error that knows where in the file it belongs (relative `loc`).

    Its message is a complete reason, so it is shown without the path prefix.
    """

    def __init__(self, message: str, loc: Loc) -> None:
        super().__init__(message)
        self.loc = loc


class _LocatedField(_Located):
    """A `_Located` whose message is about the field it points at: shown after its path
    (the validator of a nested field does not know the path above it)."""


# --- field formats -------------------------------------------------------------------


def _quoted_hint(value: object, what: str) -> None:
    # YAML 1.1 reads an unquoted 03:00 as the number 180 (base 60): say so.
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f'{what} must be a quoted string such as "03:00" or "08:00-20:00"')


def _parse_time(value: str, what: str) -> dt.time:
    match = _TIME.fullmatch(value)
    if not match:
        raise ValueError(f'{what} must be a time "HH:MM" (24 h), not {value!r}')
    return dt.time(int(match[1]), int(match[2]))


def _parse_days(spec: str) -> frozenset[int]:
    """Weekdays of a key like "mon-fri", "sat", "mon,wed" or "fri-mon" (wraps)."""
    days: set[int] = set()
    for part in spec.split(","):
        ends = [p.strip() for p in part.split("-")]
        unknown = [p for p in ends if p not in DAYS]
        if len(ends) > 2 or unknown:
            raise ValueError(
                f"bad day spec {spec!r}: use day names {', '.join(DAYS)}, "
                "ranges like mon-fri and lists like mon,wed"
            )
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    return frozenset(days)


def _parse_hours(value: str) -> Hours | None:
    """ "08:00-20:00" -> (start, end); "closed" -> None; end may be "24:00"."""
    if value == "closed":
        return None
    match = _HOURS.fullmatch(value)
    if not match:
        raise ValueError(f'opening hours must be "HH:MM-HH:MM" or "closed", not {value!r}')
    start = _parse_time(match[1], "opening time")
    end = _ALL_DAY_END if match[2] == "24:00" else _parse_time(match[2], "closing time")
    if end <= start:
        raise ValueError(f"opening hours {value!r} end before they start")
    return (start, end)


def _check_day_spec(value: str) -> str:
    _parse_days(value)
    return value


def _check_hours(value: str) -> str:
    _parse_hours(value)
    return value


def _check_reset(value: str) -> str:
    # Hourly visits are whole local hours of one reset window each (docs/history.md).
    if _parse_time(value, "reset_at").minute:
        raise ValueError(f'reset_at must be on the hour ("03:00"), not {value!r}')
    return value


def _check_names(value: dict[str, str]) -> dict[str, str]:
    # full match and lower case: "FI" or "fi-FI" would never be looked up
    for key in value:
        if key not in NAME_LANGS:
            raise _LocatedField(
                f"unknown language {key!r} (use {', '.join(NAME_LANGS[:-1])} or "
                f"{NAME_LANGS[-1]}, in lower case)",
                (key,),
            )
    return value


def _id_of(what: str) -> AfterValidator:
    return AfterValidator(lambda value: check_id(value, what))


def _hours_hint(value: object) -> object:
    _quoted_hint(value, "opening hours")
    return value


def _reset_hint(value: object) -> object:
    _quoted_hint(value, "reset_at")
    return value


DaySpec = Annotated[str, AfterValidator(_check_day_spec)]
HoursSpec = Annotated[str, BeforeValidator(_hours_hint), AfterValidator(_check_hours)]
OpeningHours = dict[DaySpec, HoursSpec]
Names = Annotated[dict[str, Annotated[str, Field(min_length=1)]], AfterValidator(_check_names)]


def _hours_table(hours: Mapping[str, str], who: str) -> dict[int, Hours | None]:
    """Weekday -> hours; two keys naming the same weekday would make the answer depend
    on key order, so that is an error at the second key."""
    table: dict[int, Hours | None] = {}
    first_key: dict[int, str] = {}
    for key, value in hours.items():
        for day in sorted(_parse_days(key)):
            if day in first_key:
                raise _Located(
                    f"{who}opening_hours: {DAYS[day]} is given twice "
                    f"({first_key[day]!r} and {key!r})",
                    ("opening_hours", key),
                )
            first_key[day] = key
            table[day] = _parse_hours(value)
    return table


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
            _hours_table(self.opening_hours, f"zone {self.id!r}: ")
        return self


class Door(_Frozen):
    """A door between two zones; `outside` None is the street or the mall."""

    id: Annotated[str, _id_of("door id")]
    outside: str | None
    inside: str


class PresenceSensor(_Frozen):
    id: Annotated[str, _id_of("presence sensor id")]
    zone: str


@dataclass(frozen=True)
class _Index:
    zones: dict[str, Zone]
    doors: dict[str, Door]
    sensors: dict[str, PresenceSensor]
    fault_sources: frozenset[str]
    lineage: dict[str, tuple[str, ...]]
    effects: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
    hours: dict[str | None, dict[int, Hours | None]]
    tz: ZoneInfo
    reset: dt.time


class Site(_Frozen):
    """A whole site file; the helpers answer the questions counting and alerting ask."""

    site: Annotated[str, _id_of("site id")]
    name: str
    names: Names = {}
    timezone: str
    reset_at: Annotated[str, BeforeValidator(_reset_hint), AfterValidator(_check_reset)] = "03:00"
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
        _hours_table(self.opening_hours, "")
        _unique("zone", "zones", self.zones)
        zones = {zone.id: zone for zone in self.zones}
        for i, zone in enumerate(self.zones):
            if zone.parent is not None and zone.parent not in zones:
                raise _Located(
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
                raise _Located(
                    f"zone {zone.id!r}: parent cycle {' -> '.join([*path, zone.id])}",
                    ("zones", i, "parent"),
                )
        _unique("door", "doors", self.doors)
        for i, door in enumerate(self.doors):
            for side in ("inside", "outside"):
                target = getattr(door, side)
                if target is not None and target not in zones:
                    raise _Located(
                        f"door {door.id!r}: {side} zone {target!r} does not exist",
                        ("doors", i, side),
                    )
            if door.outside == door.inside:
                raise _Located(
                    f"door {door.id!r}: outside and inside are the same zone {door.inside!r}",
                    ("doors", i, "outside"),
                )
        _unique("presence sensor", "presence", self.presence)
        for i, sensor in enumerate(self.presence):
            if sensor.zone not in zones:
                raise _Located(
                    f"presence sensor {sensor.id!r}: zone {sensor.zone!r} does not exist",
                    ("presence", i, "zone"),
                )
        return self

    # --- helpers --------------------------------------------------------------------

    @cached_property
    def _idx(self) -> _Index:
        """Lookups built once (the model is frozen); a cached_property rather than a
        private attribute, so that it stays out of `==`."""
        zones = {z.id: z for z in self.zones}
        lineage: dict[str, tuple[str, ...]] = {}
        for zone in self.zones:
            chain = [zone.id]
            while (parent := zones[chain[-1]].parent) is not None and parent not in chain:
                chain.append(parent)
            lineage[zone.id] = tuple(chain)
        hours: dict[str | None, dict[int, Hours | None]] = {
            None: _hours_table(self.opening_hours, "")
        }
        for zone in self.zones:
            hours[zone.id] = _hours_table(zone.opening_hours or {}, "")

        def within(zone_id: str, other: str | None) -> bool:
            return other is not None and zone_id in lineage[other]

        effects = {
            d.id: (
                tuple(
                    z.id
                    for z in self.zones
                    if within(z.id, d.inside) and not within(z.id, d.outside)
                ),
                tuple(
                    z.id
                    for z in self.zones
                    if within(z.id, d.outside) and not within(z.id, d.inside)
                ),
            )
            for d in self.doors
        }
        return _Index(
            zones=zones,
            effects=effects,
            doors={d.id: d for d in self.doors},
            sensors={s.id: s for s in self.presence},
            fault_sources=frozenset(
                [f"{d.id}/{beam}" for d in self.doors for beam in BEAMS]
                + [s.id for s in self.presence]
            ),
            lineage=lineage,
            hours=hours,
            tz=ZoneInfo(self.timezone),
            reset=_parse_time(self.reset_at, "reset_at"),
        )

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
        weekday = day.weekday()
        for level in self.lineage(zone_id) if zone_id is not None else []:
            if weekday in index.hours[level]:
                return index.hours[level][weekday]
        if not index.hours[None]:
            return (dt.time(0, 0), _ALL_DAY_END)
        return index.hours[None].get(weekday)

    def is_open(self, when: dt.datetime, zone_id: str | None = None) -> bool:
        """Whether the site (or zone) is open at `when`, judged on the site's wall clock."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("is_open needs a timezone-aware datetime")
        local = when.astimezone(self.tz)
        hours = self.hours_on(local.date(), zone_id)
        if hours is None:
            return False
        start, end = hours
        now = local.time().replace(tzinfo=None)
        return start <= now and (now < end or end == _ALL_DAY_END)


def _unique(kind: str, field: str, items: Sequence[Zone | Door | PresenceSensor]) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.id in seen:
            raise _Located(
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


def read_text(
    path: str | os.PathLike[str], what: str, error: type[SiteError] = SiteError
) -> tuple[str, str]:
    """(file name, UTF-8 text) of a YAML file; a missing, unreadable or non-UTF-8 file is
    an `error` naming the file (and the line of the first bad byte)."""
    file = os.fspath(path)
    try:
        data = Path(file).read_bytes()
    except FileNotFoundError:
        raise error(file, None, f"no such {what}") from None
    except OSError as exc:
        raise error(file, None, f"cannot read the {what}: {exc.strerror}") from None
    try:
        return file, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(file, line, f"the {what} is not UTF-8 text") from None


def load_site(path: str | os.PathLike[str]) -> Site:
    """Read and check a site file; every failure, a missing file too, is a SiteError."""
    file, text = read_text(path, "site file")
    return parse_site(text, file)


def parse_site(text: str, file: str = "<site>") -> Site:
    """Parse YAML text into a checked Site; SiteError names `file`, the line and why."""
    try:
        import yaml
    except ImportError:
        raise ModuleNotFoundError(
            "reading a site file needs PyYAML (install footfall[collector])", name="yaml"
        ) from None

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(file, exc) from None
    except yaml.YAMLError as exc:
        raise SiteError(file, None, f"invalid YAML: {exc}") from None
    if root is None:
        raise SiteError(file, None, "the site file is empty")
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        raise SiteError(
            file,
            _line(root),
            f"the top level must be a mapping (site:, name:, timezone:, zones:, ...), not {kind}",
        )
    _check_duplicate_keys(file, root)

    loader = yaml.SafeLoader("")
    try:
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(file, exc) from None
    finally:
        loader.dispose()

    try:
        return Site.model_validate(data)
    except ValidationError as exc:
        raise _schema_error(file, root, exc) from None


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _syntax_error(file: str, exc: MarkedYAMLError) -> SiteError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    reason = f"invalid YAML: {exc.problem or exc.context}"
    if exc.problem and exc.context and exc.problem.startswith("but "):
        reason = f"invalid YAML: {exc.context}, {exc.problem}"
    elif exc.problem and exc.context:
        context_mark = exc.context_mark
        if context_mark is not None and context_mark.line + 1 != line:
            reason += f" ({exc.context} that starts on line {context_mark.line + 1})"
        else:
            reason += f" ({exc.context})"
    return SiteError(file, line, reason)


def _check_duplicate_keys(file: str, root: Node) -> None:
    """PyYAML keeps the last of two equal keys silently; a site file must not."""
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    seen_nodes: set[int] = set()

    def walk(node: Node, path: str) -> None:
        if id(node) in seen_nodes:  # aliases share nodes and may even be recursive
            return
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[tuple[str, str], Node] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if (key.tag, key.value) in first:
                        where = f" in {path}" if path else ""
                        previous = _line(first[key.tag, key.value])
                        raise SiteError(
                            file,
                            _line(key),
                            f"duplicate key {key.value!r}{where} (first on line {previous})",
                        )
                    first[key.tag, key.value] = key
                    walk(value, f"{path}.{key.value}" if path else str(key.value))
                else:
                    walk(value, path)
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")

    walk(root, "")


def _walk_loc(root: Node, loc: Loc) -> Node:
    """The node a pydantic error location points at: the key of a mapping entry, the
    item of a list, or the deepest existing parent when the field is missing."""
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    node = root
    at = root
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(node, MappingNode):
            for key, value in reversed(node.value):
                if isinstance(key, ScalarNode) and key.value == str(part):
                    node, at = value, key
                    break
            else:
                break
        elif isinstance(node, SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = at = node.value[part]
        else:
            break
    return at


def _format_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "[key]":
            text += f".{part}" if text else part
    return text


def _iter_problems(exc: ValidationError) -> Iterator[tuple[Loc, str]]:
    for err in exc.errors():
        loc: Loc = tuple(err["loc"])
        error = err.get("ctx", {}).get("error")
        if isinstance(error, _LocatedField):
            full = (*loc, *error.loc)
            yield full, f"{_format_loc(full)}: {error}"
            continue
        if isinstance(error, _Located):
            yield (*loc, *error.loc), str(error)
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            msg = "Input should be a mapping (key: value)"
        elif err["type"] == "bool_type":
            msg += " (true or false)"
        elif err["type"] == "missing" and loc[-1:] == ("outside",):
            msg += " (use null for the street or the mall)"
        path = _format_loc(loc)
        yield loc, f"{path}: {msg}" if path else msg


def _schema_error(file: str, root: Node, exc: ValidationError) -> SiteError:
    """The first problem in file order (pydantic reports in field order)."""
    problems = [(_line(_walk_loc(root, loc)), reason) for loc, reason in _iter_problems(exc)]
    line, reason = min(problems, key=lambda problem: problem[0])
    return SiteError(file, line, reason)
