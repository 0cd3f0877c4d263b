"""footfall-report: visits per zone and door for a day, week, month or year, from the
rollups (docs/history.md, docs/reports.md). The functions below are the API the web
board and the CLI share."""

from __future__ import annotations

from .model import Report, ReportError, Statistics, UnknownZoneError
from .periods import Period, PeriodError, parse_period
from .render import (
    render_csv,
    render_html,
    render_statistics_csv,
    render_xlsx,
)
from .source import SourceError, load_report, load_statistics

__all__ = [
    "Period",
    "PeriodError",
    "Report",
    "ReportError",
    "SourceError",
    "Statistics",
    "UnknownZoneError",
    "load_report",
    "load_statistics",
    "parse_period",
    "render_csv",
    "render_html",
    "render_statistics_csv",
    "render_xlsx",
]
