"""The HTTP API: active alerts, silences and acknowledgements (who, until when, why),
`/healthz` and `/metrics`. Bad input gets a 4xx whose `detail` says what is wrong.

Access: `/api/v1/*` needs `Authorization: Bearer <token>` when `http.tokens` are set;
without tokens the service only listens on loopback (it refuses to start elsewhere).
`/healthz` and `/metrics` stay open (no alert content, for monitoring).

Sites: every `/api/v1/...` path is also served under `/sites/{site}/` for that site alone
(the board's `alerts.url` = `http://HOST:9110/sites/{site}`). Without the prefix, a
service of one site acts on it as always; one of several sites lists every site's alerts
and silences (each naming its site), acknowledges an alert id held by one site and
removes a silence by its id, and asks for the prefix to add a silence."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from footfall_contract.site import Site
from footfall_contract.topics import ID_PATTERN
from footfall_runtime.httpauth import bearer_token, check_token
from footfall_runtime.service import Clock

from .config import AlertsSettings
from .engine import MAX_SILENCE_S, Effect, Engine, Silence
from .metrics import Metrics
from .rules import KINDS, parse_duration
from .status import silence_json


class AlertsApi(Protocol):
    """What the API needs of the service (footfall_alerts.service.AlertsService, which
    cli.py hands in): read-only attributes, the status and one way to change an engine."""

    @property
    def settings(self) -> AlertsSettings: ...
    @property
    def token_required(self) -> bool: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def metrics(self) -> Metrics: ...
    def site_ids(self) -> list[str]: ...
    def unit(self, site: str) -> SiteUnit: ...
    def sites_with(self, *, alert: str | None = None, silence: str | None = None) -> list[str]: ...
    def snapshot_alerts(self, site: str | None = None) -> dict[str, Any]: ...
    def health(self) -> dict[str, Any]: ...
    def apply(self, site: str, action: Callable[[Engine, int], list[Effect]]) -> None: ...


class SiteUnit(Protocol):
    """What the API reads of one site's alerting (sitealerts.SiteAlerts)."""

    @property
    def site(self) -> Site: ...
    @property
    def engine(self) -> Engine: ...


Text = Annotated[str, Field(min_length=1, max_length=500)]
Who = Annotated[str, Field(min_length=1, max_length=100)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Matchers(_In):
    """All given must match; at least one."""

    alert: Annotated[str, Field(pattern=rf"^{ID_PATTERN}$")] | None = None
    rule: str | None = None
    kind: str | None = None
    zone: str | None = None
    agent: Annotated[str, Field(pattern=rf"^{ID_PATTERN}$")] | None = None
    door: str | None = None
    source: str | None = None


class SilenceIn(_In):
    matchers: Matchers
    by: Who
    reason: Text
    until: datetime | None = None
    """RFC 3339 with a time zone, at most 365 days ahead; or give `duration`."""
    duration: str | None = None
    """e.g. "2h", "30m", "1d"; at most 365 days ("365d")."""

    @model_validator(mode="after")
    def _one_end(self) -> SilenceIn:
        if (self.until is None) == (self.duration is None):
            raise ValueError("give exactly one of until (RFC 3339) or duration (e.g. 2h)")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("until needs a time zone (e.g. 2026-11-25T18:00:00Z)")
        return self


class AckIn(_In):
    by: Who
    reason: Text


def make_app(service: AlertsApi) -> FastAPI:
    app = FastAPI(title="footfall-alerts", docs_url="/api/docs", openapi_url="/api/openapi.json")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"] if p != "body")
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {msg}" if where else msg)
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    tokens = service.settings.http.token_values()

    def authorized(request: Request) -> None:
        if not service.token_required:
            return
        presented = bearer_token(request.headers.get("authorization"))
        if presented is None:
            raise HTTPException(
                401,
                "a bearer token is required: send Authorization: Bearer <token> "
                "(one of the service's http.tokens)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not check_token(tokens, presented):
            raise HTTPException(
                401,
                "the bearer token is not one of the service's http.tokens",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )

    api = APIRouter(dependencies=[Depends(authorized)])

    def site_of(request: Request) -> str | None:
        """The site of `/sites/{site}/...` (404 when not served here); without the
        prefix the one site served, or None when there are several."""
        served = service.site_ids()
        site = request.path_params.get("site")
        if site is None:
            return served[0] if len(served) == 1 else None
        if site not in served:
            raise HTTPException(
                404, f"site {site!r} is not served here (sites: {', '.join(served) or 'none'})"
            )
        return str(site)

    def holder(site: str | None, found: list[str], what: str) -> str:
        """The site to act on: the requested one, else the one site holding `what`."""
        if site is not None:
            return site
        if len(found) > 1:
            raise HTTPException(
                409,
                f"{what} is open at several sites ({', '.join(found)}): use "
                "/sites/{site}/api/v1/...",
            )
        return found[0] if found else ""

    @api.get("/api/v1/alerts")
    def alerts(request: Request) -> dict[str, Any]:
        return service.snapshot_alerts(site_of(request))

    @api.get("/api/v1/silences")
    def silences(request: Request) -> list[dict[str, Any]]:
        return list(service.snapshot_alerts(site_of(request))["silences"])

    @api.post("/api/v1/silences", status_code=201)
    def add_silence(request: Request, body: SilenceIn) -> dict[str, Any]:
        site = site_of(request)
        if site is None:
            raise HTTPException(
                422,
                "this service serves several sites: add the silence at "
                f"/sites/{{site}}/api/v1/silences (sites: {', '.join(service.site_ids())})",
            )
        matchers = {k: v for k, v in body.matchers.model_dump().items() if v is not None}
        _check_matchers(service.unit(site), matchers)
        until = _silence_end(body, service.clock.now_ms())
        made: list[Silence] = []

        def action(engine: Engine, at: int) -> list[Effect]:
            silence, effects = engine.add_silence(matchers, until, body.by, body.reason, at)
            made.append(silence)
            return effects

        try:
            service.apply(site, action)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        except KeyError:  # removed from the folder meanwhile
            raise HTTPException(404, f"site {site!r} is no longer served here") from None
        return silence_json(made[0])

    @api.delete("/api/v1/silences/{silence_id}", status_code=204)
    def remove_silence(request: Request, silence_id: str) -> Response:
        site = holder(
            site_of(request), service.sites_with(silence=silence_id), f"silence {silence_id!r}"
        )
        try:
            service.apply(site, lambda engine, at: engine.remove_silence(silence_id, at))
        except KeyError:
            raise HTTPException(404, f"no silence {silence_id!r}") from None
        return Response(status_code=204)

    @api.post("/api/v1/alerts/{alert_id}/ack")
    def acknowledge(request: Request, alert_id: str, body: AckIn) -> dict[str, Any]:
        site = holder(site_of(request), service.sites_with(alert=alert_id), f"alert {alert_id!r}")
        try:
            service.apply(
                site, lambda engine, at: engine.acknowledge(alert_id, body.by, body.reason, at)
            )
        except KeyError:
            raise HTTPException(
                404, f"no firing alert {alert_id!r} (see GET /api/v1/alerts)"
            ) from None
        found = [a for a in service.snapshot_alerts(site)["alerts"] if a["id"] == alert_id]
        return found[0] if found else {"id": alert_id}

    app.include_router(api)
    app.include_router(api, prefix="/sites/{site}")

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        body = service.health()
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _silence_end(body: SilenceIn, now: int) -> int:
    """Epoch ms the silence ends, checked before anything is saved: at most
    MAX_SILENCE_S ahead (a time no clock can show once stored answered 500 for good)."""
    days = MAX_SILENCE_S // 86_400
    if body.duration is not None:
        try:
            seconds = parse_duration(body.duration)
        except ValueError as exc:
            raise HTTPException(422, f"duration: {exc}") from None
        if seconds > MAX_SILENCE_S:
            raise HTTPException(
                422,
                f"duration: at most {days} days ({days}d), not {body.duration!r}; "
                "remove the silence and add a new one to go on longer",
            )
        return now + round(seconds * 1000)
    assert body.until is not None
    # By subtraction: converting a time near year 9999 to UTC can overflow.
    until = (body.until - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    if until - now > MAX_SILENCE_S * 1000:
        raise HTTPException(
            422, f"until: at most {days} days from now, not {body.until.isoformat()}"
        )
    return until


def _check_matchers(service: SiteUnit, matchers: dict[str, str]) -> None:
    if not matchers:
        raise HTTPException(
            422, "matchers: give at least one of alert, rule, kind, zone, agent, door, source"
        )
    zones = {z.id for z in service.site.zones}
    rules = {r.name for r in service.engine.all_rules}
    if "zone" in matchers and matchers["zone"] not in zones:
        raise HTTPException(422, f"matchers.zone: no zone {matchers['zone']!r} in this site")
    if "rule" in matchers and matchers["rule"] not in rules:
        raise HTTPException(
            422, f"matchers.rule: no rule {matchers['rule']!r} (rules: {', '.join(sorted(rules))})"
        )
    if "kind" in matchers and matchers["kind"] not in KINDS:
        raise HTTPException(422, f"matchers.kind: {matchers['kind']!r} is not one of {KINDS}")


class ApiServer:
    """uvicorn in a thread, on a socket bound here so that port 0 gives a known port."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = host, int(self._sock.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def serve(service: AlertsApi, host: str, port: int) -> ApiServer:
    return ApiServer(make_app(service), host, port)
