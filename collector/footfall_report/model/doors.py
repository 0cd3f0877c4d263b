"""Per-door figures from the raw crossings: every door of the site file (or of the chosen
zones), doors found only in the data, and whether the raw data still cover the period."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence

from footfall_contract.site import Site

from ..periods import Period
from .figures import DoorFigure, Doors, DoorStatus
from .rows import DoorCount

__all__ = ["door_figures"]


def door_figures(
    site: Site,
    period: Period,
    selected: list[str],
    zones: Sequence[str] | None,
    counts: Iterable[DoorCount] | None,
    available_from: dt.date | None,
) -> Doors:
    names = {z.id: z.name for z in site.zones}
    scope = set(selected)
    wanted = [d for d in site.doors if not zones or d.inside in scope or (d.outside or "") in scope]
    if counts is None:
        figures = [
            DoorFigure(
                d.id, d.outside, d.inside, _door_label(d.outside, d.inside, names), None, None
            )
            for d in wanted
        ]
        return Doors("not_available", available_from, figures)
    by_door: dict[str, dict[str, int]] = defaultdict(dict)
    for c in counts:
        by_door[c.door][c.direction] = by_door[c.door].get(c.direction, 0) + c.count
    figures = [
        DoorFigure(
            d.id,
            d.outside,
            d.inside,
            _door_label(d.outside, d.inside, names),
            by_door.get(d.id, {}).get("in", 0),
            by_door.get(d.id, {}).get("out", 0),
        )
        for d in wanted
    ]
    if not zones:
        known = {d.id for d in site.doors}
        for door in sorted(set(by_door) - known):
            figures.append(
                DoorFigure(
                    door,
                    None,
                    None,
                    "not in the site file",
                    by_door[door].get("in", 0),
                    by_door[door].get("out", 0),
                )
            )
    partial = available_from is not None and available_from > period.first
    status: DoorStatus = "partial" if partial else "available"
    return Doors(status, available_from, figures)


def _door_label(outside: str | None, inside: str, names: dict[str, str]) -> str:
    return f"{names.get(outside, outside) if outside else 'outside'} → {names.get(inside, inside)}"
