"""The report as a plain-text table for a terminal or the body of a mail: columns padded
to their widest cell, per-day or per-month visits below the per-zone summary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..model import Report
from .words import (
    CLOSED_VISITS,
    EST,
    compared_cell,
    day_cell,
    doors_note,
    flags,
    month_cell,
    period_line,
    show_days,
    visits_cell,
    when_text,
)

__all__ = ["aligned", "render_table"]


def aligned(headers: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1) -> str:
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
    out = [f"{report.site_name} ({report.site}): {period_line(report)}", ""]
    out.append("Visits per zone")
    rows = []
    for z in report.zones:
        rows.append(
            [
                "  " * z.depth + z.name,
                visits_cell(z),
                str(z.exits) if z.exits is not None else "",
                f"{z.peak}{EST if z.peak_estimated else ''}" if z.peak is not None else "",
                when_text(z.peak_at),
                str(z.days_open),
                str(z.days_closed),
                str(z.days_no_data),
                str(z.estimated_hours),
                compared_cell(z.month_before),
                compared_cell(z.year_before),
            ]
        )
    month = report.zones[0].month_before if report.zones else None
    year = report.zones[0].year_before if report.zones else None
    out.append(
        aligned(
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
    notes = [f"{z.name}: {'; '.join(flags(z))}" for z in report.zones if flags(z)]
    out += ["", f"{EST} includes estimated hours (an agent offline or faulty)."]
    out += notes
    out += ["", "Doors (raw crossings)"]
    note = doors_note(report)
    if note:
        out.append(note)
    if report.doors.status != "not_available":
        out.append(
            aligned(
                ["Door", "Between", "In", "Out"],
                [[d.door, d.label, str(d.entries), str(d.exits)] for d in report.doors.doors],
                left=2,
            )
        )
    out += [""]
    if show_days(report):
        out.append("Visits per day")
        out.append(
            aligned(
                ["Date", *[z.zone for z in report.zones]],
                [
                    [
                        f"{day:%a %Y-%m-%d}",
                        *[day_cell(z.days[i]) for z in report.zones],
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
            aligned(
                ["Month", *[z.zone for z in report.zones]],
                [[key, *[month_cell(z, i) for z in report.zones]] for i, key in enumerate(keys)],
            )
        )
    return "\n".join(out) + "\n"
