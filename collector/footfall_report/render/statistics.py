"""The annual statistics (visits per unit) as a terminal table, CSV, XLSX and HTML: one
row per unit in every format, the CSV columns (`STATISTICS_COLUMNS`) as docs/reports.md
documents them."""

from __future__ import annotations

import csv
import io
from typing import Final

from ..model import Statistics
from .htmlpage import CSS, escape, status_class, td
from .table import aligned
from .words import EST, months_text, when_text, yes

__all__ = [
    "STATISTICS_COLUMNS",
    "render_statistics_csv",
    "render_statistics_html",
    "render_statistics_table",
    "render_statistics_xlsx",
]

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
                yes(u.estimated_hours > 0),
                u.estimated_hours,
                months_text(stats.year, u.estimated_months),
                months_text(stats.year, u.closed_months),
                months_text(stats.year, u.no_data_months),
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
            months_text(stats.year, u.estimated_months) or "–",
            months_text(stats.year, u.closed_months) or "–",
            months_text(stats.year, u.no_data_months) or "–",
        ]
        for u in stats.units
    ]
    out.append(
        aligned(["Unit", "Visits", "Estimated months", "Closed months", "No-data months"], rows)
    )
    out += [
        "",
        f"{EST} includes estimated hours. Estimated month: at least one hour estimated; "
        "closed month: no open day; no-data month: an open day without data.",
    ]
    return "\n".join(out) + "\n"


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


def render_statistics_html(stats: Statistics) -> str:
    title = f"{stats.site_name}: visits per unit, {stats.year}"
    rows = []
    for u in stats.units:
        visits = "no data" if u.visits is None else f"{u.visits}{EST if u.estimated_hours else ''}"
        indent = f' style="padding-left:{0.45 + 1.2 * u.depth:.2f}em"'
        rows.append(
            f'<tr data-zone="{escape(u.zone)}"><td class="l"{indent}>{escape(u.name)}</td>'
            f"{td(visits, status_class(visits))}"
            f"{td(months_text(stats.year, u.estimated_months) or '–', 'l')}"
            f"{td(months_text(stats.year, u.closed_months) or '–', 'l')}"
            f"{td(months_text(stats.year, u.no_data_months) or '–', 'l')}</tr>"
        )
    return (
        "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
                f"<h1>{escape(title)}</h1>",
                f'<p class="meta">Calendar year {stats.year}. Generated '
                f"{escape(when_text(stats.generated_at))}.</p>",
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
