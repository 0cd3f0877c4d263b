"""The report as one self-contained HTML page (inline CSS, no scripts, no external
requests) that prints on one A4 sheet for a day, week or month; the style and cell helpers
are shared with the statistics page."""

from __future__ import annotations

import html
from typing import Final

from ..model import WEEKDAYS, Report, ZoneReport
from .words import (
    CLOSED_VISITS,
    EST,
    day_cell,
    doors_note,
    flags,
    month_cell,
    pct_text,
    period_line,
    show_days,
    visits_cell,
    when_text,
)

__all__ = ["CSS", "escape", "render_html", "status_class", "td"]

CSS: Final = """
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


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def td(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{escape(text)}</td>' if cls else f"<td>{escape(text)}</td>"


def status_class(text: str) -> str:
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
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(report.site_name)}: visits, {escape(report.period.label)}</h1>",
        f'<p class="meta">{escape(period_line(report))}. Generated '
        f"{escape(when_text(report.generated_at))}.</p>",
        "<h2>Visits per zone</h2>",
        _html_summary(report),
    ]
    notes = [
        f"<b>{escape(z.name)}</b>: {escape('; '.join(flags(z)))}" for z in report.zones if flags(z)
    ]
    if notes:
        parts.append('<p class="legend">' + ". ".join(notes) + ".</p>")
    parts.append('<div class="cols"><div>')
    if show_days(report):
        parts += ["<h2>Visits per day</h2>", _html_days(report)]
    else:
        parts += ["<h2>Visits per month</h2>", _html_months(report)]
    parts.append("</div><div>")
    parts += ["<h2>Doors (raw crossings)</h2>", _html_doors(report)]
    if report.zones:
        z = report.zones[0]
        parts += [
            f"<h2>Hourly profile: {escape(z.name)} (mean visits per hour)</h2>",
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
        head += [f"<th>{escape(month.period.key)}</th>", "<th>Change</th>"]
    if year:
        head += [f"<th>{escape(year.period.key)}</th>", "<th>Change</th>"]
    rows = []
    for z in report.zones:
        visits = visits_cell(z)
        indent = f' style="padding-left:{0.45 + 1.2 * z.depth:.2f}em"'
        cells = [
            f'<td class="l"{indent}>{escape(z.name)}</td>',
            td(visits, status_class(visits)),
            td(str(z.exits) if z.exits is not None else ""),
            td(f"{z.peak}{EST if z.peak_estimated else ''}" if z.peak is not None else ""),
            td(when_text(z.peak_at), "l"),
            td(str(z.days_open)),
            td(str(z.days_closed)),
            td(str(z.days_no_data), "nodata" if z.days_no_data else ""),
            td(str(z.estimated_hours), "est" if z.estimated_hours else ""),
        ]
        for c in (z.month_before, z.year_before):
            if c is None:
                continue
            value = "no data" if c.entries is None else f"{c.entries}{EST if c.estimated else ''}"
            cells += [td(value, status_class(value)), td(pct_text(c.change_pct))]
        rows.append(f'<tr data-zone="{escape(z.zone)}">' + "".join(cells) + "</tr>")
    return f"<table><tr>{''.join(head)}</tr>{''.join(rows)}</table>"


def _html_days(report: Report) -> str:
    head = '<th class="l">Date</th>' + "".join(
        f'<th title="{escape(z.name)}">{escape(z.zone)}</th>' for z in report.zones
    )
    rows = []
    for i, day in enumerate(report.period.days()):
        cells = [td(f"{day:%a %d.%m.}", "l")]
        for z in report.zones:
            text = day_cell(z.days[i])
            cells.append(td(text, status_class(text)))
        rows.append(f'<tr data-date="{day.isoformat()}">' + "".join(cells) + "</tr>")
    return f'<table class="days"><tr>{head}</tr>{"".join(rows)}</table>'


def _html_months(report: Report) -> str:
    head = '<th class="l">Month</th>' + "".join(
        f'<th title="{escape(z.name)}">{escape(z.zone)}</th>' for z in report.zones
    )
    rows = []
    keys = [m.key for m in report.zones[0].months] if report.zones else []
    for i, key in enumerate(keys):
        cells = [td(key, "l")]
        for z in report.zones:
            text = month_cell(z, i)
            cells.append(td(text, status_class(text)))
        rows.append(f'<tr data-month="{key}">' + "".join(cells) + "</tr>")
    return f'<table class="days"><tr>{head}</tr>{"".join(rows)}</table>'


def _html_doors(report: Report) -> str:
    note = doors_note(report)
    text = f"<p>{escape(note)}</p>" if note else ""
    if report.doors.status == "not_available":
        return text
    rows = "".join(
        f'<tr data-door="{escape(d.door)}">{td(d.door, "l")}{td(d.label, "between")}'
        f"{td(str(d.entries))}{td(str(d.exits))}</tr>"
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
        out = [td(WEEKDAYS[weekday], "l")]
        for h in hours:
            cell = cells[h]
            if cell.mean is None:
                out.append("<td></td>")
                continue
            shade = 100 - int(45 * cell.mean / top)
            text = f"{cell.mean:.0f}{EST if cell.estimated else ''}"
            out.append(f'<td style="background:hsl(210,70%,{shade}%)">{escape(text)}</td>')
        rows.append("<tr>" + "".join(out) + "</tr>")
    return f'<table class="heat"><tr>{head}</tr>{"".join(rows)}</table>'
