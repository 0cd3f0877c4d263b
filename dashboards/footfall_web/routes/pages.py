"""The manager's pages: the live board, an agency's page and the reports page. Each asks
for a login (a redirect back after it) and answers in the visitor's language."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from .. import i18n, i18n_reports, levels, reportpage, reports
from ..deps import WebDep
from ..pagekit import base, login_redirect, page_lang, remember_lang, switcher, templates
from ..views import report_of, zone_view

router = APIRouter()


@router.get("/", include_in_schema=False, response_model=None)
def board(
    request: Request, web: WebDep, site: Annotated[list[str] | None, Query()] = None
) -> Response:
    if web.user(request) is None:
        return login_redirect(request, "/")
    sites_version = web.sites_version  # before the sites: a change between is seen anew
    current = web.sites  # read once: one version of each site, though the folder changes
    wanted = site or list(current)
    chosen = {s: web.site(s, current) for s in wanted}
    lang = page_lang(request)
    state = {
        "lang": lang,
        "locale": i18n.LOCALES[lang],
        "texts": i18n.BOARD_TEXTS[lang],
        "a11y": {
            **i18n.ZONE_TEXTS[lang],
            "levels": {k: i18n.TEXTS[lang][k] for k in levels.LEVELS},
        },
        # names in the board's language, site time zones for site-local times
        "names": {
            s: {
                "name": chosen[s].name_in(lang),
                "timezone": chosen[s].timezone,
                "zones": {z.id: z.name_in(lang) for z in chosen[s].zones},
            }
            for s in wanted
        },
        "sites": wanted,
        "every_site": site is None,  # a new site file joins this board (board.js reloads)
        "sites_version": sites_version,
        "snapshot": web.live.snapshot(wanted),
        "now": web.now_ms(),
        "stale_after_s": web.settings.crowding.stale_after_s,
        "thresholds": {
            f"{s}/{z.id}": web.settings.crowding.thresholds(s, z.id).model_dump()
            for s in wanted
            for z in chosen[s].zones
        },
        "sparkline_hours": web.settings.board.sparkline_hours,
        "base": base(request),
        "login": web.login_required,
        "actions": {s: web.alert_actions(s) for s in wanted},
        "silence_hours": web.settings.alerts.silence_hours,
        "csrf": web.csrf_token(request),
    }
    response = templates.TemplateResponse(
        request,
        "board.html",
        {
            "state": state,
            "base": base(request),
            "login": web.login_required,
            **switcher(lang),
            "texts": i18n.BOARD_TEXTS[lang],
            "site_names": {s: chosen[s].name_in(lang) for s in wanted},
            "site_query": "".join(f"&site={quote(s)}" for s in site or []),
        },
    )
    remember_lang(request, response)
    return response


@router.get("/zones/{site}/{zone}", include_in_schema=False, response_model=None)
def zone_page(request: Request, web: WebDep, site: str, zone: str) -> Response:
    """One agency: now, today so far by hour, this week by day, and its links."""
    if web.user(request) is None:
        return login_redirect(request, request.url.path.removeprefix(base(request)))
    lang = page_lang(request)
    context: dict[str, Any] = {
        "base": base(request),
        "login": web.login_required,
        **switcher(lang),
        "texts": i18n.ZONE_TEXTS[lang],
        "board_texts": i18n.BOARD_TEXTS[lang],
        "error": None,
        "site": None,
    }
    try:
        s = web.zone(site, zone)
    except HTTPException as exc:
        context["error"] = i18n.ZONE_TEXTS[lang]["not_found"].format(error=exc.detail)
        return templates.TemplateResponse(request, "zone.html", context, status_code=404)
    context.update(zone_view(web, s, zone, lang, base(request)))
    response = templates.TemplateResponse(
        request, "zone.html", context, status_code=503 if context["error"] else 200
    )
    remember_lang(request, response)
    return response


@router.get("/reports/{site}", include_in_schema=False, response_model=None)
def reports_page(
    request: Request,
    web: WebDep,
    site: str,
    period: str | None = None,
    zone: Annotated[list[str] | None, Query()] = None,
) -> Response:
    if web.user(request) is None:
        target = request.url.path.removeprefix(base(request))
        if request.url.query:
            target += "?" + request.url.query
        return login_redirect(request, target)
    s = web.site(site)
    lang = page_lang(request)
    text = period if period and period.strip() else reports.DEFAULT_PERIOD
    context: dict[str, Any] = {
        "base": base(request),
        "login": web.login_required,
        **switcher(lang),
        "texts": i18n_reports.REPORT_TEXTS[lang],
        "log_out": i18n.BOARD_TEXTS[lang]["log_out"],
        "site": s,
        "site_name": s.name_in(lang),
        "zone_names": [(z.id, z.name_in(lang)) for z in s.zones],
        "period_text": text,
        "zone": zone or [],
        "quick": reportpage.quick_periods(lang),
        "error": None,
        "report": None,
    }
    status = 200
    try:
        chosen = reports.choose_period(text, s, web.now_datetime())
        zones = reports.choose_zones(zone, s)
        report = report_of(web, s, chosen, zones)
    except reports.BadReportRequest as exc:
        context["error"], status = reportpage.error_text(exc, lang), 400
    except HTTPException as exc:
        if exc.status_code == 400:  # a zone the report cannot use
            context["error"], status = str(exc.detail), 400
        else:
            context["error"] = reportpage.unavailable_text(str(exc.detail), lang)
            status = exc.status_code
    else:
        query = [("period", chosen.key)] + [("zone", z) for z in zones or []]
        api = f"{base(request)}/api/v1/sites/{site}/reports"
        context.update(
            report=report.as_dict(),
            view=reportpage.page_view(report, s, lang),
            period_text=chosen.key,
            downloads={
                fmt: f"{api}/visits?" + urlencode([*query, ("format", fmt)])
                for fmt in ("csv", "xlsx")
            }
            | {"html": f"{api}/visits?" + urlencode([*query, ("format", "html"), ("lang", lang)])},
            statistics=f"{api}/statistics?"
            + urlencode([("year", chosen.first.year), ("format", "csv")]),
        )
    response = templates.TemplateResponse(request, "reports.html", context, status_code=status)
    remember_lang(request, response)
    return response
