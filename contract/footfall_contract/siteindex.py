"""The lookups counting and alerting ask of a site, built once per loaded file: each
zone's lineage, the door algebra (docs/spec.md §3: the zones a crossing enters and
leaves), the fault sources a device may name, and the opening-hours tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .hours import WeekHours, hours_table, parse_time
from .messages import BEAMS

if TYPE_CHECKING:
    from .site import Door, PresenceSensor, Site, Zone


@dataclass(frozen=True)
class SiteIndex:
    zones: dict[str, Zone]
    doors: dict[str, Door]
    sensors: dict[str, PresenceSensor]
    fault_sources: frozenset[str]
    lineage: dict[str, tuple[str, ...]]
    """zone -> (the zone, its parent, ..., the root)"""
    effects: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
    """door -> (zones an `in` enters, zones it leaves)"""
    hours: dict[str | None, WeekHours]
    """zone (None: the site) -> its own opening hours by weekday"""
    tz: ZoneInfo
    reset: dt.time


def index_site(site: Site) -> SiteIndex:
    """Called once the model has checked the references (every parent and door side
    exists, no cycles)."""
    zones = {z.id: z for z in site.zones}
    lineage: dict[str, tuple[str, ...]] = {}
    for zone in site.zones:
        chain = [zone.id]
        while (parent := zones[chain[-1]].parent) is not None and parent not in chain:
            chain.append(parent)
        lineage[zone.id] = tuple(chain)
    hours: dict[str | None, WeekHours] = {None: hours_table(site.opening_hours, "")}
    for zone in site.zones:
        hours[zone.id] = hours_table(zone.opening_hours or {}, "")

    def inside_of(zone_id: str, side: str | None) -> bool:
        return side is not None and zone_id in lineage[side]

    def crossing(into: str | None, away: str | None) -> tuple[str, ...]:
        return tuple(
            z.id for z in site.zones if inside_of(z.id, into) and not inside_of(z.id, away)
        )

    effects = {
        d.id: (crossing(d.inside, d.outside), crossing(d.outside, d.inside)) for d in site.doors
    }
    return SiteIndex(
        zones=zones,
        effects=effects,
        doors={d.id: d for d in site.doors},
        sensors={s.id: s for s in site.presence},
        fault_sources=frozenset(
            [f"{d.id}/{beam}" for d in site.doors for beam in BEAMS] + [s.id for s in site.presence]
        ),
        lineage=lineage,
        hours=hours,
        tz=ZoneInfo(site.timezone),
        reset=parse_time(site.reset_at, "reset_at"),
    )
