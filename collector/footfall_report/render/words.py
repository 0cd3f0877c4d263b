"""The words every format shares: how a day, a zone's visits, a comparison, the flags
and the period read, and the marks for estimated figures and visits on closed days, so the
table, the CSV, the workbook and the page never word a figure differently."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from ..model import STATUS_TEXT, Comparison, DayFigure, Report, ZoneReport

__all__ = [
    "CLOSED_VISITS",
    "EST",
    "compared_cell",
    "day_cell",
    "doors_note",
    "figure_text",
    "flags",
    "month_cell",
    "months_text",
    "pct_text",
    "period_line",
    "show_days",
    "status_word",
    "visits_cell",
    "when_text",
    "yes",
    "zone_status_text",
]

EST: Final = "*"
"""Marks a figure that includes an estimated hour."""
CLOSED_VISITS: Final = "!"
"""Marks visits counted on a day the site file says is closed."""


def when_text(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


def pct_text(value: float | None) -> str:
    return f"{value:+.1f} %" if value is not None else ""


def figure_text(value: int, estimated: bool) -> str:
    """A count, marked when it includes an estimated hour."""
    return f"{value}{EST if estimated else ''}"


def status_word(status: str) -> str:
    """Why a day or a zone has no figure ("closed", "no data", "–" for not yet); a zone's
    "counted" has none to give."""
    if status == "not_yet":
        return "–"
    if status == "counted":
        return ""
    return STATUS_TEXT[status]


def flags(z: ZoneReport) -> list[str]:
    out = []
    if z.estimated:
        out.append(f"estimated ({z.estimated_hours} h)")
    if z.days_no_data:
        out.append(f"{_days(z.days_no_data)} with no data")
    closed = z.closed_with_visits
    if len(closed) > 6:
        out.append(f"visits on {len(closed)} closed days, {closed[0]} to {closed[-1]}")
    elif closed:
        out.append(f"visits on closed days: {', '.join(d.isoformat() for d in closed)}")
    if z.days_not_yet:
        out.append(f"{_days(z.days_not_yet)} still to come")
    return out


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def day_cell(d: DayFigure) -> str:
    """A day's visits as shown in tables: the count, or why there is none."""
    if d.status in ("open", "closed_with_visits"):
        mark = (EST if d.estimated else "") + (CLOSED_VISITS if d.status != "open" else "")
        return f"{d.entries}{mark}"
    return status_word(d.status)


def zone_status_text(z: ZoneReport) -> str:
    return status_word(z.status)


def visits_cell(z: ZoneReport) -> str:
    if z.entries is None:
        return zone_status_text(z)
    return figure_text(z.entries, z.estimated)


def compared_cell(c: Comparison | None) -> str:
    if c is None:
        return ""
    if c.entries is None:
        return status_word("no_data")
    text = figure_text(c.entries, c.estimated)
    return f"{text} ({pct_text(c.change_pct)})" if c.change_pct is not None else text


def period_line(report: Report) -> str:
    p = report.period
    span = p.first.isoformat() if p.first == p.last else f"{p.first} – {p.last}"
    line = f"{p.label} ({span}, {report.timezone})"
    if report.in_progress:
        line += f", in progress: figures up to {when_text(report.generated_at)}"
    return line


def doors_note(report: Report) -> str:
    doors = report.doors
    if doors.status == "not_available":
        return (
            "Per-door figures are not available for this period: raw crossings are kept "
            f"from {doors.available_from} on."
        )
    if doors.status == "partial":
        return f"Per-door figures cover only {doors.available_from} on (raw crossings kept)."
    return ""


def show_days(report: Report) -> bool:
    return len(report.period.days()) <= 31


def month_cell(z: ZoneReport, i: int) -> str:
    m = z.months[i]
    if m.entries is None:
        if m.closed:
            return "closed"
        return status_word("not_yet" if m.days_not_yet and not m.days_no_data else "no_data")
    return figure_text(m.entries, m.estimated)


def months_text(year: int, months: Sequence[int]) -> str:
    return ", ".join(f"{year}-{m:02d}" for m in months)


def yes(flag: bool) -> str:
    return "yes" if flag else ""
