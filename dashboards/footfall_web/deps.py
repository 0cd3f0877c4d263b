"""The FastAPI dependencies of the routes: the shared state, who is asking (login, bearer
token, CSRF for state changes), the site or zone named in the path, and the error
answers the schema documents. One place, so every route checks them the same way."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam

from footfall_contract.site import Site
from footfall_contract.topics import ID_PATTERN

from . import auth
from .models import ErrorOut
from .state import CSRF_HEADER, Web


async def web_of(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


WebDep = Annotated[Web, Depends(web_of)]


def api_user(request: Request, web: WebDep) -> str:
    user = web.user(request)
    if user is None:
        raise HTTPException(
            401,
            "login required: send Authorization: Bearer <token> or log in at /login",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


UserDep = Annotated[str, Depends(api_user)]


def csrf_user(request: Request, web: WebDep, user: UserDep) -> str:
    """The board's user for a state-changing request: a bearer token, or a login cookie
    (or no login on loopback) with the page's CSRF token in X-CSRF-Token and no
    cross-site fetch metadata."""
    if web.has_token(request):
        return user
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise HTTPException(403, "cross-site request refused")
    presented = request.headers.get(CSRF_HEADER)
    if not auth.check_csrf(web.session_secret, web.csrf_session(request), presented):
        raise HTTPException(
            403,
            f"missing or stale {CSRF_HEADER} header (reload the board and try again)",
        )
    return user


CsrfUserDep = Annotated[str, Depends(csrf_user)]


async def site_of(site: str, web: WebDep) -> Site:
    """The site in the path (404 when unknown). Declare it after the user: an anonymous
    caller learns nothing about which sites exist."""
    return web.site(site)


async def zone_of(site: str, zone: str, web: WebDep) -> Site:
    """The site of the zone in the path (404 for an unknown site or zone)."""
    return web.zone(site, zone)


SiteDep = Annotated[Site, Depends(site_of)]
ZoneDep = Annotated[Site, Depends(zone_of)]
AlertId = Annotated[str, PathParam(pattern=rf"^{ID_PATTERN}$", max_length=64)]

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut},
    401: {"model": ErrorOut},
    404: {"model": ErrorOut},
    503: {"model": ErrorOut},
}
ACTION_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"model": ErrorOut},
    422: {"model": ErrorOut},
    502: {"model": ErrorOut},
}
