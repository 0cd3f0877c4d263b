"""Logging in and out of the board: a form (in the visitor's language, as every page), a
throttle that answers repeated failures before checking any password, and a session
cookie the server can end."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .. import auth
from ..deps import WebDep
from ..i18n_reports import LOGIN_TEXTS
from ..pagekit import base, page_lang, remember_lang, safe_next, switcher, templates
from ..state import SESSION_COOKIE

log = logging.getLogger("footfall_web.app")
router = APIRouter()


def _context(request: Request, target: str, error: bool, retry_s: int | None) -> dict[str, Any]:
    lang = page_lang(request)
    return {
        "next": target,
        "error": error,
        "base": base(request),
        "retry_s": retry_s,
        **switcher(lang),
        "texts": LOGIN_TEXTS[lang],
    }


@router.get("/login", include_in_schema=False)
def login_page(request: Request, next: str = "/", error: bool = False) -> HTMLResponse:
    response = templates.TemplateResponse(
        request, "login.html", _context(request, safe_next(next), error, None), status_code=200
    )
    remember_lang(request, response)
    return response


@router.post("/login", include_in_schema=False)
async def login(request: Request, web: WebDep) -> Response:
    body = await request.body()
    if len(body) > 4096:
        raise HTTPException(413, "login form too large")
    form = parse_qs(body.decode(errors="replace"))
    user = form.get("user", [""])[0]
    password = form.get("password", [""])[0]
    target = safe_next(form.get("next", ["/"])[0])
    address = request.client.host if request.client else None
    keys = auth.LoginThrottle.keys(user, address)
    wait = web.login_throttle.attempt(keys, web.now())
    if wait > 0:
        # answered at once: the password is not even checked (no CPU for guesses)
        if (left_out := web.log_limit.allow(f"login\0{user[:65]}\0{address}")) is not None:
            log.warning(
                "login for %r from %s refused: too many failed logins, back-off %.0f s%s",
                user[:65],
                address,
                wait,
                f" (and {left_out} more since the last such line)" if left_out else "",
            )
        seconds = math.ceil(wait)
        return templates.TemplateResponse(
            request,
            "login.html",
            _context(request, target, False, seconds),
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )
    ok = await asyncio.to_thread(auth.check_login, web.settings.auth.users, user, password)
    if not ok:
        log.warning("failed login for %r from %s", user[:65], address)
        return RedirectResponse(f"{base(request)}/login?error=1&next={quote(target)}", 303)
    web.login_throttle.succeeded(keys)
    response = RedirectResponse(f"{base(request)}{target}", 303)
    lifetime = web.settings.auth.session_hours * 3600
    response.set_cookie(
        SESSION_COOKIE,
        web.sessions.create(user, web.now(), lifetime),
        max_age=int(lifetime),
        httponly=True,
        samesite="strict",
        secure=web.settings.auth.cookie_secure,
    )
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, web: WebDep) -> Response:
    # ends the session on the server: a copy of the cookie is refused from now on
    web.sessions.end(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(f"{base(request)}/login", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response
