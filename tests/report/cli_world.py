"""The world the CLI tests share: known crossings of October and November 2026 at Iso
Omena and their rollups in a real InfluxDB (one per test package run, started by the
`world` fixture in conftest.py), the CLI run in-process, and the truth each test
checks against, counted from the scenario (tests/report/data.py), not by footfall_report."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from footfall_contract.site import Site
from footfall_report.cli import main
from footfall_sim.localservices import Influx
from tests.report.data import ISO_OMENA, Scenario, build_month, iso_omena, load, local_day, ms

NOW = "2026-12-01T06:30:00Z"
NOV_17 = dt.date(2026, 11, 17)
NOV_5 = dt.date(2026, 11, 5)
OCT_25 = dt.date(2026, 10, 25)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class World:
    url: str
    site: Site
    oct: Scenario
    nov: Scenario


def local_ms(day: dt.date, hour: int, minute: int = 0, fold: int = 0) -> int:
    site = iso_omena()
    return ms(dt.datetime.combine(day, dt.time(hour, minute, fold=fold), tzinfo=site.tz))


@contextmanager
def running_world(folder: Path) -> Iterator[World]:
    """InfluxDB in `folder` with October and November loaded; killed on the way out."""
    server = Influx(folder / "influxdb")
    server.start()
    try:
        site = iso_omena()
        # two people come in at 03:30 on 25 Oct, once in each of the two 03:00 hours
        dst = [
            (local_ms(OCT_25, 3, 30, fold=0), "library-mall", "in"),
            (local_ms(OCT_25, 3, 30, fold=1), "library-mall", "in"),
        ]
        assert dst[1][0] - dst[0][0] == 3_600_000
        october = build_month(site, 2026, 10, seed=8, extra=dst)
        october.outside_crossings = []
        november = build_month(site, 2026, 11, seed=7)
        # no rollups at all on 17 Nov, and none for HUSLAB on the 11th either
        november.missing = {(z.id, NOV_17) for z in site.zones} | {
            ("huslab", dt.date(2026, 11, 11))
        }
        for hour in (10, 11):  # Kela's agent offline 10:00-12:00 on 5 Nov
            november.hours["kela"][local_ms(NOV_5, hour)].estimated = True
        # a year before: the library only, 25 a day, one estimated hour on the 3rd
        november.extra_daily = [
            ("library", dt.date(2025, 11, d), 25, 1 if d == 3 else 0) for d in range(1, 31)
        ]
        load(server.url, october, november)
        yield World(server.url, site, october, november)
    finally:
        server.kill()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["--site", str(ISO_OMENA), "--now", NOW, *args])
    out, err = capsys.readouterr()
    return rc, out, err


# --- the truth, from the scenario ------------------------------------------------------


def visits(sc: Scenario, zone: str) -> int:
    return sc.visits(zone)


def exits(sc: Scenario, zone: str) -> int:
    return sum(
        h.exits
        for s, h in sc.hours[zone].items()
        if (zone, local_day(s, sc.site)) not in sc.missing
    )


def open_days(world: World, zone: str) -> tuple[int, int, int]:
    """(open, closed, no data) days of November."""
    days = world.nov.days
    is_open = [world.site.hours_on(d, zone) is not None for d in days]
    no_data = sum(
        1 for d, o in zip(days, is_open, strict=True) if o and (zone, d) in world.nov.missing
    )
    return sum(is_open), len(days) - sum(is_open), no_data


def change(now: int, then: int) -> float:
    return round((now - then) / then * 100, 1)


def profile_mean(sc: Scenario, zone: str, weekday: int, hour: int) -> float | None:
    values = []
    for day in sc.days:
        if day.weekday() != weekday or (zone, day) in sc.missing:
            continue
        values.append(sc.hours[zone][local_ms(day, hour)].entries)
    return round(sum(values) / len(values), 2) if values else None


def zone_ids(world: World) -> list[str]:
    return [z.id for z in world.site.zones]


def script() -> str:
    """The installed `footfall-report` console script beside this Python."""
    return str(Path(sys.executable).with_name("footfall-report"))
