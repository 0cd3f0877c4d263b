"""Opening hours and the daily reset on a site's own wall clock: how the site file writes
them, which hours hold on a day, when the site last closed, and the reset windows (the
span over which live counts accumulate, from `reset_at` to the next), and a calendar
day's bounds in a time zone. One home for the arithmetic that the site model, the
collector, the history worker, the alerts, the reports, the web and the simulator share.

It does not import the site model at run time (the model imports it to check its
fields); the functions that take a `Site` use only its public methods.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Annotated, Final

from pydantic import AfterValidator, BeforeValidator

from .yamlfile import Located

if TYPE_CHECKING:
    from .site import Site

HOUR_MS = 3_600_000
DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names used in opening-hours keys, indexed by `date.weekday()`."""
ALL_DAY_END: Final = time.max
"""`hours_on` end for "...-24:00" and for a site without any opening hours."""

Hours = tuple[time, time]
WeekHours = dict[int, Hours | None]
"""Weekday -> that day's hours (None: closed); a weekday not in it is not given."""

# Used with fullmatch: `$` would accept a trailing newline.
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_HOURS = re.compile(r"(\d\d:\d\d)-(\d\d:\d\d)")


# --- the site file's notation -----------------------------------------------------------


def parse_time(value: str, what: str) -> time:
    match = _TIME.fullmatch(value)
    if not match:
        raise ValueError(f'{what} must be a time "HH:MM" (24 h), not {value!r}')
    return time(int(match[1]), int(match[2]))


def parse_days(spec: str) -> frozenset[int]:
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


def parse_hours(value: str) -> Hours | None:
    """ "08:00-20:00" -> (start, end); "closed" -> None; end may be "24:00"."""
    if value == "closed":
        return None
    match = _HOURS.fullmatch(value)
    if not match:
        raise ValueError(f'opening hours must be "HH:MM-HH:MM" or "closed", not {value!r}')
    start = parse_time(match[1], "opening time")
    end = ALL_DAY_END if match[2] == "24:00" else parse_time(match[2], "closing time")
    if end <= start:
        raise ValueError(f"opening hours {value!r} end before they start")
    return (start, end)


def hours_table(hours: Mapping[str, str], who: str) -> WeekHours:
    """Weekday -> hours; two keys naming the same weekday would make the answer depend
    on key order, so that is an error at the second key."""
    table: WeekHours = {}
    first_key: dict[int, str] = {}
    for key, value in hours.items():
        for day in sorted(parse_days(key)):
            if day in first_key:
                raise Located(
                    f"{who}opening_hours: {DAYS[day]} is given twice "
                    f"({first_key[day]!r} and {key!r})",
                    ("opening_hours", key),
                )
            first_key[day] = key
            table[day] = parse_hours(value)
    return table


def _quoted_hint(value: object, what: str) -> object:
    # YAML 1.1 reads an unquoted 03:00 as the number 180 (base 60): say so.
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f'{what} must be a quoted string such as "03:00" or "08:00-20:00"')
    return value


def _check_day_spec(value: str) -> str:
    parse_days(value)
    return value


def _check_hours(value: str) -> str:
    parse_hours(value)
    return value


def _check_reset(value: str) -> str:
    # Hourly visits are whole local hours of one reset window each (docs/history.md).
    if parse_time(value, "reset_at").minute:
        raise ValueError(f'reset_at must be on the hour ("03:00"), not {value!r}')
    return value


DaySpec = Annotated[str, AfterValidator(_check_day_spec)]
HoursSpec = Annotated[
    str,
    BeforeValidator(lambda value: _quoted_hint(value, "opening hours")),
    AfterValidator(_check_hours),
]
OpeningHours = dict[DaySpec, HoursSpec]
ResetAt = Annotated[
    str,
    BeforeValidator(lambda value: _quoted_hint(value, "reset_at")),
    AfterValidator(_check_reset),
]


def clock_text(at: time) -> str:
    """ "HH:MM" of an opening or closing time; the end of a day open until midnight is
    "24:00", as the site file writes it."""
    return "24:00" if at == ALL_DAY_END else at.strftime("%H:%M")


def hours_text(hours: Hours | None) -> str:
    """A day's hours as the site file writes them ("08:00-24:00", "closed"): the inverse
    of `parse_hours`."""
    if hours is None:
        return "closed"
    return f"{clock_text(hours[0])}-{clock_text(hours[1])}"


def minute_of_day(at: time) -> int:
    """Minutes from midnight to an opening or closing time; 1440 for a closing at 24:00."""
    return 24 * 60 if at == ALL_DAY_END else at.hour * 60 + at.minute


# --- which hours hold ----------------------------------------------------------------------


def pick_hours(levels: Iterable[WeekHours], site: WeekHours, weekday: int) -> Hours | None:
    """The hours on `weekday`: the first of `levels` (a zone, its parent, ...) with an
    entry for it wins, then the site's. A site without any opening hours is open all
    day; one with some is closed on the days it does not list."""
    for table in levels:
        if weekday in table:
            return table[weekday]
    if not site:
        return (time(0, 0), ALL_DAY_END)
    return site.get(weekday)


def within(hours: Hours | None, now: time) -> bool:
    """Whether a wall-clock time is inside a day's hours (None: closed)."""
    if hours is None:
        return False
    start, end = hours
    return start <= now and (now < end or end == ALL_DAY_END)


def opening_span(
    site: Site, day: date, zone_id: str | None = None
) -> tuple[datetime, datetime] | None:
    """[opening, closing) on `day` as site-local datetimes (closing at 24:00 is the next
    midnight), or None when closed that day."""
    hours = site.hours_on(day, zone_id)
    if hours is None:
        return None
    start = datetime.combine(day, hours[0], tzinfo=site.tz)
    if hours[1] == ALL_DAY_END:
        return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=site.tz)
    return start, datetime.combine(day, hours[1], tzinfo=site.tz)


def last_closing(
    site: Site, local: datetime, zone_id: str | None = None, days: int = 8
) -> datetime | None:
    """The latest closing at or before `local` (a datetime in `site.tz`, compared on the
    wall clock), looking back at most `days` days; None if there was none."""
    for back in range(days):
        span = opening_span(site, local.date() - timedelta(days=back), zone_id)
        if span is not None and span[1] <= local:
            return span[1]
    return None


def reset_on(site: Site, day: date) -> datetime:
    """The daily reset on `day`, site-local (a wall time a DST change skips maps with
    the offset before the change, fold=0, as everywhere here)."""
    return datetime.combine(day, site.reset_time(), tzinfo=site.tz)


def reset_after(site: Site, local: datetime) -> datetime:
    """The first daily reset after `local` (a datetime in `site.tz`), on the wall clock."""
    reset = reset_on(site, local.date())
    return reset + timedelta(days=1) if reset <= local else reset


# --- reset windows -------------------------------------------------------------------------


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def last_reset_before(site: Site, now_ms: int) -> int:
    """The most recent reset instant (site's `reset_at`, local time) at or before now."""
    today = local_date(site, now_ms)
    candidate = _ms(reset_on(site, today))
    if candidate > now_ms:
        candidate = _ms(reset_on(site, today - timedelta(days=1)))
    return candidate


def next_reset_after(site: Site, now_ms: int) -> int:
    last = local_date(site, last_reset_before(site, now_ms))
    return _ms(reset_on(site, last + timedelta(days=1)))


@dataclass(frozen=True)
class Window:
    """One reset window [start_ms, end_ms): 23, 24 or 25 hours."""

    start_ms: int
    end_ms: int

    def hours(self) -> list[int]:
        """The starts of its local hours (reset_at is on the hour, and time zones move
        their clocks by whole hours, so these are whole hours of the wall clock)."""
        return list(range(self.start_ms, self.end_ms, HOUR_MS))


def window_of(site: Site, ts_ms: int) -> Window:
    start = last_reset_before(site, ts_ms)
    return Window(start, next_reset_after(site, ts_ms))


# --- calendar days in a time zone ----------------------------------------------------------


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The local midnight starting `day`. Where a zone skips midnight (a DST change at
    00:00), fold=0 maps the missing wall time with the offset before the change: the
    instant the day really starts."""
    return datetime.combine(day, time(0), tzinfo=tz)


def local_midnight_ms(day: date, tz: tzinfo) -> int:
    return _ms(local_midnight(day, tz))


def day_bounds_ms(day: date, tz: tzinfo) -> tuple[int, int]:
    """[local midnight, next local midnight) of a calendar day, in epoch ms: 23, 24 or
    25 hours."""
    return local_midnight_ms(day, tz), local_midnight_ms(day + timedelta(days=1), tz)


def local_datetime(ts_ms: float, tz: tzinfo) -> datetime:
    """An epoch-ms instant on the wall clock of `tz`."""
    return datetime.fromtimestamp(ts_ms / 1000, tz)


def date_at(ts_ms: float, tz: tzinfo) -> date:
    """The calendar day of `tz` that an epoch-ms instant falls on."""
    return local_datetime(ts_ms, tz).date()


def local_day_bounds(site: Site, day: date) -> tuple[int, int]:
    """[local midnight, next local midnight) of a calendar day of the site, in epoch ms."""
    return day_bounds_ms(day, site.tz)


def local_date(site: Site, ts_ms: int) -> date:
    return date_at(ts_ms, site.tz)
