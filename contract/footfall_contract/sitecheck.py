"""Checks of a valid site file for what will not count as meant (docs/spec.md §3,
"Checks"). A site that loads can still describe a building that cannot be counted: a
zone no counted door leads into keeps a count of 0, a room reached only through doors
without sensors is never counted in. Pure functions of the `Site`, so that
`footfall-collector check-site`, the collector at start, the web board and the alerts
service can all say the same thing.

- error: it cannot work. Nothing to count (no doors, no presence sensors); zones that no
  counted door connects to the street or to an area without counted doors (an island:
  whoever is in there came in uncounted, so their first counted step out drives a
  count below 0 and every figure of those zones is wrong).
- warning: it works, but likely not as meant. A zone no door leads into (its count
  stays 0; presence sensors alone give only in use / free); a zone whose capacity is
  above that of a zone containing it (which is then full first)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .site import Site

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class SiteProblem:
    severity: Severity
    loc: tuple[str | int, ...]
    """Where in the site file: ("zones", 3), ("doors", 0, "inside"); () for the site."""
    message: str

    @property
    def where(self) -> str:
        """The location as the site file's errors spell it: `zones[3]`, `doors[0].inside`."""
        text = ""
        for part in self.loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text

    def as_json(self) -> dict[str, str]:
        return {"severity": self.severity, "where": self.where, "message": self.message}


def site_problems(site: Site) -> list[SiteProblem]:
    """Errors first, then warnings, each in site-file order."""
    problems = _errors(site) + _warnings(site)
    return sorted(problems, key=lambda p: p.severity != "error")


def counted_zones(site: Site) -> set[str]:
    """The zones whose count some door changes (in either direction): the door
    algebra's entered and left zones of every door."""
    found: set[str] = set()
    for door in site.doors:
        entered, left = site.door_effects(door.id)
        found.update(entered, left)
    return found


def _errors(site: Site) -> list[SiteProblem]:
    if not site.doors and not site.presence:
        return [
            SiteProblem(
                "error",
                (),
                "the site has no doors and no presence sensors: there is nothing to count",
            )
        ]
    out: list[SiteProblem] = []
    reachable = _reachable(site)
    index = {z.id: i for i, z in enumerate(site.zones)}
    counted = counted_zones(site)
    islands = _islands(site, [z.id for z in site.zones if z.id in counted - reachable])
    for island in islands:
        doors = [
            d.id
            for d in site.doors
            if d.inside in island or (d.outside is not None and d.outside in island)
        ]
        names = ", ".join(repr(z) for z in island)
        one = len(island) == 1
        out.append(
            SiteProblem(
                "error",
                ("zones", index[island[0]]),
                f"zone{'' if one else 's'} {names} {'is' if one else 'are'} reached only "
                f"through doors without counting: no counted door connects "
                f"{'it' if one else 'them'} to the street (outside: null) or to a zone no "
                f"counted door bounds, so whoever walks in is never counted in and the "
                f"first counted step out (door{'s' if len(doors) > 1 else ''} "
                f"{', '.join(doors)}) drives the count below 0. Add the door people come "
                f"in by, or set the outside of one of these doors to the zone they come "
                f"from",
            )
        )
    return out


def _warnings(site: Site) -> list[SiteProblem]:
    out: list[SiteProblem] = []
    counted = counted_zones(site)
    zones = {z.id: z for z in site.zones}
    nothing = not site.doors and not site.presence  # the error says it all
    for i, zone in enumerate(site.zones):
        if zone.id not in counted and not nothing:
            sensors = [s.id for s in site.presence if s.zone == zone.id]
            many = len(sensors) > 1
            also = (
                f"; its presence sensor{'s' if many else ''} ({', '.join(sensors)}) "
                f"show{'' if many else 's'} only whether it is in use"
                if sensors
                else ""
            )
            out.append(
                SiteProblem(
                    "warning",
                    ("zones", i),
                    f"zone {zone.id!r}: no door leads into it, so its count stays 0{also}",
                )
            )
        if zone.capacity is None:
            continue
        for parent in site.lineage(zone.id)[1:]:
            limit = zones[parent].capacity
            if limit is None:
                continue
            if zone.capacity > limit:
                out.append(
                    SiteProblem(
                        "warning",
                        ("zones", i, "capacity"),
                        f"zone {zone.id!r}: capacity {zone.capacity} is above the capacity "
                        f"{limit} of {parent!r}, which contains it: {parent!r} is full first",
                    )
                )
            break  # the nearest zone with a capacity is the one to compare with
    return out


def _reachable(site: Site) -> set[str]:
    """Zones a person can be counted into from the street or from an area no counted
    door bounds (a building whose entrance has no sensors): through doors in either
    direction, and from a zone to the zones containing it (being in the library is
    being in the centre), never the other way (being in the centre is not being in the
    library)."""
    counted = counted_zones(site)
    start = [z.id for z in site.zones if z.id not in counted]
    links: dict[str | None, set[str | None]] = {}
    for door in site.doors:
        links.setdefault(door.outside, set()).add(door.inside)
        links.setdefault(door.inside, set()).add(door.outside)
    seen: set[str | None] = {None, *start}
    queue: deque[str | None] = deque(seen)
    while queue:
        here = queue.popleft()
        nxt: set[str | None] = set(links.get(here, ()))
        if here is not None and site.zone(here).parent is not None:
            nxt.add(site.zone(here).parent)
        for there in nxt - seen:
            seen.add(there)
            queue.append(there)
    return {z for z in seen if z is not None}


def _islands(site: Site, zones: list[str]) -> list[list[str]]:
    """The zones grouped by the doors between them, in site-file order."""
    left = set(zones)
    out: list[list[str]] = []
    for first in zones:
        if first not in left:
            continue
        group = {first}
        queue = deque([first])
        while queue:
            here = queue.popleft()
            for d in site.doors:
                for a, b in ((d.inside, d.outside), (d.outside, d.inside)):
                    if a == here and b in left and b not in group:
                        group.add(b)
                        queue.append(b)
        left -= group
        out.append([z for z in zones if z in group])
    return out


def line_of(text: str, loc: tuple[str | int, ...]) -> int | None:
    """The line of the site file's YAML `text` that `loc` points at (None for the
    whole file, or when the text does not parse)."""
    if not loc:
        return None
    import yaml

    from .yamlfile import node_line, walk_loc

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    return None if root is None else node_line(walk_loc(root, loc))
