"""What draws visitors, before any of them is drawn: how popular each unit is and how
long people stay (by its name: a library holds people longer than a service point), how
many visits a building gets for its size, and the shape of a day's arrivals. The numbers
to tune when the simulated centre should look like another one; `visitors` turns them
into visits."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from footfall_contract.site import Site


@dataclass(frozen=True)
class UnitProfile:
    """How popular a zone is as a destination and how long people stay in it."""

    weight: float
    dwell_min: float


# First match wins, on "<zone id> <zone name>" in lower case: specific names first
# ("child health" before "health"). Weights are relative shares of first choices.
UNIT_RULES: Final[tuple[tuple[str, UnitProfile], ...]] = (
    (r"librar|kirjasto", UnitProfile(10.0, 40.0)),
    (r"kohtaamo|culture", UnitProfile(1.5, 35.0)),
    (r"kela", UnitProfile(2.5, 20.0)),
    (r"service[- ]point|palvelupiste", UnitProfile(2.5, 15.0)),
    (r"lab", UnitProfile(2.0, 15.0)),
    (r"mental", UnitProfile(1.0, 50.0)),
    (r"child|neuvola|maternity", UnitProfile(1.5, 45.0)),
    (r"dental", UnitProfile(1.0, 45.0)),
    (r"health", UnitProfile(2.5, 30.0)),
    (r"employment", UnitProfile(1.0, 25.0)),
    (r"ohjaamo|youth", UnitProfile(1.2, 30.0)),
)
DEFAULT_UNIT: Final = UnitProfile(1.0, 25.0)
COMMON_AREA: Final = UnitProfile(0.8, 8.0)
"""A zone that holds other zones (the lobby): the info desk, a coffee, a short wait."""

VISITS_PER_CAPACITY: Final = 4.0
"""Default visits a day per person of the building's capacity: Iso Omena's 900 places
and 1.3 million visits a year (about 3,600 a day)."""


def unit_profiles(
    site: Site, overrides: Mapping[str, UnitProfile] | None = None
) -> dict[str, UnitProfile]:
    """A profile for every zone: overrides, then the name rules, then the defaults."""
    parents = {z.parent for z in site.zones if z.parent is not None}
    out: dict[str, UnitProfile] = {}
    for z in site.zones:
        if overrides and z.id in overrides:
            out[z.id] = overrides[z.id]
            continue
        text = f"{z.id} {z.name}".lower()
        rule = next((p for pattern, p in UNIT_RULES if re.search(pattern, text)), None)
        out[z.id] = rule or (COMMON_AREA if z.id in parents else DEFAULT_UNIT)
    return out


def default_visits(site: Site) -> float:
    """Mean visits a day from the building's size, when not given."""
    roots = [z for z in site.zones if z.parent is None]
    capacity = sum(z.capacity or 0 for z in roots) or sum(z.capacity or 0 for z in site.zones)
    return VISITS_PER_CAPACITY * capacity if capacity else 1000.0


def hourly_shape(weekday: int, hour: float) -> float:
    """Relative arrival intensity at a local hour: weekdays have a lunch peak (12-13),
    a bigger after-school peak (15-17) and a smaller evening one; weekends one broad
    midday hump."""

    def bump(mu: float, sd: float) -> float:
        return math.exp(-0.5 * ((hour - mu) / sd) ** 2)

    if weekday < 5:
        return (
            0.35
            + 0.25 * bump(9.5, 1.2)
            + 0.9 * bump(12.25, 0.9)
            + 1.0 * bump(15.75, 1.1)
            + (0.35 * bump(18.0, 1.0))
        )
    return 0.45 + 0.8 * bump(13.0, 1.6)
