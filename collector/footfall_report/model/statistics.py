"""The annual statistics: visits per unit (zone) for a calendar year and which months
were estimated, closed or without data, as the Finnish public library statistics ask."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from footfall_contract.site import Site

from ..periods import month_period
from .build import select_zones
from .days import counted, day_figures, month_figures
from .figures import MonthFigure, iso
from .rows import DailyRow

__all__ = ["Statistics", "StatisticsUnit", "build_statistics"]


@dataclass(frozen=True)
class StatisticsUnit:
    zone: str
    name: str
    parent: str | None
    depth: int
    visits: int | None
    estimated_hours: int
    months: list[MonthFigure]

    @property
    def estimated_months(self) -> list[int]:
        """Months with at least one estimated hour."""
        return [m.month for m in self.months if m.estimated]

    @property
    def closed_months(self) -> list[int]:
        """Months without an open day."""
        return [m.month for m in self.months if m.closed]

    @property
    def no_data_months(self) -> list[int]:
        """Months with at least one open day that has no data."""
        return [m.month for m in self.months if m.days_no_data]

    def as_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "name": self.name,
            "parent": self.parent,
            "depth": self.depth,
            "visits": self.visits,
            "estimated_hours": self.estimated_hours,
            "estimated_months": self.estimated_months,
            "closed_months": self.closed_months,
            "no_data_months": self.no_data_months,
            "months": [m.as_dict() for m in self.months],
        }


@dataclass(frozen=True)
class Statistics:
    """Annual visits per unit (zone), as the Finnish public library statistics ask."""

    site: str
    site_name: str
    year: int
    generated_at: dt.datetime
    units: list[StatisticsUnit]

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "site_name": self.site_name,
            "year": self.year,
            "generated_at": iso(self.generated_at),
            "units": [u.as_dict() for u in self.units],
        }


def build_statistics(
    site: Site,
    year: int,
    daily: Iterable[DailyRow],
    now: dt.datetime,
    zones: Sequence[str] | None = None,
) -> Statistics:
    selected = select_zones(site, zones)
    today = now.astimezone(site.tz).date()
    by_zone: dict[str, dict[dt.date, DailyRow]] = defaultdict(dict)
    for row in daily:
        by_zone[row.zone][row.day] = row
    days_of_year = [d for m in range(1, 13) for d in month_period(year, m, site.tz).days()]
    units = []
    for zone_id in selected:
        zone = site.zone(zone_id)
        rows = by_zone[zone_id]
        days = day_figures(site, zone_id, days_of_year, rows, today)
        visits, _, est = counted(days)
        units.append(
            StatisticsUnit(
                zone=zone_id,
                name=zone.name,
                parent=zone.parent,
                depth=len(site.lineage(zone_id)) - 1,
                visits=visits,
                estimated_hours=est,
                months=month_figures(days),
            )
        )
    return Statistics(
        site=site.site,
        site_name=site.name,
        year=year,
        generated_at=now.astimezone(site.tz),
        units=units,
    )
