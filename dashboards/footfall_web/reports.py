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
from footfall_report import (
    Period,
    PeriodError,
    Report,
    Statistics,
    parse_period,
    render_csv,
    render_html,
    render_statistics_csv,
    render_xlsx,
)
from footfall_report.periods import ACCEPTED as ACCEPTED

REPORT_FORMATS: Final = ("json", "csv", "xlsx", "html")
STATISTICS_FORMATS: Final = ("json", "csv")
XLSX_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
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
    fmt = (text or "json").strip().lower()
    if fmt not in allowed:
        raise BadReportRequest(f"format must be one of {', '.join(allowed)}, not {text!r}")
    return fmt


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
    known = [z.id for z in site.zones]
    unknown = [z for z in zones if z not in known]
    if unknown:
        raise BadReportRequest(
            f"unknown zone {', '.join(repr(z) for z in unknown)} in site {site.site!r} "
            f"(zones: {', '.join(known)})"
        )
    return list(dict.fromkeys(zones)) or None


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def report_response(report: Report, fmt: str) -> Response:
    name = f"{report.site}-visits-{report.period.key}"
    if fmt == "csv":
        return Response(
            render_csv(report),
            media_type="text/csv; charset=utf-8",
            headers=_attachment(f"{name}.csv"),
        )
    if fmt == "xlsx":
        return Response(
            render_xlsx(report), media_type=XLSX_TYPE, headers=_attachment(f"{name}.xlsx")
        )
    if fmt == "html":  # shown in the browser, to print
        return HTMLResponse(render_html(report))
    return JSONResponse(report.as_dict())


def statistics_response(stats: Statistics, fmt: str) -> Response:
    if fmt == "csv":
        return Response(
            render_statistics_csv(stats),
            media_type="text/csv; charset=utf-8",
            headers=_attachment(f"{stats.site}-statistics-{stats.year}.csv"),
        )
    return JSONResponse(stats.as_dict())


# -- the reports page ----------------------------------------------------------------------

EST: Final = "*"
STATUS_WORDS: Final = {"closed": "closed", "no_data": "no data", "not_yet": "–"}


def _figure(entries: int | None, estimated: bool, status: str = "counted") -> str:
    if entries is None:
        return STATUS_WORDS.get(status, "no data")
    return f"{entries}{EST if estimated else ''}"


def _change(pct: float | None) -> str:
    return "" if pct is None else f"{pct:+.1f} %"


def _when(iso: str | None) -> str:
    return "" if not iso else dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")


def page_view(data: dict[str, Any]) -> dict[str, Any]:
    """`Report.as_dict()` as the page's cells (text, already marked: * estimated)."""
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
                    "change": _change(c["change_pct"]),
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
                "peak": ""
                if z["peak"] is None
                else f"{z['peak']}{EST if z['peak_estimated'] else ''}",
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
                text = (
                    _figure(day["entries"], day["estimated"])
                    if status in ("open", "closed_with_visits")
                    else STATUS_WORDS.get(status, status)
                )
                cells.append({"zone": z["zone"], "text": text, "status": status})
            days.append({"date": d["date"], "weekday": d["weekday"], "cells": cells})
    return {"zones": zones, "days": days}
