"""The FastAPI app, wired: the routers (routes/), the shared state (`state.Web`), the
security headers, compression, static files and the error answers. Everything that
decides something lives in the pure modules (levels, i18n, auth, sse, history); the
routes turn it into HTTP; this module only puts the pieces together."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .pagekit import HERE, base
from .routes import actions, api, api_reports, crowding, login, pages, stream
from .state import THREADS as THREADS
from .state import ForecasterFactory as ForecasterFactory
from .state import Web as Web

__all__ = ["THREADS", "ForecasterFactory", "Web", "create_app", "validation_message"]

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)
"""No request may leave the server's own origin (no CDN, no tracker)."""


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
    app.exception_handler(RequestValidationError)(_invalid)
    # uPlot is most of the public display's weight; streams (text/event-stream) are exempt
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.middleware("http")(security_headers)
    app.exception_handler(StarletteHTTPException)(_http_error)
    for router in (pages, crowding, login, api, api_reports, actions, stream):
        app.include_router(router.router)
    return app


async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
    # one readable line (what the board shows next to an alert), as ErrorOut says
    return JSONResponse({"detail": validation_message(exc.errors())}, status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    # a person at a kiosk or a phone gets a page, never JSON; the API keeps JSON
    path = str(request.scope.get("path", "")).removeprefix(base(request))
    if exc.status_code == 404 and (path == "/crowding" or path.startswith("/crowding/")):
        return crowding.not_found_page(request, request.app.state.web, path)
    return await http_exception_handler(request, exc)


async def security_headers(request: Request, call_next: Any) -> Response:
    response: Response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.url.path.startswith("/static/"):
        response.headers["Cache-Control"] = "public, max-age=3600"
    else:  # live figures: never from a cache
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def validation_message(errors: Iterable[Any]) -> str:
    """FastAPI's validation errors as one line: `where: what; ...`."""
    problems = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{where}: {msg}" if where else msg)
    return "; ".join(problems) or "invalid request"
