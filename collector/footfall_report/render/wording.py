"""How the printable page words and writes what it shows, so that one layout serves every
language: English here (the CLI's and the monthly mail's page); footfall-web passes its
own for Finnish and Swedish (and the site file's names in that language)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ..model import WEEKDAYS
from ..periods import Period
from .words import CLOSED_VISITS, EST, pct_text, when_text

__all__ = ["ENGLISH", "ENGLISH_TEXTS", "Wording"]

ENGLISH_TEXTS: Final[dict[str, str]] = {
    "title": "{site}: visits, {period}",
    "period_line": "{label} ({span}, {timezone})",
    "in_progress": ", in progress: figures up to {when}",
    "generated": "Generated {when}.",
    "per_zone": "Visits per zone",
    "per_day": "Visits per day",
    "per_month": "Visits per month",
    "doors": "Doors (raw crossings)",
    "profile": "Hourly profile: {zone} (mean visits per hour)",
    "no_hourly": "No hourly data.",
    "zone": "Zone",
    "visits": "Visits",
    "exits": "Exits",
    "peak": "Peak",
    "peak_at": "Peak at",
    "days_open": "Open",
    "days_closed": "Closed",
    "days_no_data": "No data",
    "estimated_hours": "Est. h",
    "change": "Change",
    "date": "Date",
    "month": "Month",
    "door": "Door",
    "between": "Between",
    "in": "In",
    "out": "Out",
    "outside": "outside",
    "not_in_site": "not in the site file",
    "closed": "closed",
    "no_data": "no data",
    "estimated": "estimated ({hours} h)",
    "with_no_data": "{days} with no data",
    "closed_visits_many": "visits on {count} closed days, {first} to {last}",
    "closed_visits": "visits on closed days: {dates}",
    "to_come": "{days} still to come",
    "one_day": "{count} day",
    "days": "{count} days",
    "doors_not_available": (
        "Per-door figures are not available for this period: raw crossings are kept from {date} on."
    ),
    "doors_partial": "Per-door figures cover only {date} on (raw crossings kept).",
    "legend": (
        "{est} includes estimated hours (an agent serving the zone's doors was offline or "
        "faulty: the count may be low). closed: closed by the site's opening hours. "
        "no data: an open day without computed visits (not zero). "
        "{closed} visits counted on a closed day. Changes compare with the same "
        "period a month and a year before."
    ),
}
"""The printable page's words; a language's own has the same keys and {placeholders}."""


def _english_day(day: dt.date) -> str:
    return f"{day:%a %d.%m.}"


@dataclass(frozen=True)
class Wording:
    """The page's words (`ENGLISH_TEXTS`' keys), weekday names from Monday, and how
    periods, dates, times and percentages are written. `names` (zone id to name) and
    `site_name` replace the site file's default names when given."""

    lang: str
    texts: Mapping[str, str]
    weekdays: Sequence[str]
    period_label: Callable[[Period], str]
    date: Callable[[dt.date], str]
    day: Callable[[dt.date], str]
    when: Callable[[dt.datetime | None], str]
    pct: Callable[[float | None], str]
    names: Mapping[str, str] = field(default_factory=dict)
    site_name: str | None = None

    def t(self, key: str, **values: object) -> str:
        return self.texts[key].format(**values)

    def status(self, status: str) -> str:
        """A day's or a zone's status as a cell shows it ("–" for not yet)."""
        if status == "not_yet":
            return "–"
        if status == "counted":
            return ""
        return self.texts.get(status, status)

    def count_days(self, count: int) -> str:
        return self.t("one_day" if count == 1 else "days", count=count)

    def legend(self) -> str:
        return self.t("legend", est=EST, closed=CLOSED_VISITS)


ENGLISH: Final = Wording(
    lang="en",
    texts=ENGLISH_TEXTS,
    weekdays=WEEKDAYS,
    period_label=lambda p: p.label,
    date=dt.date.isoformat,
    day=_english_day,
    when=when_text,
    pct=pct_text,
)
