"""The FastAPI app: pages, the JSON API and the live stream, over `LiveState` (MQTT) and
InfluxDB. Everything that decides something lives in the pure modules (levels, i18n,
auth, sse, history); this file wires them to HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import parse_qs, quote, urlencode

import anyio.to_thread
import urllib3
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import StreamingResponse

from footfall_collector.influx import (
    Influx,
    InfluxLink,
    InfluxWatch,
    PermanentWriteError,
    RetryableWriteError,
    connect,
)
from footfall_contract.hours import last_reset_before
from footfall_contract.site import Site, Zone
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import ID_PATTERN
from footfall_report import (
    Period,
    Report,
    SourceError,
    UnknownZoneError,
    load_report,
    load_statistics,
)
from footfall_runtime.config import ConfigError
from footfall_runtime.ratelog import LogLimiter

from . import actions, auth, i18n, levels, reports, retire, sse, zonepage
from .config import WebSettings
from .history import (
    BadParameter,
    HistoryRequest,
    buckets,
    history_csv,
    history_query,
    history_request,
    merge_history,
    parse_format,
    seed_level,
    seed_query,
    visits_query,
    window_starts,
)
from .live import Change, LiveState, agent_json
from .models import (
    AgentRetireIn,
    AlertAckIn,
    AlertSilenceIn,
    ErrorOut,
    ForecastPoint,
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

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
SESSION_COOKIE = "footfall_session"
LANG_COOKIE = "footfall_lang"
CSRF_HEADER = "X-CSRF-Token"
KEEPALIVE_S = 15.0
THEMES = ("dark", "light")
"""`?theme=` values; without one, pages follow the screen's prefers-color-scheme."""


# -- the forecast module (dashboards/footfall_web/forecast.py) -------------------------


class TypicalLike(Protocol):
    @property
    def weekday(self) -> int: ...
    @property
    def step_min(self) -> int: ...
    @property
    def values(self) -> list[float | None]: ...
    @property
    def weeks(self) -> int: ...
    @property
    def peak_slot(self) -> int | None: ...


class ForecasterLike(Protocol):
    def typical(self, zone: str, weekday: int | None = None) -> TypicalLike: ...


ForecasterFactory = Callable[[Influx, Site], ForecasterLike]


def default_forecaster_factory(
    settings: WebSettings, now: Callable[[], float]
) -> ForecasterFactory:
    from .forecast import Forecaster

    def make(influx: Influx, site: Site) -> ForecasterLike:
        return Forecaster(
            influx,
            site,
            weeks=settings.board.forecast_weeks,
            step_min=settings.board.forecast_step_min,
            now=now,
        )

    return make


# -- app state ------------------------------------------------------------------------


THREADS = 40
"""Threads serving the synchronous routes at once (anyio's limiter, set at start; 40 is
its default), and the connections pooled for InfluxDB and footfall-alerts: a pool
smaller than the threads sharing it discards connections with a warning."""


class Web:
    """What the routes share: settings, sites, live state, InfluxDB, forecasters."""

    def __init__(
        self,
        settings: WebSettings,
        sites: Iterable[Site],
        *,
        forecaster_factory: ForecasterFactory | bool | None = True,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        # first: refuse to expose the board without a login before anything starts
        self.login_required = auth.check_bind_policy(
            settings.http.host,
            settings.auth.require_login,
            len(settings.auth.users),
            len(settings.auth.tokens),
        )
        self.sites = {s.site: s for s in sites}
        if not self.sites:
            raise ValueError("footfall-web needs at least one site")
        unknown = set(settings.alerts.sites) - set(self.sites)
        if unknown:
            raise ConfigError(
                f"alerts.sites names unknown site(s) {', '.join(sorted(unknown))} "
                f"(sites: {', '.join(self.sites)})"
            )
        self.live = LiveState(settings.mqtt, self.sites.values(), settings.client_id)
        self.influx = connect(settings.influx, pool_size=THREADS)
        self.influx_watch = InfluxWatch(
            self.influx,
            InfluxLink(
                settings.influx, log, "History, reports and typical days answer 503 meanwhile"
            ),
        )
        self.now = now
        self.forecaster_factory: ForecasterFactory | None
        if forecaster_factory is True:
            self.forecaster_factory = default_forecaster_factory(settings, now)
        elif forecaster_factory is False:
            self.forecaster_factory = None
        else:
            self.forecaster_factory = forecaster_factory
        self._forecasters: dict[str, ForecasterLike] = {}
        self._forecast_lock = threading.Lock()
        self.forecast_down_until: dict[str, float] = {}
        secret = settings.auth.session_secret
        self.session_secret = (
            secret.get_secret_value().encode() if secret else secrets.token_bytes(32)
        )
        self.sessions = auth.SessionStore(self.session_secret)
        self.login_throttle = auth.LoginThrottle(
            free_failures=settings.auth.login_failures, max_s=settings.auth.login_backoff_max_s
        )
        self.log_limit = LogLimiter()
        self.tokens = [t.get_secret_value() for t in settings.auth.tokens]
        self.alerts_http = urllib3.PoolManager(num_pools=4, maxsize=THREADS, retries=False)
        self.closing = False

    def close_streams(self) -> None:
        """End every live stream now (a server shutting down waits for open ones)."""
        self.closing = True
        self.live.notify(CLOSE)

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def now_datetime(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now(), tz=dt.UTC)

    def site(self, site: str) -> Site:
        found = self.sites.get(site)
        if found is None:
            raise HTTPException(404, f"unknown site {site!r} (known: {', '.join(self.sites)})")
        return found

    def zone(self, site: str, zone: str) -> Site:
        s = self.site(site)
        if zone not in {z.id for z in s.zones}:
            raise HTTPException(404, f"unknown zone {zone!r} in site {site!r}")
        return s

    def is_public(self, site: str, zone: str) -> bool:
        """A public display: the site file marks the zone `public: true` (default off)
        and `crowding.public_zones`, when set, lists it too."""
        s = self.sites.get(site)
        found = None if s is None else next((z for z in s.zones if z.id == zone), None)
        return (
            found is not None and found.public and self.settings.crowding.allows_public(site, zone)
        )

    def public_zones(self, site: str) -> list[Zone]:
        """The zones of a site with a public display, in site-file order."""
        s = self.sites.get(site)
        return [] if s is None else [z for z in s.zones if self.is_public(site, z.id)]

    def public_zone(self, site: str, zone: str) -> Site:
        """The site of a public display; a 404 for an unknown site, and the same 404
        for an unknown zone and a zone without a public display (which zones exist
        but are not public is nobody's business)."""
        s = self.site(site)
        if not self.is_public(site, zone):
            raise HTTPException(404, f"no public display for zone {zone!r} of site {site!r}")
        return s

    def forecaster(self, site: str) -> ForecasterLike | None:
        if self.forecaster_factory is None:
            return None
        with self._forecast_lock:
            if site not in self._forecasters:
                self._forecasters[site] = self.forecaster_factory(self.influx, self.sites[site])
            return self._forecasters[site]

    def user(self, request: Request) -> str | None:
        """Who is asking: a bearer token or a login cookie; "local" when no login is
        needed; None when a login is needed and missing."""
        if not self.login_required:
            return "local"
        token = auth.bearer_token(request.headers.get("authorization"))
        if token is not None and auth.check_token(self.tokens, token):
            return "token"
        user = self.sessions.user(request.cookies.get(SESSION_COOKIE), self.now())
        # a user taken out of the configuration is out, even with a valid cookie
        return user if user in self.settings.auth.users else None

    def has_token(self, request: Request) -> bool:
        token = auth.bearer_token(request.headers.get("authorization"))
        return token is not None and auth.check_token(self.tokens, token)

    def csrf_session(self, request: Request) -> str:
        """What the CSRF token is bound to: the login cookie, or nothing without a login."""
        if not self.login_required:
            return ""
        return request.cookies.get(SESSION_COOKIE) or ""

    def csrf_token(self, request: Request) -> str:
        return auth.csrf_token(self.session_secret, self.csrf_session(request))

    def alert_actions(self, site: str) -> bool:
        return self.settings.alerts.url_for(site) is not None

    def call_alerts(self, site: str, req: actions.Upstream) -> dict[str, Any]:
        """One request to the site's footfall-alerts API; ActionError for every failure."""
        base = self.settings.alerts.url_for(site)
        if base is None:
            raise actions.not_configured(site)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        token = self.settings.alerts.token
        if token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        try:
            answer = self.alerts_http.request(
                req.method,
                base + req.path,
                body=json.dumps(req.body).encode(),
                headers=headers,
                timeout=urllib3.Timeout(total=self.settings.alerts.timeout_s),
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise actions.unreachable(base, str(exc.__cause__ or exc)) from None
        if not 200 <= answer.status < 300:
            raise actions.upstream_error(answer.status, answer.data)
        return actions.parse_answer(answer.data)


def web_of(request: Request) -> Web:
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


# -- the app --------------------------------------------------------------------------


def create_app(web: Web) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        web.live.start()
        web.influx_watch.start()
        try:
            yield
        finally:
            web.influx_watch.stop()
            web.live.stop()
            web.influx.close()

    app = FastAPI(
        title="footfall-web",
        summary="Live occupancy, history and typical days of footfall sites",
        version="1",
        lifespan=lifespan,
        root_path=web.settings.http.root_path,
        # FastAPI's /docs and /redoc load their scripts from a CDN: the schema is at
        # /openapi.json, for any OpenAPI viewer
        docs_url=None,
        redoc_url=None,
    )
    app.state.web = web

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        # one readable line (what the board shows next to an alert), as ErrorOut says
        return JSONResponse({"detail": validation_message(exc.errors())}, status_code=422)

    # uPlot is most of the public display's weight; streams (text/event-stream) are exempt
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        # no request may leave the server's own origin (no CDN, no tracker)
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'self'; base-uri 'none'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "public, max-age=3600"
        else:  # live figures: never from a cache
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", ""))

    def page_lang(request: Request) -> i18n.Lang:
        return i18n.choose(
            request.query_params.get("lang"),
            request.cookies.get(LANG_COOKIE),
            request.headers.get("accept-language"),
        )

    def page_theme(request: Request) -> str | None:
        """`?theme=dark|light` (any case) over the screen's own setting; anything else
        is passed over (a kiosk page never fails on it)."""
        theme = (request.query_params.get("theme") or "").strip().lower()
        return theme if theme in THEMES else None

    templates.env.globals["page_theme"] = page_theme

    def remember_lang(request: Request, response: Response) -> None:
        """A language picked with `?lang=` (any case) is kept in the switcher's cookie."""
        picked = i18n.parse_lang(request.query_params.get("lang"))
        if picked is not None:
            response.set_cookie(
                LANG_COOKIE, picked, max_age=365 * 86400, samesite="lax", httponly=True
            )
        response.headers["Vary"] = "Accept-Language, Cookie"

    def not_found_page(request: Request, path: str) -> Response:
        """The public display's 404: a page in the visitor's language that lists the
        public displays there are (of the site in the path, else of every site)."""
        lang = page_lang(request)
        parts = path.split("/")
        site = parts[2] if len(parts) > 2 and parts[2] in web.sites else None
        displays = [
            {
                "href": f"{base(request)}/crowding/{s.site}/{z.id}",
                "name": z.name_in(lang),
                "site": s.name_in(lang),
            }
            for s in web.sites.values()
            if site in (None, s.site)
            for z in web.public_zones(s.site)
        ]
        response = templates.TemplateResponse(
            request,
            "notfound.html",
            {
                "base": base(request),
                "lang": lang,
                "texts": i18n.TEXTS[lang],
                "languages": i18n.LANGUAGE_NAMES,
                "displays": displays,
                "show_site": site is None and len(web.sites) > 1,
            },
            status_code=404,
        )
        remember_lang(request, response)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # a person at a kiosk or a phone gets a page, never JSON; the API keeps JSON
        path = str(request.scope.get("path", "")).removeprefix(base(request))
        if exc.status_code == 404 and (path == "/crowding" or path.startswith("/crowding/")):
            return not_found_page(request, path)
        return await http_exception_handler(request, exc)

    # -- pages -----------------------------------------------------------------------

    @app.get("/", include_in_schema=False, response_model=None)
    def board(request: Request, site: Annotated[list[str] | None, Query()] = None) -> Response:
        if web.user(request) is None:
            return RedirectResponse(f"{base(request)}/login?next={quote('/')}", 303)
        wanted = site or list(web.sites)
        for s in wanted:
            web.site(s)
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
                    "name": web.sites[s].name_in(lang),
                    "timezone": web.sites[s].timezone,
                    "zones": {z.id: z.name_in(lang) for z in web.sites[s].zones},
                }
                for s in wanted
            },
            "sites": wanted,
            "snapshot": web.live.snapshot(wanted),
            "now": web.now_ms(),
            "stale_after_s": web.settings.crowding.stale_after_s,
            "thresholds": {
                f"{s}/{z.id}": web.settings.crowding.thresholds(s, z.id).model_dump()
                for s in wanted
                for z in web.sites[s].zones
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
                "lang": lang,
                "texts": i18n.BOARD_TEXTS[lang],
                "language": i18n.TEXTS[lang]["language"],
                "languages": i18n.LANGUAGE_NAMES,
                "site_names": {s: web.sites[s].name_in(lang) for s in wanted},
                "site_query": "".join(f"&site={quote(s)}" for s in site or []),
            },
        )
        remember_lang(request, response)
        return response

    @app.get("/crowding/{site}/{zone}", include_in_schema=False)
    def crowding_page(
        request: Request,
        site: str,
        zone: str,
        lang: str | None = None,
        kiosk: str | None = None,
    ) -> HTMLResponse:
        # a page for people: an unknown ?lang= falls back (page_lang), a missing
        # display is the friendly 404 page (_http_error), never a JSON error
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

    @app.get("/crowding", include_in_schema=False)
    @app.get("/crowding/{site}", include_in_schema=False)
    def crowding_index(request: Request, site: str | None = None) -> HTMLResponse:
        """The public displays of a site (of every site at `/crowding`): where a visitor
        who cut the zone off the address lands, instead of a 404."""
        if site is not None:
            web.site(site)  # an unknown site: the friendly 404 page (_http_error)
        lang = page_lang(request)
        chosen = [s for s in web.sites.values() if site in (None, s.site)]
        displays = [
            {
                "href": f"{base(request)}/crowding/{s.site}/{z.id}",
                "name": z.name_in(lang),
                "site": s.name_in(lang),
            }
            for s in chosen
            for z in web.public_zones(s.site)
        ]
        if not displays:
            raise HTTPException(404, f"no public displays in site {site!r}")
        title = chosen[0].name_in(lang) if site is not None else i18n.TEXTS[lang]["public_displays"]
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

    @app.get("/zones/{site}/{zone}", include_in_schema=False, response_model=None)
    def zone_page(request: Request, site: str, zone: str) -> Response:
        """One agency: now, today so far by hour, this week by day, and its links."""
        if web.user(request) is None:
            target = request.url.path.removeprefix(base(request))
            return RedirectResponse(f"{base(request)}/login?next={quote(target)}", 303)
        lang = page_lang(request)
        context: dict[str, Any] = {
            "base": base(request),
            "login": web.login_required,
            "lang": lang,
            "texts": i18n.ZONE_TEXTS[lang],
            "board_texts": i18n.BOARD_TEXTS[lang],
            "language": i18n.TEXTS[lang]["language"],
            "languages": i18n.LANGUAGE_NAMES,
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

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str = "/", error: bool = False) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"next": safe_next(next), "error": error, "base": base(request), "retry_s": None},
            status_code=200,
        )

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
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
                {"next": target, "error": False, "base": base(request), "retry_s": seconds},
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

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        # ends the session on the server: a copy of the cookie is refused from now on
        web.sessions.end(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(f"{base(request)}/login", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        ok = web.live.connected.is_set()
        return JSONResponse(
            {"ready": ok, "mqtt": ok, "mqtt_rejected": web.live.rejected_counts()},
            status_code=200 if ok else 503,
        )

    # -- public API ------------------------------------------------------------------

    @app.get(
        "/api/v1/public/sites/{site}/zones/{zone}/crowding",
        response_model=PublicCrowding,
        responses=ERRORS,
        tags=["public"],
        summary="How busy a zone is now and later today (aggregates only, no login)",
    )
    def public_api(
        request: Request, response: Response, site: str, zone: str, lang: str | None = None
    ) -> PublicCrowding:
        if lang is not None and i18n.parse_lang(lang) is None:
            raise HTTPException(
                400, f"lang must be one of {', '.join(i18n.LANGS)}, not {lang[:20]!r}"
            )
        web.public_zone(site, zone)
        chosen = i18n.choose(
            lang, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
        )
        response.headers["Vary"] = "Accept-Language, Cookie"
        return public_crowding(web, site, zone, chosen)

    # -- manager API -----------------------------------------------------------------

    @app.get("/api/v1/sites", response_model=SitesOut, responses=ERRORS, tags=["sites"])
    def sites(_user: UserDep) -> SitesOut:
        now = dt.datetime.fromtimestamp(web.now(), tz=dt.UTC)
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

    @app.get(
        "/api/v1/sites/{site}/occupancy",
        response_model=SiteOccupancy,
        responses=ERRORS,
        tags=["sites"],
        summary="Live occupancy of every zone, agents and firing alerts",
    )
    def occupancy(site: str, _user: UserDep) -> SiteOccupancy:
        s = web.site(site)
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

    @app.get(
        "/api/v1/sites/{site}/zones/{zone}/history",
        response_model=HistoryOut,
        responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
        tags=["sites"],
        summary="Occupancy (event time) and visits per interval, as JSON or CSV",
    )
    def history(
        site: str,
        zone: str,
        _user: UserDep,
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
        s = web.zone(site, zone)
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
                headers={
                    "Content-Disposition": f'attachment; filename="{site}-{zone}-history.csv"'
                },
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

    @app.get(
        "/api/v1/sites/{site}/zones/{zone}/typical",
        response_model=TypicalOut,
        responses=ERRORS,
        tags=["sites"],
        summary="Typical occupancy of a weekday from the past weeks",
    )
    def typical(
        site: str,
        zone: str,
        _user: UserDep,
        weekday: Annotated[
            int | None, Query(ge=0, le=6, description="0 = Monday; default today (site time)")
        ] = None,
    ) -> TypicalOut:
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

    # -- reports (footfall_report, from the rollups) -----------------------------------

    def report_of(site: Site, period: Period, zones: list[str] | None) -> Report:
        try:
            return load_report(web.influx, site, period, zones, now=web.now_datetime())
        except UnknownZoneError as exc:
            raise HTTPException(400, str(exc)) from None
        except (SourceError, RetryableWriteError, PermanentWriteError) as exc:
            raise HTTPException(503, f"InfluxDB unavailable: {exc}") from None

    @app.get(
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
        site: str,
        _user: UserDep,
        period: Annotated[
            str | None,
            Query(description="2026-11-23, 2026-W47, 2026-11, 2026, or last-month, ..."),
        ] = None,
        zone: Annotated[
            list[str] | None, Query(description="zones (repeat or comma-separate); default all")
        ] = None,
        format: Annotated[
            str | None, Query(description="json (default), csv, xlsx or html")
        ] = None,
    ) -> Response:
        s = web.site(site)
        try:
            fmt = reports.choose_format(format, reports.REPORT_FORMATS)
            chosen = reports.choose_period(period, s, web.now_datetime())
            zones = reports.choose_zones(zone, s)
        except reports.BadReportRequest as exc:
            raise HTTPException(400, str(exc)) from None
        return reports.report_response(report_of(s, chosen, zones), fmt)

    @app.get(
        "/api/v1/sites/{site}/reports/statistics",
        responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
        tags=["reports"],
        summary="Annual visits per unit, in the shape of the Finnish library statistics",
    )
    def statistics_report(
        site: str,
        _user: UserDep,
        year: Annotated[str | None, Query(description="calendar year, e.g. 2026")] = None,
        format: Annotated[str | None, Query(description="json (default) or csv")] = None,
    ) -> Response:
        s = web.site(site)
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

    @app.get("/reports/{site}", include_in_schema=False, response_model=None)
    def reports_page(
        request: Request,
        site: str,
        period: str | None = None,
        zone: Annotated[list[str] | None, Query()] = None,
    ) -> Response:
        if web.user(request) is None:
            target = request.url.path.removeprefix(base(request))
            if request.url.query:
                target += "?" + request.url.query
            return RedirectResponse(f"{base(request)}/login?next={quote(target)}", 303)
        s = web.site(site)
        text = period if period and period.strip() else reports.DEFAULT_PERIOD
        context: dict[str, Any] = {
            "base": base(request),
            "login": web.login_required,
            "site": s,
            "period_text": text,
            "zone": zone or [],
            "quick": reports.QUICK_PERIODS,
            "accepted": reports.ACCEPTED,
            "error": None,
            "report": None,
        }
        status = 200
        try:
            chosen = reports.choose_period(text, s, web.now_datetime())
            zones = reports.choose_zones(zone, s)
            report = report_of(s, chosen, zones)
        except reports.BadReportRequest as exc:
            context["error"], status = str(exc), 400
        except HTTPException as exc:
            context["error"], status = str(exc.detail), exc.status_code
        else:
            data = report.as_dict()
            query = [("period", chosen.key)] + [("zone", z) for z in zones or []]
            context.update(
                report=data,
                view=reports.page_view(data),
                period_text=chosen.key,
                downloads={
                    fmt: f"{base(request)}/api/v1/sites/{site}/reports/visits?"
                    + urlencode([*query, ("format", fmt)])
                    for fmt in ("csv", "xlsx", "html")
                },
                statistics=f"{base(request)}/api/v1/sites/{site}/reports/statistics?"
                + urlencode([("year", chosen.first.year), ("format", "csv")]),
            )
        return templates.TemplateResponse(request, "reports.html", context, status_code=status)

    # -- alert actions (proxied to the site's footfall-alerts) -------------------------

    def act(site: str, alert_id: str, what: str, req: actions.Upstream) -> dict[str, Any]:
        web.site(site)
        try:
            answer = web.call_alerts(site, req)
        except actions.ActionError as exc:
            log.warning("alert %s/%s: %s failed: %s", site, alert_id, what, exc.message)
            raise HTTPException(exc.status, exc.message) from None
        log.info("alert %s/%s: %s (by %s)", site, alert_id, what, req.body.get("by"))
        return answer

    @app.post(
        "/api/v1/sites/{site}/alerts/{alert_id}/ack",
        responses=ACTION_ERRORS,
        tags=["alerts"],
        summary="Acknowledge a firing alert (stops its repeats) as the logged-in user",
    )
    def ack_alert(
        site: str, alert_id: AlertId, body: AlertAckIn, user: CsrfUserDep
    ) -> dict[str, Any]:
        return act(site, alert_id, "acknowledge", actions.ack_request(alert_id, user, body.reason))

    @app.post(
        "/api/v1/sites/{site}/alerts/{alert_id}/silence",
        responses=ACTION_ERRORS,
        tags=["alerts"],
        summary="Silence one alert for some hours as the logged-in user",
        status_code=201,
    )
    def silence_alert(
        site: str, alert_id: AlertId, body: AlertSilenceIn, user: CsrfUserDep
    ) -> dict[str, Any]:
        req = actions.silence_request(alert_id, user, body.reason, body.hours)
        return act(site, alert_id, f"silence for {body.hours:g} h", req)

    @app.post(
        "/api/v1/sites/{site}/agents/{agent}/retire",
        responses={**ACTION_ERRORS, 409: {"model": ErrorOut}},
        tags=["agents"],
        summary="Retire an agent that is gone for good: off the board and out of the alerts",
    )
    def retire_agent(
        site: str, agent: AlertId, user: CsrfUserDep, body: AgentRetireIn | None = None
    ) -> dict[str, Any]:
        web.site(site)
        force = body is not None and body.force
        try:
            was = retire.retire(
                web.live, site, agent, force=force, username=web.settings.mqtt.username
            )
        except actions.ActionError as exc:
            log.warning("agent %s/%s: retire failed: %s", site, agent, exc.message)
            raise HTTPException(exc.status, exc.message) from None
        log.info("agent %s/%s retired by %s", site, agent, user)
        was_json = agent_json(site, agent, was)
        return {"site": site, "agent": agent, "retired": True, "by": user, "was": was_json}

    @app.get("/api/v1/stream", include_in_schema=False, response_model=None)
    async def stream(
        request: Request, _user: UserDep, site: Annotated[list[str] | None, Query()] = None
    ) -> StreamingResponse:
        wanted = site or list(web.sites)
        for s in wanted:
            web.site(s)
        return StreamingResponse(
            live_events(web, request, set(wanted)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return app


def validation_message(errors: Iterable[Any]) -> str:
    """FastAPI's validation errors as one line: `where: what; ...`."""
    problems = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{where}: {msg}" if where else msg)
    return "; ".join(problems) or "invalid request"


def safe_next(target: str) -> str:
    """Only local paths after login (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def history_points(web: Web, s: Site, req: HistoryRequest, now_ms: int) -> list[dict[str, Any]]:
    """The intervals of a history request (the API's figures, and the zone page's)."""
    spans = buckets(req, now_ms)
    resets = window_starts(s, spans[0][0], spans[-1][1]) if spans else []
    seed_q = seed_query(req, last_reset_before(s, req.start_ms))
    try:
        seed = seed_level(web.influx.query(seed_q, epoch="ms")) if seed_q else None
        levels = web.influx.query(history_query(req), epoch="ms")
        visits = web.influx.query(visits_query(req), epoch="ms")
    except (RetryableWriteError, PermanentWriteError) as exc:
        raise HTTPException(503, f"InfluxDB unavailable: {exc}") from None
    return merge_history(req, spans, levels, visits, seed, resets)


def zone_view(web: Web, s: Site, zone: str, lang: i18n.Lang, base: str) -> dict[str, Any]:
    """What the agency page shows: the live reading, today by hour and this week by day
    (the history API's intervals, so the page and the API never disagree), and links."""
    texts = i18n.ZONE_TEXTS[lang]
    z = s.zone(zone)
    now_ms = web.now_ms()
    cfg = web.settings.crowding
    reading = web.live.reading(s.site, zone)
    stale = levels.is_stale(reading, now_ms, cfg.stale_after_s)
    now: dict[str, Any] = {"count": None, "pct": None, "level": None, "stale": stale}
    if reading is not None:
        now["updated"] = zonepage.hhmm(s, reading.ts_ms, lang)
    if reading is not None and not stale:
        now["count"] = reading.count
        if z.capacity:
            ratio = reading.count / z.capacity
            now["pct"] = round(ratio * 100)
            now["level"] = levels.level_of(ratio, cfg.thresholds(s.site, zone))
    error = None
    hours: list[dict[str, Any]] = []
    week_points: list[dict[str, Any]] = []
    today_ms = zonepage.today_start_ms(s, now_ms)
    monday_ms = zonepage.week_start_ms(s, now_ms)
    try:
        hours = zonepage.hour_rows(
            s,
            history_points(
                web,
                s,
                HistoryRequest(s.site, zone, today_ms, max(now_ms, today_ms + 1), 3600, s.timezone),
                now_ms,
            ),
            lang,
        )
        week_points = history_points(
            web,
            s,
            HistoryRequest(s.site, zone, monday_ms, max(now_ms, monday_ms + 1), 86400, s.timezone),
            now_ms,
        )
    except HTTPException as exc:
        error = texts["history_unavailable"].format(error=exc.detail)
    summary = zonepage.today_summary(hours)
    week = zonepage.week_rows(s, week_points, now_ms, lang)
    week_values = [d["visits"] for d in week]
    for d in week:
        d["bar"] = zonepage.bar_width(d["visits"], week_values)
    if summary["peak"] is not None:
        last = hours[-1]["count"] if hours else None
        chart_label = texts["today_chart"].format(
            peak=summary["peak"],
            time=summary["peak_time"],
            now="–" if last is None else last,
            visits=summary["visits"],
        )
    else:
        chart_label = texts["today_chart_empty"]
    parent = s.zone(z.parent).name_in(lang) if z.parent else None
    reports = f"{base}/reports/{s.site}?"
    return {
        "site": s,
        "site_name": s.name_in(lang),
        "zone_id": zone,
        "name": z.name_in(lang),
        "parent": None
        if parent is None
        else i18n.BOARD_TEXTS[lang]["in_parent"].format(parent=parent),
        "capacity": z.capacity,
        "now": now,
        "level_names": {k: i18n.TEXTS[lang][k] for k in levels.LEVELS},
        "hours": hours,
        "summary": summary,
        "chart_label": chart_label,
        "week": week,
        "week_total": sum(v for v in week_values if v is not None),
        "error": error,
        "public_href": f"{base}/crowding/{s.site}/{zone}" if web.is_public(s.site, zone) else None,
        "report_week": reports + urlencode([("period", "this-week"), ("zone", zone)]),
        "report_month": reports + urlencode([("period", "this-month"), ("zone", zone)]),
        "csv_today": f"{base}/api/v1/sites/{s.site}/zones/{zone}/history?"
        + urlencode([("from", format_ts(today_ms)), ("every", "1h"), ("format", "csv")]),
        "chart": {
            "start": today_ms // 1000,
            "end": zonepage.today_end_ms(s, now_ms) // 1000,
            "xs": [r["ms"] // 1000 for r in hours],
            "max": [r["max"] for r in hours],
            "visits": [r["visits"] for r in hours],
            "timezone": s.timezone,
            "locale": i18n.LOCALES[lang],
            "labels": {"highest": texts["highest"], "visits": texts["visits"]},
        },
    }


FORECAST_RETRY_S = 60.0


def typical_of(web: Web, site: str, zone: str, weekday: int | None) -> TypicalLike | None:
    """The typical day, or None while InfluxDB fails (asked again after a minute, so
    that the public page does not wait for a dead database on every refresh)."""
    forecaster = web.forecaster(site)
    if forecaster is None or web.forecast_down_until.get(site, 0.0) > web.now():
        return None
    try:
        return forecaster.typical(zone, weekday)
    except (RetryableWriteError, PermanentWriteError, OSError) as exc:
        log.warning("typical profile of %s/%s unavailable: %s", site, zone, exc)
        web.forecast_down_until[site] = web.now() + FORECAST_RETRY_S
        return None


def public_crowding(web: Web, site: str, zone: str, lang: i18n.Lang) -> PublicCrowding:
    s = web.public_zone(site, zone)  # never figures of a zone without a public display
    cfg = web.settings.crowding
    now_ms = web.now_ms()
    view = levels.crowding(
        s, zone, web.live.reading(site, zone), now_ms, cfg.thresholds(site, zone), cfg.stale_after_s
    )
    local = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC).astimezone(s.tz)
    hours = s.hours_on(local.date(), zone)
    label_key: str = view.level if view.state == "open" and view.level else view.state
    if view.state == "open" and view.level is None:
        label_key = "open_now"
    hours_today = None
    if hours is not None:
        end = "24:00" if hours[1] == dt.time.max else hours[1].strftime("%H:%M")
        hours_today = i18n.text(
            lang,
            "hours_today",
            start=i18n.format_time(hours[0].strftime("%H:%M"), lang),
            end=i18n.format_time(end, lang),
        )
    peak_time = peak_label = None
    forecast: list[ForecastPoint] = []
    typical = typical_of(web, site, zone, local.weekday())
    capacity = s.zone(zone).capacity
    if typical is not None and any(v is not None for v in typical.values):
        peak = levels.busiest_slot(typical.values, typical.step_min, hours)
        if peak is not None:
            peak_time = levels.slot_time(peak, typical.step_min)
            peak_label = i18n.text(lang, "peak", time=i18n.format_time(peak_time, lang))
        for slot, value in levels.rest_of_day(typical.values, typical.step_min, local, hours):
            forecast.append(
                ForecastPoint(
                    time=levels.slot_time(slot, typical.step_min),
                    # with a capacity the percent is the figure: a count beside it
                    # would give away the capacity, and so the live count
                    count=None if value is None or capacity else round(value, 1),
                    percent=None
                    if value is None or not capacity
                    else round(value / capacity * 100),
                )
            )
    return PublicCrowding(
        site=site,
        zone=zone,
        name=s.zone(zone).name_in(lang),
        lang=lang,
        state=view.state,
        level=view.level,
        label=i18n.text(lang, label_key),
        percent=view.percent,
        count=view.count,
        updated=None if view.updated_ms is None else format_ts(view.updated_ms),
        updated_time=None
        if view.updated_ms is None
        else i18n.format_time(
            dt.datetime.fromtimestamp(view.updated_ms / 1000, tz=s.tz).strftime("%H:%M"), lang
        ),
        hours_today=hours_today if hours is not None else i18n.text(lang, "closed_today"),
        fresh_for_s=None
        if view.state != "open" or view.age_s is None
        else round(max(0.0, cfg.stale_after_s - view.age_s), 1),
        peak_time=peak_time,
        peak_label=peak_label,
        now_time=local.strftime("%H:%M"),
        forecast=forecast,
    )


_RESYNC = Change("resync", "", "", {})
CLOSE = Change("close", "", "", {})


async def live_events(web: Web, request: Request, wanted: set[str]) -> AsyncIterator[bytes]:
    """A snapshot, then every change of the wanted sites; a tick with the server time
    every 15 s (keeps proxies open, lets the board judge staleness); a fresh snapshot
    when this client fell too far behind."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Change] = asyncio.Queue(maxsize=1000)

    def put(change: Change) -> None:
        try:
            queue.put_nowait(change)
        except asyncio.QueueFull:
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(_RESYNC)

    def listener(change: Change) -> None:
        if change.site in wanted or change is CLOSE:
            # RuntimeError: the loop is closed, the server is going away
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(put, change)

    web.live.add_listener(listener)
    if web.closing:
        return
    event_id = 0
    try:
        yield sse.format_retry(1000)
        yield sse.format_event(
            "snapshot", {"now": web.now_ms(), "sites": web.live.snapshot(sorted(wanted))}
        )
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield sse.format_event("tick", {"now": web.now_ms()})
                continue
            event_id += 1
            if change is CLOSE:
                return
            if change is _RESYNC:
                yield sse.format_event(
                    "snapshot", {"now": web.now_ms(), "sites": web.live.snapshot(sorted(wanted))}
                )
            else:
                yield sse.format_event(change.kind, change.data, event_id)
    finally:
        web.live.remove_listener(listener)
