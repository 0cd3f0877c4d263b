"""The report as an Excel workbook: Summary, Daily, Hourly profile and Doors sheets, with
numbers as numbers and dates as dates (site-local wall time: Excel has no time zones)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any, Final

from ..model import STATUS_TEXT, WEEKDAYS, Report
from .words import doors_note, flags, period_line, when_text, zone_status_text

__all__ = ["XLSX_MEDIA_TYPE", "render_xlsx"]

XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    """Excel has no time zones: the site-local wall time."""
    return value.replace(tzinfo=None) if value is not None else None


def render_xlsx(report: Report) -> bytes:
    """A workbook: Summary, Daily, Hourly profile and Doors sheets; numbers as numbers,
    flags and statuses as text."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    bold = Font(bold=True)
    summary = wb.active
    assert summary is not None
    summary.title = "Summary"
    summary.append([f"{report.site_name} ({report.site})"])
    summary.append([period_line(report)])
    summary.append([f"Generated {when_text(report.generated_at)} ({report.timezone})"])
    summary.append([])
    headers = [
        "Zone",
        "Name",
        "Parent",
        "Visits",
        "Exits",
        "Peak",
        "Peak at",
        "Open days",
        "Closed days",
        "No-data days",
        "Estimated hours",
        "Flags",
        "Month before",
        "Visits month before",
        "Change vs month before",
        "Year before",
        "Visits year before",
        "Change vs year before",
    ]
    summary.append(headers)
    header_row = summary.max_row
    for cell in summary[header_row]:
        cell.font = bold
    for z in report.zones:
        mb, yb = z.month_before, z.year_before
        summary.append(
            [
                z.zone,
                z.name,
                z.parent_name or "",
                z.entries,
                z.exits,
                z.peak,
                _naive(z.peak_at),
                z.days_open,
                z.days_closed,
                z.days_no_data,
                z.estimated_hours,
                "; ".join(flags(z)) if z.entries is not None else zone_status_text(z),
                mb.period.key if mb else None,
                mb.entries if mb else None,
                _fraction(mb.change_pct) if mb else None,
                yb.period.key if yb else None,
                yb.entries if yb else None,
                _fraction(yb.change_pct) if yb else None,
            ]
        )
        row = summary.max_row
        summary.cell(row, 2).alignment = Alignment(indent=z.depth)
        summary.cell(row, 7).number_format = "yyyy-mm-dd hh:mm"
        summary.cell(row, 15).number_format = "0.0%"
        summary.cell(row, 18).number_format = "0.0%"
    _widths(summary, [16, 36, 20, 10, 10, 8, 17, 10, 11, 12, 15, 40, 13, 12, 12, 12, 12, 12])

    daily = wb.create_sheet("Daily")
    daily.append(
        [
            "Date",
            "Weekday",
            "Zone",
            "Name",
            "Status",
            "Opening hours",
            "Visits",
            "Exits",
            "Peak",
            "Peak at",
            "Estimated hours",
        ]
    )
    for cell in daily[1]:
        cell.font = bold
    for z in report.zones:
        for d in z.days:
            daily.append(
                [
                    d.day,
                    WEEKDAYS[d.day.weekday()],
                    z.zone,
                    z.name,
                    STATUS_TEXT[d.status],
                    d.opening_hours or "closed",
                    d.entries,
                    d.exits,
                    d.peak,
                    _naive(d.peak_at),
                    d.estimated_hours,
                ]
            )
            row = daily.max_row
            daily.cell(row, 1).number_format = "yyyy-mm-dd"
            daily.cell(row, 10).number_format = "yyyy-mm-dd hh:mm"
    _widths(daily, [12, 9, 16, 36, 22, 13, 9, 9, 7, 17, 15])

    profile = wb.create_sheet("Hourly profile")
    profile.append(["Mean visits per local hour, per weekday, over the period's days"])
    profile.append(["Zone", "Name", "Weekday", *[f"{h:02d}" for h in range(24)], "Estimated hours"])
    for cell in profile[2]:
        cell.font = bold
    for z in report.zones:
        for weekday, cells in enumerate(z.profile):
            estimated = [f"{h:02d}" for h, c in enumerate(cells) if c.estimated]
            profile.append(
                [z.zone, z.name, WEEKDAYS[weekday], *[c.mean for c in cells], ", ".join(estimated)]
            )
            for col in range(4, 28):
                profile.cell(profile.max_row, col).number_format = "0.0"
    _widths(profile, [16, 36, 9, *[6] * 24, 20])

    doors = wb.create_sheet("Doors")
    doors.append(["Door", "Between", "In", "Out", "Status"])
    for cell in doors[1]:
        cell.font = bold
    note = doors_note(report) or "raw crossings counted"
    for door in report.doors.doors:
        doors.append([door.door, door.label, door.entries, door.exits, note])
    _widths(doors, [22, 50, 10, 10, 60])

    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _fraction(pct: float | None) -> float | None:
    return round(pct / 100, 4) if pct is not None else None


def _widths(sheet: Any, widths: Sequence[int]) -> None:
    from openpyxl.utils import get_column_letter

    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width
