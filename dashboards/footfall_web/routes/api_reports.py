"""The reports in the JSON API: visits of a period (JSON, CSV, XLSX or HTML) and the
annual statistics, as footfall_report computes them from the rollups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from footfall_collector.influx import PermanentWriteError, RetryableWriteError
from footfall_report import SourceError, load_statistics

from .. import reportpage, reports
from ..deps import ERRORS, SiteDep, UserDep, WebDep
from ..pagekit import page_lang
from ..views import report_of

router = APIRouter()


@router.get(
    "/api/v1/sites/{site}/reports/visits",
    responses={
        **ERRORS,
        200: {
            "description": "The report (JSON), or the file in the format asked for",
            "content": {"text/csv": {}, reports.XLSX_TYPE: {}, "text/html": {}},
        },
    },
    tags=["reports"],
    summary="Visits per zone and door for a day, week, month or year (from the rollups)",
)
def visits_report(
    request: Request,
    site: str,
    web: WebDep,
    _user: UserDep,
    s: SiteDep,
    period: Annotated[
        str | None,
        Query(description="2026-11-23, 2026-W47, 2026-11, 2026, or last-month, ..."),
    ] = None,
    zone: Annotated[
        list[str] | None, Query(description="zones (repeat or comma-separate); default all")
    ] = None,
    format: Annotated[str | None, Query(description="json (default), csv, xlsx or html")] = None,
    lang: Annotated[
        str | None,
        Query(description="the HTML page's language: fi, sv or en (else as the pages choose)"),
    ] = None,
) -> Response:
    try:
        fmt = reports.choose_format(format, reports.REPORT_FORMATS)
        chosen = reports.choose_period(period, s, web.now_datetime())
        zones = reports.choose_zones(zone, s)
    except reports.BadReportRequest as exc:
        raise HTTPException(400, str(exc)) from None
    # only the printable page is for people: its words follow the pages' language choice
    words = reportpage.wording(page_lang(request), s) if fmt == "html" else None
    response = reports.report_response(report_of(web, s, chosen, zones), fmt, words)
    if words is not None:
        response.headers["Vary"] = "Accept-Language, Cookie"
    return response


@router.get(
    "/api/v1/sites/{site}/reports/statistics",
    responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
    tags=["reports"],
    summary="Annual visits per unit, in the shape of the Finnish library statistics",
)
def statistics_report(
    site: str,
    web: WebDep,
    _user: UserDep,
    s: SiteDep,
    year: Annotated[str | None, Query(description="calendar year, e.g. 2026")] = None,
    format: Annotated[str | None, Query(description="json (default) or csv")] = None,
) -> Response:
    try:
        fmt = reports.choose_format(format, reports.STATISTICS_FORMATS)
        chosen = reports.choose_year(year, s, web.now_datetime())
    except reports.BadReportRequest as exc:
        raise HTTPException(400, str(exc)) from None
    try:
        stats = load_statistics(web.influx, s, chosen, now=web.now_datetime())
    except (SourceError, RetryableWriteError, PermanentWriteError) as exc:
        raise HTTPException(503, f"InfluxDB unavailable: {exc}") from None
    return reports.statistics_response(stats, fmt)
