"""Reports on the web: what a request asks for (period, zones, year, format) and the
downloads. Every figure, rule and file layout is `footfall_report`'s (docs/history.md,
"Reports"); this module only checks the request and wraps the answers in HTTP (the page's
words in the visitor's language are `reportpage`'s)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Final

from fastapi.responses import HTMLResponse, JSONResponse, Response

from footfall_contract.site import Site
from footfall_report import Period, PeriodError, Report, Statistics, UnknownZoneError, parse_period
from footfall_report.model import select_zones
from footfall_report.periods import ACCEPTED as ACCEPTED
from footfall_report.render import XLSX_MEDIA_TYPE, render_html, render_report, render_statistics
from footfall_report.render.wording import ENGLISH, Wording

from .history import BadParameter, parse_format

REPORT_FORMATS: Final = ("json", "csv", "xlsx", "html")
STATISTICS_FORMATS: Final = ("json", "csv")
XLSX_TYPE: Final = XLSX_MEDIA_TYPE
_MEDIA_TYPES: Final = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX_MEDIA_TYPE}
"""The downloads' media types (JSON and HTML have their own responses)."""
DEFAULT_PERIOD: Final = "last-month"
"""What the reports page shows first: the month managers file."""
QUICK_PERIODS: Final = (
    "yesterday",
    "this-week",
    "last-week",
    "this-month",
    "last-month",
    "this-year",
    "last-year",
)
"""The page's quick links; `REPORT_TEXTS` names each (the key with "_" for "-")."""
_YEAR = re.compile(r"^\d{4}$")


class BadReportRequest(ValueError):
    """A report parameter that cannot be used; the message says which and why (in
    English, as the API answers), `reason` and `details` say it again for the page."""

    def __init__(self, message: str, reason: str = "", **details: object) -> None:
        super().__init__(message)
        self.reason = reason
        self.details = details


def choose_format(text: str | None, allowed: Sequence[str]) -> str:
    try:
        return parse_format(text, allowed)
    except BadParameter as exc:
        raise BadReportRequest(str(exc)) from None


def choose_period(text: str | None, site: Site, now: dt.datetime) -> Period:
    """The period asked for; the error lists the accepted forms."""
    if text is None or not text.strip():
        raise BadReportRequest(f"period is required: {ACCEPTED}", "required")
    try:
        period = parse_period(text, site, now)
    except PeriodError as exc:
        message = str(exc)
        if ACCEPTED not in message:
            message += f" (accepted: {ACCEPTED})"
        raise BadReportRequest(message, exc.reason, **exc.details) from None
    return period


def choose_year(text: str | None, site: Site, now: dt.datetime) -> int:
    if text is None or not text.strip():
        raise BadReportRequest("year is required: a calendar year like 2026")
    if not _YEAR.match(text.strip()):
        raise BadReportRequest(f"year must be a calendar year like 2026, not {text!r}")
    try:
        year = parse_period(text.strip(), site, now).first.year
    except PeriodError as exc:
        raise BadReportRequest(f"year {text.strip()}: {exc}") from None
    return year


def choose_zones(values: Sequence[str] | None, site: Site) -> list[str] | None:
    """`zone` repeated or comma-separated; None (every zone) when not given."""
    if not values:
        return None
    zones = [z.strip() for v in values for z in v.split(",") if z.strip()]
    try:
        select_zones(site, zones)
    except UnknownZoneError as exc:
        raise BadReportRequest(
            f"unknown zone {', '.join(repr(z) for z in exc.unknown)} in site {site.site!r} "
            f"(zones: {', '.join(exc.known)})",
            "zone",
            zones=list(exc.unknown),
            known=list(exc.known),
        ) from None
    return list(dict.fromkeys(zones)) or None


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def report_response(report: Report, fmt: str, words: Wording | None = None) -> Response:
    """JSON as the API's other answers (compact), HTML shown in the browser to print
    (in `words`' language), the other formats (`footfall_report`'s renderers, their
    column headers kept: a machine-readable interface) as downloads."""
    if fmt == "json":
        return JSONResponse(report.as_dict())
    if fmt == "html":
        return HTMLResponse(render_html(report, words or ENGLISH))
    body = render_report(report, fmt)
    name = f"{report.site}-visits-{report.period.key}.{fmt}"
    return Response(body, media_type=_MEDIA_TYPES[fmt], headers=_attachment(name))


def statistics_response(stats: Statistics, fmt: str) -> Response:
    if fmt == "json":
        return JSONResponse(stats.as_dict())
    name = f"{stats.site}-statistics-{stats.year}.{fmt}"
    body = render_statistics(stats, fmt)
    return Response(body, media_type=_MEDIA_TYPES[fmt], headers=_attachment(name))
