"""The public display for visitors (no login): a zone's crowding page, the index of a
site's displays, and the friendly 404 page that lists them. A person at a kiosk or a
phone always gets a page in their language, never a JSON error."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from .. import i18n
from ..deps import WebDep
from ..pagekit import base, page_lang, page_theme, remember_lang, templates
from ..publicview import public_crowding
from ..state import Web

router = APIRouter()


def _displays(request: Request, web: Web, site: str | None, lang: i18n.Lang) -> list[Any]:
    """The public displays of `site` (of every site for None), as links."""
    return [
        {
            "href": f"{base(request)}/crowding/{s.site}/{z.id}",
            "name": z.name_in(lang),
            "site": s.name_in(lang),
        }
        for s in web.sites.values()
        if site in (None, s.site)
        for z in web.public_zones(s.site)
    ]


def not_found_page(request: Request, web: Web, path: str) -> Response:
    """The public display's 404: a page in the visitor's language that lists the
    public displays there are (of the site in the path, else of every site)."""
    lang = page_lang(request)
    parts = path.split("/")
    site = parts[2] if len(parts) > 2 and parts[2] in web.sites else None
    response = templates.TemplateResponse(
        request,
        "notfound.html",
        {
            "base": base(request),
            "lang": lang,
            "texts": i18n.TEXTS[lang],
            "languages": i18n.LANGUAGE_NAMES,
            "displays": _displays(request, web, site, lang),
            "show_site": site is None and len(web.sites) > 1,
        },
        status_code=404,
    )
    remember_lang(request, response)
    return response


@router.get("/crowding/{site}/{zone}", include_in_schema=False)
def crowding_page(
    request: Request,
    web: WebDep,
    site: str,
    zone: str,
    lang: str | None = None,
    kiosk: str | None = None,
) -> HTMLResponse:
    # a page for people: an unknown ?lang= falls back (page_lang), a missing
    # display is the friendly 404 page (app's HTTP error handler), never a JSON error
    web.public_zone(site, zone)
    chosen = page_lang(request)
    view = public_crowding(web, site, zone, chosen)
    response = templates.TemplateResponse(
        request,
        "crowding.html",
        {
            "view": view,
            "texts": i18n.TEXTS[chosen],
            "lang": chosen,
            "languages": i18n.LANGUAGE_NAMES,
            "base": base(request),
            "kiosk": kiosk is not None and kiosk.lower() in ("1", "true", "yes", "on"),
            "theme": page_theme(request),
            "a11y": i18n.ZONE_TEXTS[chosen],
            "refresh_s": web.settings.crowding.refresh_s,
            "state": {
                "view": view.model_dump(),
                "texts": i18n.TEXTS[chosen],
                "refresh_s": web.settings.crowding.refresh_s,
                "base": base(request),
            },
        },
    )
    remember_lang(request, response)
    return response


@router.get("/crowding", include_in_schema=False)
@router.get("/crowding/{site}", include_in_schema=False)
def crowding_index(request: Request, web: WebDep, site: str | None = None) -> HTMLResponse:
    """The public displays of a site (of every site at `/crowding`): where a visitor
    who cut the zone off the address lands, instead of a 404."""
    # an unknown site: the friendly 404 page (app's HTTP error handler)
    one = web.site(site) if site is not None else None
    lang = page_lang(request)
    displays = _displays(request, web, site, lang)
    if not displays:
        raise HTTPException(404, f"no public displays in site {site!r}")
    title = one.name_in(lang) if one is not None else i18n.TEXTS[lang]["public_displays"]
    response = templates.TemplateResponse(
        request,
        "displays.html",
        {
            "base": base(request),
            "lang": lang,
            "title": title,
            "theme": page_theme(request),
            "texts": i18n.TEXTS[lang],
            "languages": i18n.LANGUAGE_NAMES,
            "displays": displays,
            "show_site": site is None and len(web.sites) > 1,
        },
    )
    remember_lang(request, response)
    return response
