"""A Report (or the annual Statistics) as a terminal table, CSV, XLSX, one-page HTML or
JSON. Renderers only format: every figure and flag comes from the model. The CSV column
layouts (`CSV_COLUMNS`, `STATISTICS_COLUMNS`) are documented in docs/reports.md and kept
stable. One module per format (`table`, `csvfile`, `xlsx`, `htmlpage`), the annual
statistics in every format (`statistics`), the wording they share (`words`) and the
format table (`formats`); this package's names are the API.
"""

from .csvfile import CSV_COLUMNS, render_csv
from .formats import FORMATS, render_json, render_report, render_statistics
from .htmlpage import render_html
from .statistics import (
    STATISTICS_COLUMNS,
    render_statistics_csv,
    render_statistics_html,
    render_statistics_table,
    render_statistics_xlsx,
)
from .table import render_table
from .xlsx import XLSX_MEDIA_TYPE, render_xlsx

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "STATISTICS_COLUMNS",
    "XLSX_MEDIA_TYPE",
    "render_csv",
    "render_html",
    "render_json",
    "render_report",
    "render_statistics",
    "render_statistics_csv",
    "render_statistics_html",
    "render_statistics_table",
    "render_statistics_xlsx",
    "render_table",
    "render_xlsx",
]
