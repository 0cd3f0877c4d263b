"""Reports on the web: what a request asks for (period, zones, year, format) and the
downloads. Every figure, rule and file layout is `footfall_report`'s (docs/history.md,
"Reports"); this module only checks the request and wraps the answers in HTTP."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any, Final

from fastapi.responses import HTMLResponse, JSONResponse, Response

from footfall_contract.site import Site
from footfall_report import Period, PeriodError, Report, Statistics, UnknownZoneError, parse_period
from footfall_report.model import select_zones
from footfall_report.periods import ACCEPTED as ACCEPTED
from footfall_report.render import XLSX_MEDIA_TYPE, render_report, render_statistics
from footfall_report.render.words import figure_text, pct_text, status_word, when_text

from .history import BadParameter, parse_format

REPORT_FORMATS: Final = ("json", "csv", "xlsx", "html")
STATISTICS_FORMATS: Final = ("json", "csv")
XLSX_TYPE: Final = XLSX_MEDIA_TYPE
_MEDIA_TYPES: Final = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX_MEDIA_TYPE}
"""The downloads' media types (JSON and HTML have their own responses)."""
DEFAULT_PERIOD: Final = "last-month"
"""What the reports page shows first: the month managers file."""
QUICK_PERIODS: Final = (
    ("yesterday", "Yesterday"),
    ("this-week", "This week"),
    ("last-week", "Last week"),
    ("this-month", "This month"),
    ("last-month", "Last month"),
    ("this-year", "This year"),
    ("last-year", "Last year"),
)
_YEAR = re.compile(r"^\d{4}$")


class BadReportRequest(ValueError):
    """A report parameter that cannot be used; the message says which and why."""


def choose_format(text: str | None, allowed: Sequence[str]) -> str:
    try:
        return parse_format(text, allowed)
    except BadParameter as exc:
        raise BadReportRequest(str(exc)) from None


def choose_period(text: str | None, site: Site, now: dt.datetime) -> Period:
    """The period asked for; the error lists the accepted forms."""
    if text is None or not text.strip():
        raise BadReportRequest(f"period is required: {ACCEPTED}")
    try:
        period = parse_period(text, site, now)
    except PeriodError as exc:
        message = str(exc)
        if ACCEPTED not in message:
            message += f" (accepted: {ACCEPTED})"
        raise BadReportRequest(message) from None
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
            f"(zones: {', '.join(exc.known)})"
        ) from None
    return list(dict.fromkeys(zones)) or None


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def report_response(report: Report, fmt: str) -> Response:
    """JSON as the API's other answers (compact), HTML shown in the browser to print,
    the other formats (`footfall_report`'s renderers) as downloads."""
    if fmt == "json":
        return JSONResponse(report.as_dict())
    body = render_report(report, fmt)
    if fmt == "html":
        return HTMLResponse(body)
    name = f"{report.site}-visits-{report.period.key}.{fmt}"
    return Response(body, media_type=_MEDIA_TYPES[fmt], headers=_attachment(name))


def statistics_response(stats: Statistics, fmt: str) -> Response:
    if fmt == "json":
        return JSONResponse(stats.as_dict())
    name = f"{stats.site}-statistics-{stats.year}.{fmt}"
    body = render_statistics(stats, fmt)
    return Response(body, media_type=_MEDIA_TYPES[fmt], headers=_attachment(name))


# -- the reports page ----------------------------------------------------------------------


def _figure(value: int | None, estimated: bool, status: str = "no_data") -> str:
    return status_word(status) if value is None else figure_text(value, estimated)


def _when(iso: str | None) -> str:
    return "" if not iso else when_text(dt.datetime.fromisoformat(iso))


def page_view(data: dict[str, Any]) -> dict[str, Any]:
    """`Report.as_dict()` as the page's cells (text, already marked: * estimated), in
    `footfall_report`'s words."""
    zones: list[dict[str, Any]] = []
    raw_zones: list[dict[str, Any]] = data["zones"]
    for z in raw_zones:
        compared = []
        for key in ("month_before", "year_before"):
            c = z[key]
            compared.append(
                None
                if c is None
                else {
                    "period": c["period"],
                    "visits": _figure(c["entries"], c["estimated"]),
                    "change": pct_text(c["change_pct"]),
                }
            )
        zones.append(
            {
                "zone": z["zone"],
                "name": z["name"],
                "depth": z["depth"],
                "status": z["status"],
                "visits": _figure(z["entries"], z["estimated"], z["status"]),
                "exits": "" if z["exits"] is None else str(z["exits"]),
                "peak": "" if z["peak"] is None else figure_text(z["peak"], z["peak_estimated"]),
                "peak_at": _when(z["peak_at"]),
                "days_open": z["days_open"],
                "days_closed": z["days_closed"],
                "days_no_data": z["days_no_data"],
                "estimated_hours": z["estimated_hours"],
                "month_before": compared[0],
                "year_before": compared[1],
            }
        )
    days: list[dict[str, Any]] = []
    if raw_zones and len(raw_zones[0]["days"]) <= 31:
        for i, d in enumerate(raw_zones[0]["days"]):
            cells = []
            for z in raw_zones:
                day = z["days"][i]
                status = day["status"]
                counted = status in ("open", "closed_with_visits")
                # the cell's status class marks visits on a closed day, not a "!"
                text = _figure(day["entries"] if counted else None, day["estimated"], status)
                cells.append({"zone": z["zone"], "text": text, "status": status})
            days.append({"date": d["date"], "weekday": d["weekday"], "cells": cells})
    return {"zones": zones, "days": days}
