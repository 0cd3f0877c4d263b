"""The report as one self-contained HTML page (inline CSS, no scripts, no external
requests) that prints on one A4 sheet for a day, week or month, in the words of a
`Wording` (English unless told); the style and cell helpers are shared with the
statistics page."""

from __future__ import annotations

import html
from typing import Final

from ..model import DayFigure, DoorFigure, Report, ZoneReport
from .wording import ENGLISH, Wording
from .words import CLOSED_VISITS, EST, figure_text, show_days

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


def status_class(text: str, w: Wording = ENGLISH) -> str:
    if text == w.texts["closed"]:
        return "closed"
    if text == w.texts["no_data"]:
        return "nodata"
    if text.endswith(CLOSED_VISITS):
        return "flag"
    if text.endswith(EST):
        return "est"
    return ""


def render_html(report: Report, w: Wording = ENGLISH) -> str:
    """One self-contained page (inline CSS, no scripts, no external requests) that prints
    on one A4 sheet for a day, week or month."""
    title = w.t("title", site=w.site_name or report.site_name, period=w.period_label(report.period))
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{escape(w.lang)}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(_period_line(report, w))}. '
        f"{escape(w.t('generated', when=w.when(report.generated_at)))}</p>",
        f"<h2>{escape(w.t('per_zone'))}</h2>",
        _html_summary(report, w),
    ]
    notes = [
        f"<b>{escape(_name(z, w))}</b>: {escape('; '.join(_flags(z, w)))}"
        for z in report.zones
        if _flags(z, w)
    ]
    if notes:
        parts.append('<p class="legend">' + ". ".join(notes) + ".</p>")
    parts.append('<div class="cols"><div>')
    if show_days(report):
        parts += [f"<h2>{escape(w.t('per_day'))}</h2>", _html_days(report, w)]
    else:
        parts += [f"<h2>{escape(w.t('per_month'))}</h2>", _html_months(report, w)]
    parts.append("</div><div>")
    parts += [f"<h2>{escape(w.t('doors'))}</h2>", _html_doors(report, w)]
    if report.zones:
        z = report.zones[0]
        parts += [f"<h2>{escape(w.t('profile', zone=_name(z, w)))}</h2>", _html_profile(z, w)]
    parts.append("</div></div>")
    parts.append(f'<p class="legend">{html.escape(w.legend(), quote=False)}</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _name(z: ZoneReport, w: Wording) -> str:
    return w.names.get(z.zone, z.name)


def _period_line(report: Report, w: Wording) -> str:
    p = report.period
    span = w.date(p.first) if p.first == p.last else f"{w.date(p.first)} – {w.date(p.last)}"
    line = w.t("period_line", label=w.period_label(p), span=span, timezone=report.timezone)
    if report.in_progress:
        line += w.t("in_progress", when=w.when(report.generated_at))
    return line


def _flags(z: ZoneReport, w: Wording) -> list[str]:
    """What to keep in mind about a zone's figures (as `words.flags`, in `w`'s words)."""
    out = []
    if z.estimated:
        out.append(w.t("estimated", hours=z.estimated_hours))
    if z.days_no_data:
        out.append(w.t("with_no_data", days=w.count_days(z.days_no_data)))
    closed = z.closed_with_visits
    if len(closed) > 6:
        first, last = w.date(closed[0]), w.date(closed[-1])
        out.append(w.t("closed_visits_many", count=len(closed), first=first, last=last))
    elif closed:
        out.append(w.t("closed_visits", dates=", ".join(w.date(d) for d in closed)))
    if z.days_not_yet:
        out.append(w.t("to_come", days=w.count_days(z.days_not_yet)))
    return out


def _day_cell(d: DayFigure, w: Wording) -> str:
    if d.status in ("open", "closed_with_visits"):
        mark = (EST if d.estimated else "") + (CLOSED_VISITS if d.status != "open" else "")
        return f"{d.entries}{mark}"
    return w.status(d.status)


def _html_summary(report: Report, w: Wording) -> str:
    month = report.zones[0].month_before if report.zones else None
    year = report.zones[0].year_before if report.zones else None
    head = [
        f'<th class="l">{escape(w.t("zone"))}</th>',
        *(f"<th>{escape(w.t(k))}</th>" for k in ("visits", "exits", "peak")),
        f'<th class="l">{escape(w.t("peak_at"))}</th>',
        *(
            f"<th>{escape(w.t(k))}</th>"
            for k in ("days_open", "days_closed", "days_no_data", "estimated_hours")
        ),
    ]
    for c in (month, year):
        if c:
            head += [f"<th>{escape(c.period.key)}</th>", f"<th>{escape(w.t('change'))}</th>"]
    rows = []
    for z in report.zones:
        visits = w.status(z.status) if z.entries is None else figure_text(z.entries, z.estimated)
        indent = f' style="padding-left:{0.45 + 1.2 * z.depth:.2f}em"'
        cells = [
            f'<td class="l"{indent}>{escape(_name(z, w))}</td>',
            td(visits, status_class(visits, w)),
            td(str(z.exits) if z.exits is not None else ""),
            td(f"{z.peak}{EST if z.peak_estimated else ''}" if z.peak is not None else ""),
            td(w.when(z.peak_at), "l"),
            td(str(z.days_open)),
            td(str(z.days_closed)),
            td(str(z.days_no_data), "nodata" if z.days_no_data else ""),
            td(str(z.estimated_hours), "est" if z.estimated_hours else ""),
        ]
        for c in (z.month_before, z.year_before):
            if c is None:
                continue
            value = w.texts["no_data"] if c.entries is None else figure_text(c.entries, c.estimated)
            cells += [td(value, status_class(value, w)), td(w.pct(c.change_pct))]
        rows.append(f'<tr data-zone="{escape(z.zone)}">' + "".join(cells) + "</tr>")
    return f"<table><tr>{''.join(head)}</tr>{''.join(rows)}</table>"


def _zone_heads(report: Report, w: Wording) -> str:
    return "".join(f'<th title="{escape(_name(z, w))}">{escape(z.zone)}</th>' for z in report.zones)


def _html_days(report: Report, w: Wording) -> str:
    head = f'<th class="l">{escape(w.t("date"))}</th>' + _zone_heads(report, w)
    rows = []
    for i, day in enumerate(report.period.days()):
        cells = [td(w.day(day), "l")]
        for z in report.zones:
            text = _day_cell(z.days[i], w)
            cells.append(td(text, status_class(text, w)))
        rows.append(f'<tr data-date="{day.isoformat()}">' + "".join(cells) + "</tr>")
    return f'<table class="days"><tr>{head}</tr>{"".join(rows)}</table>'


def _month_cell(z: ZoneReport, i: int, w: Wording) -> str:
    m = z.months[i]
    if m.entries is None:
        if m.closed:
            return w.texts["closed"]
        return w.status("not_yet" if m.days_not_yet and not m.days_no_data else "no_data")
    return figure_text(m.entries, m.estimated)


def _html_months(report: Report, w: Wording) -> str:
    head = f'<th class="l">{escape(w.t("month"))}</th>' + _zone_heads(report, w)
    rows = []
    keys = [m.key for m in report.zones[0].months] if report.zones else []
    for i, key in enumerate(keys):
        cells = [td(key, "l")]
        for z in report.zones:
            text = _month_cell(z, i, w)
            cells.append(td(text, status_class(text, w)))
        rows.append(f'<tr data-month="{key}">' + "".join(cells) + "</tr>")
    return f'<table class="days"><tr>{head}</tr>{"".join(rows)}</table>'


def _doors_note(report: Report, w: Wording) -> str:
    doors = report.doors
    kept = doors.available_from
    date = w.date(kept) if kept is not None else str(kept)
    if doors.status == "not_available":
        return w.t("doors_not_available", date=date)
    if doors.status == "partial":
        return w.t("doors_partial", date=date)
    return ""


def _door_label(d: DoorFigure, w: Wording) -> str:
    """The model's label, or in `w`'s words and names when it has names of its own."""
    if not w.names:
        return d.label
    if d.inside is None:
        return w.t("not_in_site")
    outside = w.names.get(d.outside, d.outside) if d.outside else w.t("outside")
    return f"{outside} → {w.names.get(d.inside, d.inside)}"


def _html_doors(report: Report, w: Wording) -> str:
    note = _doors_note(report, w)
    text = f"<p>{escape(note)}</p>" if note else ""
    if report.doors.status == "not_available":
        return text
    rows = "".join(
        f'<tr data-door="{escape(d.door)}">{td(d.door, "l")}{td(_door_label(d, w), "between")}'
        f"{td(str(d.entries))}{td(str(d.exits))}</tr>"
        for d in report.doors.doors
    )
    head = (
        f'<th class="l">{escape(w.t("door"))}</th><th class="l">{escape(w.t("between"))}</th>'
        f"<th>{escape(w.t('in'))}</th><th>{escape(w.t('out'))}</th>"
    )
    return f"{text}<table><tr>{head}</tr>{rows}</table>"


def _html_profile(z: ZoneReport, w: Wording) -> str:
    hours = [h for h in range(24) if any(z.profile[d][h].mean for d in range(7))]
    if not hours:
        return f"<p>{escape(w.t('no_hourly'))}</p>"
    top = max((c.mean or 0.0) for cells in z.profile for c in cells) or 1.0
    head = '<th class="l"></th>' + "".join(f"<th>{h:02d}</th>" for h in hours)
    rows = []
    for weekday, cells in enumerate(z.profile):
        out = [td(w.weekdays[weekday], "l")]
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
