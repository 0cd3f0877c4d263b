"""The JSON API: the public crowding figures (no login), and for managers and API
clients the sites, live occupancy, history (JSON or CSV) and typical days; plus the
health check. Its schema is /openapi.json."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from footfall_contract.timefmt import format_ts

from .. import i18n, levels
from ..deps import ERRORS, SiteDep, UserDep, WebDep, ZoneDep
from ..history import BadParameter, history_csv, history_request, parse_format
from ..models import (
    HistoryOut,
    HistoryPoint,
    PublicCrowding,
    SiteInfo,
    SiteOccupancy,
    SitesOut,
    TypicalOut,
    ZoneInfo,
    ZoneOccupancy,
)
from ..publicview import public_crowding, typical_of
from ..state import LANG_COOKIE
from ..views import history_points

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
def healthz(web: WebDep) -> JSONResponse:
    ok = web.live.connected.is_set()
    return JSONResponse(
        {"ready": ok, "mqtt": ok, "mqtt_rejected": web.live.rejected_counts()},
        status_code=200 if ok else 503,
    )


# -- public API ------------------------------------------------------------------------


@router.get(
    "/api/v1/public/sites/{site}/zones/{zone}/crowding",
    response_model=PublicCrowding,
    responses=ERRORS,
    tags=["public"],
    summary="How busy a zone is now and later today (aggregates only, no login)",
)
def public_api(
    request: Request,
    response: Response,
    web: WebDep,
    site: str,
    zone: str,
    lang: str | None = None,
) -> PublicCrowding:
    if lang is not None and i18n.parse_lang(lang) is None:
        raise HTTPException(400, f"lang must be one of {', '.join(i18n.LANGS)}, not {lang[:20]!r}")
    web.public_zone(site, zone)
    chosen = i18n.choose(
        lang, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
    )
    response.headers["Vary"] = "Accept-Language, Cookie"
    return public_crowding(web, site, zone, chosen)


# -- manager API -----------------------------------------------------------------------


@router.get("/api/v1/sites", response_model=SitesOut, responses=ERRORS, tags=["sites"])
def sites(web: WebDep, _user: UserDep) -> SitesOut:
    now = web.now_datetime()
    return SitesOut(
        sites=[
            SiteInfo(
                site=s.site,
                name=s.name,
                names=s.names,
                timezone=s.timezone,
                open_now=s.is_open(now),
                zones=[
                    ZoneInfo(
                        id=z.id,
                        name=z.name,
                        names=z.names,
                        parent=z.parent,
                        capacity=z.capacity,
                        public=web.is_public(s.site, z.id),
                    )
                    for z in s.zones
                ],
            )
            for s in web.sites.values()
        ]
    )


@router.get(
    "/api/v1/sites/{site}/occupancy",
    response_model=SiteOccupancy,
    responses=ERRORS,
    tags=["sites"],
    summary="Live occupancy of every zone, agents and firing alerts",
)
def occupancy(site: str, web: WebDep, _user: UserDep, s: SiteDep) -> SiteOccupancy:
    snap = web.live.snapshot([site])[site]
    now = web.now_ms()
    stale = web.settings.crowding.stale_after_s
    zones = []
    for z in snap["zones"]:
        reading = web.live.reading(site, z["zone"])
        zones.append(ZoneOccupancy(**z, stale=levels.is_stale(reading, now, stale)))
    return SiteOccupancy(
        site=site,
        name=s.name,
        now=format_ts(now),
        zones=zones,
        agents=snap["agents"],
        alerts=snap["alerts"],
    )


@router.get(
    "/api/v1/sites/{site}/zones/{zone}/history",
    response_model=HistoryOut,
    responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
    tags=["sites"],
    summary="Occupancy (event time) and visits per interval, as JSON or CSV",
)
def history(
    site: str,
    zone: str,
    web: WebDep,
    _user: UserDep,
    s: ZoneDep,
    from_: Annotated[
        str | None,
        Query(alias="from", description="RFC 3339, 'now' or relative (-6h); default to - 6 h"),
    ] = None,
    to: Annotated[str | None, Query(description="RFC 3339, 'now' or relative")] = None,
    every: Annotated[
        str | None,
        Query(
            description="interval: 30s, 5m, 1h, 1d, 1w (a day or more: the site's "
            "calendar days, weeks from Monday); default about 300 points"
        ),
    ] = None,
    format: Annotated[str | None, Query(description="json (default) or csv")] = None,
) -> Response | HistoryOut:
    now_ms = web.now_ms()
    try:
        fmt = parse_format(format)
        req = history_request(
            site,
            zone,
            from_,
            to,
            every,
            now_ms,
            web.settings.board.max_points,
            timezone=s.timezone,
        )
    except BadParameter as exc:
        raise HTTPException(400, str(exc)) from None
    points = history_points(web, s, req, now_ms)
    if fmt == "csv":
        return Response(
            history_csv(points, s.tz),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{site}-{zone}-history.csv"'},
        )
    return HistoryOut(
        site=site,
        zone=zone,
        from_=format_ts(req.start_ms),
        to=format_ts(req.end_ms),
        every_s=req.every_s,
        timezone=s.timezone,
        capacity=s.zone(zone).capacity,
        points=[HistoryPoint(**p) for p in points],
    )


@router.get(
    "/api/v1/sites/{site}/zones/{zone}/typical",
    response_model=TypicalOut,
    responses=ERRORS,
    tags=["sites"],
    summary="Typical occupancy of a weekday from the past weeks",
)
def typical(
    site: str,
    zone: str,
    web: WebDep,
    _user: UserDep,
    weekday: Annotated[
        int | None, Query(ge=0, le=6, description="0 = Monday; default today (site time)")
    ] = None,
) -> TypicalOut:
    # in the body, not a dependency: a bad weekday is a 422 even for an unknown zone
    web.zone(site, zone)
    t = typical_of(web, site, zone, weekday)
    if t is None:
        raise HTTPException(503, "typical profiles unavailable (forecast module or InfluxDB)")
    peak = t.peak_slot
    return TypicalOut(
        site=site,
        zone=zone,
        weekday=t.weekday,
        step_min=t.step_min,
        weeks=t.weeks,
        values=list(t.values),
        peak_slot=peak,
        peak_time=None if peak is None else levels.slot_time(peak, t.step_min),
    )
