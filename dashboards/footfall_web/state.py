"""What every route shares, built once per process: settings, sites, the live MQTT state,
InfluxDB, forecasters, sessions and the footfall-alerts client. It refuses to start a
board that would be exposed without a login before anything connects.

The sites can change while requests are served (`set_sites`, from the thread that reads
a folder of sites again): the maps a request reads are replaced whole, never changed in
place, so a request sees one version or the other."""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import urllib3
from fastapi import HTTPException, Request

from footfall_collector.influx import Influx, InfluxLink, InfluxWatch, connect
from footfall_contract.site import Site, Zone
from footfall_runtime.config import ConfigError
from footfall_runtime.ratelog import LogLimiter

from . import actions, auth
from .config import WebSettings
from .live import Change, LiveState

log = logging.getLogger("footfall_web.app")
SESSION_COOKIE = "footfall_session"
LANG_COOKIE = "footfall_lang"
CSRF_HEADER = "X-CSRF-Token"
CLOSE = Change("close", "", "", {})
"""Told to every live stream when the server stops: end now."""

THREADS = 40
"""Threads serving the synchronous routes at once (anyio's limiter, set at start; 40 is
its default), and the connections pooled for InfluxDB and footfall-alerts: a pool
smaller than the threads sharing it discards connections with a warning."""


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


class Web:
    """What the routes share: settings, sites, live state, InfluxDB, forecasters."""

    def __init__(
        self,
        settings: WebSettings,
        sites: Iterable[Site],
        *,
        forecaster_factory: ForecasterFactory | bool | None = True,
        now: Callable[[], float] = time.time,
        from_folder: bool = False,
    ) -> None:
        self.settings = settings
        # first: refuse to expose the board without a login before anything starts
        self.login_required = auth.check_bind_policy(
            settings.http.host,
            settings.auth.require_login,
            len(settings.auth.users),
            len(settings.auth.tokens),
        )
        served = {s.site: s for s in sites}
        self.sites_version = 0
        """Counts the `set_sites` calls: a board whose page was made before the latest
        one, and whose stream started after it (so no `sites` event reached it), sees a
        newer version in its stream's snapshot and reloads."""
        unknown = set(settings.alerts.sites) - set(served)
        if unknown and not from_folder:  # a typo in a site id: refused at start
            raise ConfigError(
                f"alerts.sites names unknown site(s) {', '.join(sorted(unknown))} "
                f"(sites: {', '.join(served)})"
            )
        if unknown:  # `from_folder`: a site's file may come later (or is another shard's)
            log.warning(
                "alerts.sites names site(s) %s that the sites folder does not hold now: "
                "their Acknowledge and Silence buttons appear when their files do",
                ", ".join(sorted(unknown)),
            )
        self.live = LiveState(settings.mqtt, served.values(), settings.client_id)
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
        self._forecasters: dict[str, tuple[Site, ForecasterLike]] = {}
        """site id -> the site version it was made for, and the forecaster."""
        self._forecast_lock = threading.Lock()
        self.forecast_down_until: dict[str, float] = {}
        """site id -> until when the public display skips its forecast (InfluxDB down)."""
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

    @property
    def sites(self) -> Mapping[str, Site]:
        """The sites served: the live state's map, replaced whole by `set_sites`, so a
        request reads it once (`site()`)."""
        return self.live.sites

    def set_sites(self, sites: Iterable[Site]) -> None:
        """Serve these sites from now on: the live state and the routes follow them at
        once, then the open streams are told (the board reloads for a site that came,
        changed or went; a stream of a removed site ends). What was kept for a changed
        or removed site (its forecaster and cache) goes with it."""
        change = self.live.set_sites(sites)
        new = self.sites
        self.sites_version += 1  # after the sites: a page reads it before them
        try:
            with self._forecast_lock:
                self._forecasters = {
                    k: v for k, v in self._forecasters.items() if new.get(k) is v[0]
                }
            # dict(): one atomic copy, while public displays may add to the original
            down = dict(self.forecast_down_until)
            self.forecast_down_until = {k: v for k, v in down.items() if k in new}
        finally:  # the folder's watch will not report this change again: always told
            if change is not None:
                change.data["version"] = self.sites_version
                self.live.notify(change)

    def close_streams(self) -> None:
        """End every live stream now (a server shutting down waits for open ones)."""
        self.closing = True
        self.live.notify(CLOSE)

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def now_datetime(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now(), tz=dt.UTC)

    def site(self, site: str, among: Mapping[str, Site] | None = None) -> Site:
        """`among`: the sites a request read once (`web.sites`), so that a reload between
        two lookups cannot make one request see two versions."""
        sites = self.sites if among is None else among
        found = sites.get(site)
        if found is None:
            raise HTTPException(404, f"unknown site {site!r} (known: {', '.join(sites)})")
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
        current = self.site(site)  # 404 for a site removed since the caller looked
        with self._forecast_lock:
            made = self._forecasters.get(site)
            if made is None or made[0] is not current:  # none yet, or the site changed
                made = (current, self.forecaster_factory(self.influx, current))
                self._forecasters[site] = made
            return made[1]

    def user(self, request: Request) -> str | None:
        """Who is asking: a bearer token or a login cookie; "local" when no login is
        needed; None when a login is needed and missing."""
        if not self.login_required:
            return "local"
        if self.has_token(request):
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
