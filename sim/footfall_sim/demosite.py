"""The demo's copy of a site: the same building in a time zone where it is now well
inside opening hours, so that `deploy/dev/demo.sh` shows the product as it looks during
the day whatever the hour. Every part of the demo (history, agents, collector, web board,
alerts, reports) reads the copy, so they all agree on what "open" and "today" mean.

    python -m footfall_sim.demosite --site deploy/sites/iso-omena.yaml --out var/demo/site

The copy differs from the site file in two things only:

- `timezone`: the site's own when it is open there now (at least 1.5 h after the last
  zone opened and 3 h before the first closes), else a fixed offset `Etc/GMT-N` (UTC+N,
  no daylight saving) where it is;
- on a day when no offset finds every zone open (a Sunday at Iso Omena), the opening
  hours are turned by whole days: the copy's today gets the hours of the next day on
  which everything is open.

The rules file `SITE.alerts.yaml` is copied beside it unchanged: its quiet and active
hours are site-local, so they move with the time zone. The copy is kept while it still
has every zone open and an hour to go; a new one (`new` on stdout) means that the demo's
history belongs to another clock, and with `--forget-data` the site's points are then
deleted from InfluxDB before the demo writes its history again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from footfall_collector.influx import PermanentWriteError, RetryableWriteError
from footfall_contract.hours import hours_text, minute_of_day
from footfall_contract.site import DAYS, Site, SiteError, load_site, parse_site
from footfall_runtime.settings import ConfigError

GOOD_SINCE_OPEN = dt.timedelta(hours=1.5)
GOOD_UNTIL_CLOSE = dt.timedelta(hours=3)
KEEP_UNTIL_CLOSE = dt.timedelta(hours=1)
"""A copy is reused while every zone it had open is still open this much longer."""
OFFSETS = range(-12, 15)
"""Whole-hour UTC offsets with an `Etc/GMT` zone: UTC-12 .. UTC+14."""
STATE = "demo-clock.json"


@dataclass(frozen=True)
class Clock:
    """Where the copy lives: a time zone, and how many days its week is turned."""

    timezone: str
    rotate_days: int = 0


@dataclass(frozen=True)
class Fit:
    """How well a clock shows the site open now."""

    clock: Clock
    local: dt.datetime
    zones_open: int
    since_open: dt.timedelta
    until_close: dt.timedelta

    @property
    def good(self) -> bool:
        return self.since_open >= GOOD_SINCE_OPEN and self.until_close >= GOOD_UNTIL_CLOSE


def etc_zone(offset_h: int) -> str:
    """UTC+N as an IANA name: POSIX signs are inverted, `Etc/GMT-9` is UTC+9."""
    return "Etc/GMT" if offset_h == 0 else f"Etc/GMT{-offset_h:+d}"


def fit(site: Site, clock: Clock, now: dt.datetime) -> Fit:
    """The zones open at `now` on the clock's wall, and the narrowest margins among them:
    since the latest opening, until the earliest closing."""
    local = now.astimezone(ZoneInfo(clock.timezone))
    day = local.date() + dt.timedelta(days=clock.rotate_days)
    wall = dt.datetime.combine(dt.date.min, local.time().replace(tzinfo=None))
    opened: list[dt.timedelta] = []
    closing: list[dt.timedelta] = []
    for zone in site.zones:
        hours = site.hours_on(day, zone.id)
        if hours is None:
            continue
        start = dt.datetime.combine(dt.date.min, hours[0])
        end = dt.datetime.combine(dt.date.min, dt.time(0)) + dt.timedelta(
            minutes=minute_of_day(hours[1])
        )
        if start <= wall < end:
            opened.append(wall - start)
            closing.append(end - wall)
    if not opened:
        return Fit(clock, local, 0, dt.timedelta(0), dt.timedelta(0))
    return Fit(clock, local, len(opened), min(opened), min(closing))


def choose(site: Site, now: dt.datetime) -> Fit:
    """The clock that shows the most zones open, well inside their hours if it can;
    among those the site's own time zone, then an unturned week, then the most of the
    day still ahead."""
    real = now.astimezone(site.tz).utcoffset() or dt.timedelta(0)

    def key(f: Fit) -> tuple[Any, ...]:
        offset = f.local.utcoffset() or dt.timedelta(0)
        return (
            f.zones_open,
            f.good,
            f.clock.timezone == site.timezone,
            f.clock.rotate_days == 0,
            min(1.0, f.since_open / (2 * GOOD_SINCE_OPEN), f.until_close / GOOD_UNTIL_CLOSE),
            f.until_close,
            -f.clock.rotate_days,
            -abs(offset - real),
        )

    zones = [site.timezone, *(etc_zone(h) for h in OFFSETS)]
    fits = [fit(site, Clock(tz, rot), now) for rot in range(7) for tz in zones]
    return max(fits, key=key)


def turned_hours(site: Site, zone_id: str | None, days: int) -> dict[str, str]:
    """One level's opening hours (the site's, or a zone's own and what it inherits) with
    each weekday given the hours of the weekday `days` later; days with the same hours
    share a key ("mon,tue,wed")."""
    monday = dt.date(2024, 1, 1)
    by_hours: dict[str, list[int]] = {}
    for weekday in range(7):
        hours = site.hours_on(monday + dt.timedelta(days=weekday + days), zone_id)
        by_hours.setdefault(hours_text(hours), []).append(weekday)
    return {day_spec(days_of): text for text, days_of in by_hours.items()}


def day_spec(weekdays: list[int]) -> str:
    """Weekdays as a key of opening hours: runs as ranges, wrapping past Sunday
    ("sun-thu"), the rest as a list ("mon,wed")."""
    days = set(weekdays)
    if len(days) == 7:
        return "mon-sun"
    runs: list[str] = []
    for first in sorted(days):
        if (first - 1) % 7 in days:
            continue  # not the start of a run
        last = first
        while (last + 1) % 7 in days:
            last = (last + 1) % 7
        runs.append(DAYS[first] if last == first else f"{DAYS[first]}-{DAYS[last]}")
    return ",".join(runs)


def copy_text(source_text: str, site: Site, clock: Clock, source: str) -> str:
    """The copy's YAML: the source's data with the clock applied (comments dropped)."""
    import yaml

    data = yaml.load(source_text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    data["timezone"] = clock.timezone
    if clock.rotate_days:
        if data.get("opening_hours"):
            data["opening_hours"] = turned_hours(site, None, clock.rotate_days)
        for zone in data.get("zones", []):
            if zone.get("opening_hours"):
                zone["opening_hours"] = turned_hours(site, zone["id"], clock.rotate_days)
    text = (
        f"The demo's copy of {source}, written by deploy/dev/demo.sh (edit the source, "
        f"not this file): the same site in time zone {clock.timezone}, where it is in "
        "opening hours while the demo runs"
    )
    if clock.rotate_days:
        later = "next day" if clock.rotate_days == 1 else f"day {clock.rotate_days} days later"
        text += f", with its week turned: each day has the opening hours of the {later}"
    header = "".join(f"# {line}\n" for line in textwrap.wrap(text + ".", 86))
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    body = yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def describe(f: Fit, source_site: Site) -> str:
    offset = f.local.utcoffset() or dt.timedelta(0)
    hours, rest = divmod(int(offset.total_seconds()) // 60, 60)
    utc = f"UTC{'+' if offset >= dt.timedelta(0) else '-'}{abs(hours):02d}:{rest:02d}"
    where = (
        f"its own time zone {f.clock.timezone}"
        if f.clock.timezone == source_site.timezone
        else f"time zone {f.clock.timezone} ({utc})"
    )
    text = f"the site in {where}, where it is now {f.local.strftime('%A %H:%M')}"
    if f.clock.rotate_days:
        theirs = (f.local.date() + dt.timedelta(days=f.clock.rotate_days)).strftime("%A")
        text += f" with {theirs}'s opening hours"
    return text


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def prepare(source: Path, out: Path, now: dt.datetime) -> tuple[bool, Path, Fit, Site]:
    """Write (or keep) the copy in `out`; (new, its path, how it fits now, the copy)."""
    site = load_site(source)  # a missing or bad file: SiteError with file:line: reason
    source_text = source.read_text(encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)
    target = out / source.name
    state_file = out / STATE
    best = choose(site, now)
    kept: Fit | None = None
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        copy = load_site(target)
        current = fit(copy, Clock(copy.timezone), now)
        if (
            state.get("source") == str(source.resolve())
            and state.get("sha256") == _digest(source_text)
            and current.zones_open >= best.zones_open
            and current.until_close >= KEEP_UNTIL_CLOSE
        ):
            clock = Clock(copy.timezone, int(state.get("rotate_days", 0)))
            kept = Fit(
                clock, current.local, current.zones_open, current.since_open, current.until_close
            )
    except (OSError, ValueError, SiteError):
        kept = None  # no copy yet, or one that cannot be read: write it again
    rules = source.with_name(f"{source.stem}.alerts.yaml")
    rules_copy = target.with_name(rules.name)
    if rules.is_file():
        shutil.copyfile(rules, rules_copy)
    else:
        rules_copy.unlink(missing_ok=True)
    if kept is not None:
        return False, target, kept, copy
    text = copy_text(source_text, site, best.clock, str(source))
    copy = parse_site(text, str(target))  # never write a copy the programs would refuse
    tmp = target.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    state_file.write_text(
        json.dumps(
            {
                "source": str(source.resolve()),
                "sha256": _digest(source_text),
                "timezone": best.clock.timezone,
                "rotate_days": best.clock.rotate_days,
                "written": now.isoformat(),
            }
        ),
        encoding="utf-8",
    )
    return True, target, best, copy


def forget_data(site_id: str) -> None:
    """Delete every point of the site (raw and rollups) from the demo's InfluxDB: its
    history was written on another clock."""
    from footfall_collector.influx import connect
    from footfall_runtime.settings import load_settings

    from .cli import SimSettings

    influx = connect(load_settings(SimSettings).influx)
    try:
        influx.query(f"DELETE WHERE site = '{site_id}'")  # ids are [a-z0-9-]: no quoting
    except PermanentWriteError as exc:
        if "database not found" not in str(exc):
            raise
    finally:
        influx.close()


def _instant(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date and time like 2026-12-01T14:30+02:00: {text!r}"
        ) from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset (…+02:00 or …Z): {text!r}")
    return when


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m footfall_sim.demosite",
        description="Write the demo's copy of a site, in a time zone where it is open now. "
        "Prints 'new' or 'kept', the copy's local date, and what the copy is.",
    )
    p.add_argument("--site", required=True, type=Path, help="the site file (YAML)")
    p.add_argument("--out", required=True, type=Path, help="folder for the copy")
    p.add_argument("--now", type=_instant, help="the time to fit (default: now)")
    p.add_argument(
        "--forget-data",
        action="store_true",
        help="when the copy is new, delete the site's points from InfluxDB "
        "(FOOTFALL_INFLUX__* settings, as for footfall-sim)",
    )
    args = p.parse_args(argv)
    now = args.now or dt.datetime.now(dt.UTC)
    try:
        new, target, f, copy = prepare(args.site, args.out, now)
        if new and args.forget_data:
            forget_data(copy.site)
    except SiteError as exc:
        print(f"demosite: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"demosite: {exc}", file=sys.stderr)
        return 2
    except (OSError, RetryableWriteError, PermanentWriteError) as exc:
        print(f"demosite: {exc}", file=sys.stderr)
        return 1
    print("new" if new else "kept", f.local.date().isoformat())
    print(f"{target} ({'new' if new else 'kept'}): {describe(f, load_site(args.site))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
