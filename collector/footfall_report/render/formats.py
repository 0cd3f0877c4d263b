"""Which renderer makes which output format: the one table from a format's name to its
text or bytes, for the CLI (and any other caller) instead of a chain of ifs in each."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final, Protocol

from ..model import Report, Statistics
from .csvfile import render_csv
from .htmlpage import render_html
from .statistics import (
    render_statistics_csv,
    render_statistics_html,
    render_statistics_table,
    render_statistics_xlsx,
)
from .table import render_table
from .xlsx import render_xlsx

__all__ = ["FORMATS", "render_json", "render_report", "render_statistics"]

FORMATS: Final = ("table", "csv", "xlsx", "html", "json")
"""Every format, the default (`table`) first."""


class _AsDict(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


def render_json(figures: _AsDict) -> str:
    """`as_dict()` as indented JSON, non-ASCII letters as they are."""
    return json.dumps(figures.as_dict(), indent=2, ensure_ascii=False) + "\n"


_REPORT: Final[dict[str, Callable[[Report], str | bytes]]] = {
    "table": render_table,
    "csv": render_csv,
    "xlsx": render_xlsx,
    "html": render_html,
    "json": render_json,
}
_STATISTICS: Final[dict[str, Callable[[Statistics], str | bytes]]] = {
    "table": render_statistics_table,
    "csv": render_statistics_csv,
    "xlsx": render_statistics_xlsx,
    "html": render_statistics_html,
    "json": render_json,
}


def render_report(report: Report, fmt: str) -> str | bytes:
    """The report in `fmt`, one of `FORMATS` (XLSX as bytes, the others as text)."""
    return _REPORT[fmt](report)


def render_statistics(stats: Statistics, fmt: str) -> str | bytes:
    """The statistics in `fmt`, one of `FORMATS` (XLSX as bytes, the others as text)."""
    return _STATISTICS[fmt](stats)
