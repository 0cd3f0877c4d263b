"""A site's day on its own wall clock: the daily reset window (the span over which live
counts accumulate, from `reset_at` to the next) and its local hours. One home for the
arithmetic that the collector, the history worker, the alerts and the reports share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from .site import Site

HOUR_MS = 3_600_000


def _instant_ms(site: Site, day: date, at: time) -> int:
    return int(datetime.combine(day, at, tzinfo=site.tz).timestamp() * 1000)


def last_reset_before(site: Site, now_ms: int) -> int:
    """The most recent reset instant (site's `reset_at`, local time) at or before now."""
    local = datetime.fromtimestamp(now_ms / 1000, site.tz)
    candidate = _instant_ms(site, local.date(), site.reset_time())
    if candidate > now_ms:
        candidate = _instant_ms(site, local.date() - timedelta(days=1), site.reset_time())
    return candidate


def next_reset_after(site: Site, now_ms: int) -> int:
    last = datetime.fromtimestamp(last_reset_before(site, now_ms) / 1000, site.tz)
    return _instant_ms(site, last.date() + timedelta(days=1), site.reset_time())


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


def local_day_bounds(site: Site, day: date) -> tuple[int, int]:
    """[local midnight, next local midnight) of a calendar day, in epoch ms."""
    return _instant_ms(site, day, time(0, 0)), _instant_ms(
        site, day + timedelta(days=1), time(0, 0)
    )


def local_date(site: Site, ts_ms: int) -> date:
    return datetime.fromtimestamp(ts_ms / 1000, site.tz).date()
