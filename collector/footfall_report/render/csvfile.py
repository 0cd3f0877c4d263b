"""The report as one CSV table whose column layout (`CSV_COLUMNS`, docs/reports.md) is
kept stable for the spreadsheets and scripts that read it; `section` says what a row is."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any, Final

from ..model import STATUS_TEXT, WEEKDAYS, Report, ZoneReport
from .words import flags, yes, zone_status_text

__all__ = ["CSV_COLUMNS", "render_csv"]

CSV_COLUMNS: Final = (
    "section",
    "site",
    "period",
    "zone",
    "zone_name",
    "parent",
    "door",
    "date",
    "weekday",
    "hour",
    "entries",
    "exits",
    "peak",
    "peak_at",
    "estimated",
    "estimated_hours",
    "change_pct",
    "days_open",
    "days_closed",
    "days_no_data",
    "status",
)


def render_csv(report: Report) -> str:
    """One table, `CSV_COLUMNS`; `section` says what a row is: total, month_before,
    year_before, day, door or profile (docs/reports.md)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    base = {"site": report.site, "period": report.period.key}

    def zone_cells(z: ZoneReport) -> dict[str, Any]:
        return {"zone": z.zone, "zone_name": z.name, "parent": z.parent or ""}

    for z in report.zones:
        writer.writerow(
            _csv_row(
                base,
                zone_cells(z),
                section="total",
                entries=z.entries,
                exits=z.exits,
                peak=z.peak,
                peak_at=_iso(z.peak_at),
                estimated=yes(z.estimated),
                estimated_hours=z.estimated_hours,
                days_open=z.days_open,
                days_closed=z.days_closed,
                days_no_data=z.days_no_data,
                status=zone_status_text(z) if z.entries is None else "; ".join(flags(z)),
            )
        )
        for section, c in (("month_before", z.month_before), ("year_before", z.year_before)):
            if c is None:
                continue
            writer.writerow(
                _csv_row(
                    base,
                    zone_cells(z),
                    section=section,
                    date=c.period.key,
                    entries=c.entries,
                    estimated=yes(c.estimated),
                    estimated_hours=c.estimated_hours,
                    change_pct=c.change_pct,
                    days_no_data=c.days_no_data,
                    status="no data" if c.entries is None else "",
                )
            )
    for z in report.zones:
        for d in z.days:
            writer.writerow(
                _csv_row(
                    base,
                    zone_cells(z),
                    section="day",
                    date=d.day.isoformat(),
                    weekday=WEEKDAYS[d.day.weekday()],
                    entries=d.entries,
                    exits=d.exits,
                    peak=d.peak,
                    peak_at=_iso(d.peak_at),
                    estimated=yes(d.estimated),
                    estimated_hours=d.estimated_hours,
                    status=STATUS_TEXT[d.status],
                )
            )
    door_status = report.doors.status.replace("_", " ")
    for door in report.doors.doors:
        writer.writerow(
            _csv_row(
                base,
                {"zone": door.inside or "", "zone_name": door.label},
                section="door",
                door=door.door,
                entries=door.entries,
                exits=door.exits,
                status=door_status,
            )
        )
    for z in report.zones:
        for weekday, cells in enumerate(z.profile):
            for hour, cell in enumerate(cells):
                if cell.mean is None:
                    continue
                writer.writerow(
                    _csv_row(
                        base,
                        zone_cells(z),
                        section="profile",
                        weekday=WEEKDAYS[weekday],
                        hour=hour,
                        entries=cell.mean,
                        estimated=yes(cell.estimated),
                        status=f"mean of {cell.days} days",
                    )
                )
    return buf.getvalue()


def _csv_row(base: dict[str, Any], zone: dict[str, Any], **cells: Any) -> dict[str, Any]:
    row = {**dict.fromkeys(CSV_COLUMNS, ""), **base, **zone}
    row.update({k: "" if v is None else v for k, v in cells.items()})
    return row


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""
