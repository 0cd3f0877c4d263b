"""A Report (or the annual Statistics) as a terminal table, CSV, XLSX or one-page HTML.

Renderers only format: every figure and flag comes from the model. The CSV column layout
(`CSV_COLUMNS`, `STATISTICS_COLUMNS`) is documented in docs/reports.md and kept stable.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
from collections.abc import Iterable, Sequence
from typing import Any, Final

from .model import (
    STATUS_TEXT,
    WEEKDAYS,
    Comparison,
    DayFigure,
    Report,
    Statistics,
    ZoneReport,
)

__all__ = [
    "CSV_COLUMNS",
    "STATISTICS_COLUMNS",
    "render_csv",
    "render_html",
    "render_statistics_csv",
    "render_statistics_html",
    "render_statistics_table",
    "render_statistics_xlsx",
    "render_table",
    "render_xlsx",
]

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
STATISTICS_COLUMNS: Final = (
    "year",
    "site",
    "unit",
    "unit_name",
    "parent",
    "visits",
    "estimated",
    "estimated_hours",
    "estimated_months",
    "closed_months",
    "no_data_months",
    *(f"visits_{m:02d}" for m in range(1, 13)),
)

EST: Final = "*"
"""Marks a figure that includes an estimated hour."""
CLOSED_VISITS: Final = "!"
"""Marks visits counted on a day the site file says is closed."""


# --- shared wording --------------------------------------------------------------------


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


def _pct(value: float | None) -> str:
    return f"{value:+.1f} %" if value is not None else ""


def _flags(z: ZoneReport) -> list[str]:
    flags = []
    if z.estimated:
        flags.append(f"estimated ({z.estimated_hours} h)")
    if z.days_no_data:
        flags.append(f"{_days(z.days_no_data)} with no data")
    closed = z.closed_with_visits
    if len(closed) > 6:
        flags.append(f"visits on {len(closed)} closed days, {closed[0]} to {closed[-1]}")
    elif closed:
        flags.append(f"visits on closed days: {', '.join(d.isoformat() for d in closed)}")
    if z.days_not_yet:
        flags.append(f"{_days(z.days_not_yet)} still to come")
    return flags


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _day_cell(d: DayFigure) -> str:
    """A day's visits as shown in tables: the count, or why there is none."""
    if d.status in ("open", "closed_with_visits"):
        mark = (EST if d.estimated else "") + (CLOSED_VISITS if d.status != "open" else "")
        return f"{d.entries}{mark}"
    if d.status == "not_yet":
        return "–"
    return STATUS_TEXT[d.status]


def _zone_status(z: ZoneReport) -> str:
    return {"counted": "", "closed": "closed", "no_data": "no data", "not_yet": "–"}[z.status]


def _visits(z: ZoneReport) -> str:
    if z.entries is None:
        return _zone_status(z)
    return f"{z.entries}{EST if z.estimated else ''}"


def _compared(c: Comparison | None) -> str:
    if c is None:
        return ""
    if c.entries is None:
        return "no data"
    text = f"{c.entries}{EST if c.estimated else ''}"
    return f"{text} ({_pct(c.change_pct)})" if c.change_pct is not None else text


def _period_line(report: Report) -> str:
    p = report.period
    span = p.first.isoformat() if p.first == p.last else f"{p.first} – {p.last}"
    line = f"{p.label} ({span}, {report.timezone})"
    if report.in_progress:
        line += f", in progress: figures up to {_when(report.generated_at)}"
    return line


def _doors_note(report: Report) -> str:
    doors = report.doors
    if doors.status == "not_available":
        return (
            "Per-door figures are not available for this period: raw crossings are kept "
            f"from {doors.available_from} on."
        )
    if doors.status == "partial":
        return f"Per-door figures cover only {doors.available_from} on (raw crossings kept)."
    return ""


def _show_days(report: Report) -> bool:
    return len(report.period.days()) <= 31


# --- terminal table --------------------------------------------------------------------


def _aligned(headers: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1) -> str:
    """Columns padded to their widest cell; the first `left` columns left-aligned, the
    rest right-aligned (numbers)."""
    table = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(table):
        cells = [
            cell.ljust(widths[i]) if i < left else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_table(report: Report) -> str:
    out = [f"{report.site_name} ({report.site}): {_period_line(report)}", ""]
    out.append("Visits per zone")
    rows = []
    for z in report.zones:
        rows.append(
            [
                "  " * z.depth + z.name,
                _visits(z),
                str(z.exits) if z.exits is not None else "",
                f"{z.peak}{EST if z.peak_estimated else ''}" if z.peak is not None else "",
                _when(z.peak_at),
                str(z.days_open),
                str(z.days_closed),
                str(z.days_no_data),
                str(z.estimated_hours),
                _compared(z.month_before),
                _compared(z.year_before),
            ]
        )
    month = report.zones[0].month_before if report.zones else None
    year = report.zones[0].year_before if report.zones else None
    out.append(
        _aligned(
            [
                "Zone",
                "Visits",
                "Exits",
                "Peak",
                "Peak at",
                "Open",
                "Closed",
                "No data",
                "Est. h",
                f"Month before ({month.period.key})" if month else "Month before",
                f"Year before ({year.period.key})" if year else "Year before",
            ],
            rows,
        )
    )
    notes = [f"{z.name}: {'; '.join(_flags(z))}" for z in report.zones if _flags(z)]
    out += ["", f"{EST} includes estimated hours (an agent offline or faulty)."]
    out += notes
    out += ["", "Doors (raw crossings)"]
    note = _doors_note(report)
    if note:
        out.append(note)
    if report.doors.status != "not_available":
        out.append(
            _aligned(
                ["Door", "Between", "In", "Out"],
                [[d.door, d.label, str(d.entries), str(d.exits)] for d in report.doors.doors],
                left=2,
            )
        )
    out += [""]
    if _show_days(report):
        out.append("Visits per day")
        out.append(
            _aligned(
                ["Date", *[z.zone for z in report.zones]],
                [
                    [
                        f"{day:%a %Y-%m-%d}",
                        *[_day_cell(z.days[i]) for z in report.zones],
                    ]
                    for i, day in enumerate(report.period.days())
                ],
            )
        )
        out.append(
            f"closed: the site file's opening hours; no data: no rollup for an open day; "
            f"{CLOSED_VISITS} counted on a closed day."
        )
    else:
        out.append("Visits per month")
        keys = [m.key for m in report.zones[0].months] if report.zones else []
        out.append(
            _aligned(
                ["Month", *[z.zone for z in report.zones]],
                [[key, *[_month_cell(z, i) for z in report.zones]] for i, key in enumerate(keys)],
            )
        )
    return "\n".join(out) + "\n"


def _month_cell(z: ZoneReport, i: int) -> str:
    m = z.months[i]
    if m.entries is None:
        if m.closed:
            return "closed"
        return "–" if m.days_not_yet and not m.days_no_data else "no data"
    return f"{m.entries}{EST if m.estimated else ''}"


# --- CSV -------------------------------------------------------------------------------


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
                estimated=_yes(z.estimated),
                estimated_hours=z.estimated_hours,
                days_open=z.days_open,
                days_closed=z.days_closed,
                days_no_data=z.days_no_data,
                status=_zone_status(z) if z.entries is None else "; ".join(_flags(z)),
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
                    estimated=_yes(c.estimated),
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
                    estimated=_yes(d.estimated),
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
                        estimated=_yes(cell.estimated),
                        status=f"mean of {cell.days} days",
                    )
                )
    return buf.getvalue()


def _csv_row(base: dict[str, Any], zone: dict[str, Any], **cells: Any) -> dict[str, Any]:
    row = {**dict.fromkeys(CSV_COLUMNS, ""), **base, **zone}
    row.update({k: "" if v is None else v for k, v in cells.items()})
    return row


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


def _months_text(year: int, months: Sequence[int]) -> str:
    return ", ".join(f"{year}-{m:02d}" for m in months)


def render_statistics_csv(stats: Statistics) -> str:
    """One row per unit, `STATISTICS_COLUMNS` (docs/reports.md)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(STATISTICS_COLUMNS)
    for u in stats.units:
        monthly = ["" if m.entries is None else m.entries for m in u.months]
        writer.writerow(
            [
                stats.year,
                stats.site,
                u.zone,
                u.name,
                u.parent or "",
                "" if u.visits is None else u.visits,
                _yes(u.estimated_hours > 0),
                u.estimated_hours,
                _months_text(stats.year, u.estimated_months),
                _months_text(stats.year, u.closed_months),
                _months_text(stats.year, u.no_data_months),
                *monthly,
            ]
        )
    return buf.getvalue()


def render_statistics_table(stats: Statistics) -> str:
    out = [
        f"{stats.site_name} ({stats.site}): visits per unit, calendar year {stats.year}",
        "",
    ]
    rows = [
        [
            "  " * u.depth + u.name,
            "no data" if u.visits is None else f"{u.visits}{EST if u.estimated_hours else ''}",
            _months_text(stats.year, u.estimated_months) or "–",
            _months_text(stats.year, u.closed_months) or "–",
            _months_text(stats.year, u.no_data_months) or "–",
        ]
        for u in stats.units
    ]
    out.append(
        _aligned(["Unit", "Visits", "Estimated months", "Closed months", "No-data months"], rows)
    )
    out += [
        "",
        f"{EST} includes estimated hours. Estimated month: at least one hour estimated; "
        "closed month: no open day; no-data month: an open day without data.",
    ]
    return "\n".join(out) + "\n"


# --- XLSX ------------------------------------------------------------------------------


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
    summary.append([_period_line(report)])
    summary.append([f"Generated {_when(report.generated_at)} ({report.timezone})"])
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
                "; ".join(_flags(z)) if z.entries is not None else _zone_status(z),
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
    note = _doors_note(report) or "raw crossings counted"
    for door in report.doors.doors:
        doors.append([door.door, door.label, door.entries, door.exits, note])
    _widths(doors, [22, 50, 10, 10, 60])

    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def render_statistics_xlsx(stats: Statistics) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    sheet = wb.active
    assert sheet is not None
    sheet.title = f"Visits {stats.year}"
    sheet.append([*STATISTICS_COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in csv.reader(io.StringIO(render_statistics_csv(stats))):
        if row[0] == "year":
            continue
        sheet.append([_number(v) if i in _STAT_NUMERIC else v for i, v in enumerate(row)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


_STAT_NUMERIC: Final = {0, 5, 7, *range(11, 23)}


def _number(text: str) -> int | None:
    return int(text) if text else None


def _fraction(pct: float | None) -> float | None:
    return round(pct / 100, 4) if pct is not None else None


def _widths(sheet: Any, widths: Sequence[int]) -> None:
    from openpyxl.utils import get_column_letter

    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width


# --- HTML ------------------------------------------------------------------------------

_CSS: Final = """
*{box-sizing:border-box}
body{font:10pt/1.3 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;
margin:1.5em auto;max-width:80em;padding:0 1em}
h1{font-size:15pt;margin:0}h2{font-size:11pt;margin:1em 0 .3em}
p{margin:.2em 0}.meta{color:#555}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:.1em .45em;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
th{background:#f2f2f2;font-weight:600}
td.l,th.l{text-align:left}
.closed{color:#777;font-style:italic}.nodata{color:#b00;font-style:italic}
.est{color:#a60}.flag{color:#b00;font-weight:600}
.cols{display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap}
.heat td{min-width:2.2em}
.days th{white-space:normal;max-width:6em;vertical-align:bottom}
td.between{white-space:normal;max-width:18em;text-align:left;font-size:90%}
.legend{color:#555;font-size:8.5pt;margin-top:.6em}
@page{size:A4 landscape;margin:9mm}
@media print{
 body{font-size:7pt;line-height:1.2;margin:0;max-width:none;padding:0}
 h1{font-size:11pt}h2{font-size:8pt;margin:.5em 0 .15em}
 th,td{padding:0 .3em}
 .cols{flex-wrap:nowrap;gap:1em}
 .days th{max-width:6em;font-size:90%}
 .legend{font-size:6.5pt}
 table,.cols>div{break-inside:avoid}
}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _td(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{_e(text)}</td>' if cls else f"<td>{_e(text)}</td>"


def _status_class(text: str) -> str:
    if text == "closed":
        return "closed"
    if text == "no data":
        return "nodata"
    if text.endswith(CLOSED_VISITS):
        return "flag"
    if text.endswith(EST):
        return "est"
    return ""


def render_html(report: Report) -> str:
    """One self-contained page (inline CSS, no scripts, no external requests) that prints
    on one A4 sheet for a day, week or month."""
    title = f"{report.site_name}: visits, {report.period.label}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(report.site_name)}: visits, {_e(report.period.label)}</h1>",
        f'<p class="meta">{_e(_period_line(report))}. Generated '
        f"{_e(_when(report.generated_at))}.</p>",
        "<h2>Visits per zone</h2>",
        _html_summary(report),
    ]
    notes = [f"<b>{_e(z.name)}</b>: {_e('; '.join(_flags(z)))}" for z in report.zones if _flags(z)]
    if notes:
        parts.append('<p class="legend">' + ". ".join(notes) + ".</p>")
    parts.append('<div class="cols"><div>')
    if _show_days(report):
        parts += ["<h2>Visits per day</h2>", _html_days(report)]
    else:
        parts += ["<h2>Visits per month</h2>", _html_months(report)]
    parts.append("</div><div>")
    parts += ["<h2>Doors (raw crossings)</h2>", _html_doors(report)]
    if report.zones:
        z = report.zones[0]
        parts += [
            f"<h2>Hourly profile: {_e(z.name)} (mean visits per hour)</h2>",
            _html_profile(z),
        ]
    parts.append("</div></div>")
    parts.append(
        '<p class="legend">'
        f"{EST} includes estimated hours (an agent serving the zone's doors was offline or "
        "faulty: the count may be low). closed: closed by the site's opening hours. "
        "no data: an open day without computed visits (not zero). "
        f"{CLOSED_VISITS} visits counted on a closed day. Changes compare with the same "
        "period a month and a year before.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_summary(report: Report) -> str:
    month = report.zones[0].month_before if report.zones else None
    year = report.zones[0].year_before if report.zones else None
    head = [
        '<th class="l">Zone</th>',
        "<th>Visits</th>",
        "<th>Exits</th>",
        "<th>Peak</th>",
        '<th class="l">Peak at</th>',
        "<th>Open</th>",
        "<th>Closed</th>",
        "<th>No data</th>",
        "<th>Est. h</th>",
    ]
    if month:
        head += [f"<th>{_e(month.period.key)}</th>", "<th>Change</th>"]
    if year:
        head += [f"<th>{_e(year.period.key)}</th>", "<th>Change</th>"]
    rows = []
    for z in report.zones:
        visits = _visits(z)
        indent = f' style="padding-left:{0.45 + 1.2 * z.depth:.2f}em"'
        cells = [
            f'<td class="l"{indent}>{_e(z.name)}</td>',
            _td(visits, _status_class(visits)),
            _td(str(z.exits) if z.exits is not None else ""),
            _td(f"{z.peak}{EST if z.peak_estimated else ''}" if z.peak is not None else ""),
            _td(_when(z.peak_at), "l"),
            _td(str(z.days_open)),
            _td(str(z.days_closed)),
            _td(str(z.days_no_data), "nodata" if z.days_no_data else ""),
            _td(str(z.estimated_hours), "est" if z.estimated_hours else ""),
        ]
        for c in (z.month_before, z.year_before):
            if c is None:
                continue
            value = "no data" if c.entries is None else f"{c.entries}{EST if c.estimated else ''}"
            cells += [_td(value, _status_class(value)), _td(_pct(c.change_pct))]
        rows.append(f'<tr data-zone="{_e(z.zone)}">' + "".join(cells) + "</tr>")
    return f"<table><tr>{''.join(head)}</tr>{''.join(rows)}</table>"


def _html_days(report: Report) -> str:
    head = '<th class="l">Date</th>' + "".join(
        f'<th title="{_e(z.name)}">{_e(z.zone)}</th>' for z in report.zones
    )
    rows = []
    for i, day in enumerate(report.period.days()):
        cells = [_td(f"{day:%a %d.%m.}", "l")]
        for z in report.zones:
            text = _day_cell(z.days[i])
            cells.append(_td(text, _status_class(text)))
        rows.append(f'<tr data-date="{day.isoformat()}">' + "".join(cells) + "</tr>")
    return f'<table class="days"><tr>{head}</tr>{"".join(rows)}</table>'


def _html_months(report: Report) -> str:
    head = '<th class="l">Month</th>' + "".join(
        f'<th title="{_e(z.name)}">{_e(z.zone)}</th>' for z in report.zones
    )
    rows = []
    keys = [m.key for m in report.zones[0].months] if report.zones else []
    for i, key in enumerate(keys):
        cells = [_td(key, "l")]
        for z in report.zones:
            text = _month_cell(z, i)
            cells.append(_td(text, _status_class(text)))
        rows.append(f'<tr data-month="{key}">' + "".join(cells) + "</tr>")
    return f'<table class="days"><tr>{head}</tr>{"".join(rows)}</table>'


def _html_doors(report: Report) -> str:
    note = _doors_note(report)
    text = f"<p>{_e(note)}</p>" if note else ""
    if report.doors.status == "not_available":
        return text
    rows = "".join(
        f'<tr data-door="{_e(d.door)}">{_td(d.door, "l")}{_td(d.label, "between")}'
        f"{_td(str(d.entries))}{_td(str(d.exits))}</tr>"
        for d in report.doors.doors
    )
    return (
        text + '<table><tr><th class="l">Door</th><th class="l">Between</th><th>In</th>'
        f"<th>Out</th></tr>{rows}</table>"
    )


def _html_profile(z: ZoneReport) -> str:
    hours = [h for h in range(24) if any(z.profile[w][h].mean for w in range(7))]
    if not hours:
        return "<p>No hourly data.</p>"
    top = max((c.mean or 0.0) for cells in z.profile for c in cells) or 1.0
    head = '<th class="l"></th>' + "".join(f"<th>{h:02d}</th>" for h in hours)
    rows = []
    for weekday, cells in enumerate(z.profile):
        out = [_td(WEEKDAYS[weekday], "l")]
        for h in hours:
            cell = cells[h]
            if cell.mean is None:
                out.append("<td></td>")
                continue
            shade = 100 - int(45 * cell.mean / top)
            text = f"{cell.mean:.0f}{EST if cell.estimated else ''}"
            out.append(f'<td style="background:hsl(210,70%,{shade}%)">{_e(text)}</td>')
        rows.append("<tr>" + "".join(out) + "</tr>")
    return f'<table class="heat"><tr>{head}</tr>{"".join(rows)}</table>'


def render_statistics_html(stats: Statistics) -> str:
    title = f"{stats.site_name}: visits per unit, {stats.year}"
    rows = []
    for u in stats.units:
        visits = "no data" if u.visits is None else f"{u.visits}{EST if u.estimated_hours else ''}"
        indent = f' style="padding-left:{0.45 + 1.2 * u.depth:.2f}em"'
        rows.append(
            f'<tr data-zone="{_e(u.zone)}"><td class="l"{indent}>{_e(u.name)}</td>'
            f"{_td(visits, _status_class(visits))}"
            f"{_td(_months_text(stats.year, u.estimated_months) or '–', 'l')}"
            f"{_td(_months_text(stats.year, u.closed_months) or '–', 'l')}"
            f"{_td(_months_text(stats.year, u.no_data_months) or '–', 'l')}</tr>"
        )
    return (
        "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
                f"<h1>{_e(title)}</h1>",
                f'<p class="meta">Calendar year {stats.year}. Generated '
                f"{_e(_when(stats.generated_at))}.</p>",
                '<table><tr><th class="l">Unit</th><th>Visits</th>'
                '<th class="l">Estimated months</th><th class="l">Closed months</th>'
                '<th class="l">No-data months</th></tr>' + "".join(rows) + "</table>",
                f'<p class="legend">{EST} includes estimated hours. Estimated month: at least one '
                "hour estimated; closed month: no open day; no-data month: an open day without "
                "data.</p>",
                "</body></html>",
            ]
        )
        + "\n"
    )
