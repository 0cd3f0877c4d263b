"""footfall-web settings: `FOOTFALL_*` environment variables over an optional TOML file."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from footfall_collector.config import InfluxSettings, SitesSettings
from footfall_runtime.config import MqttSettings
from footfall_runtime.settings import FootfallSettings

from .auth import parse_password_hash
from .levels import Thresholds


class WebHttpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    """Beyond loopback (0.0.0.0, a LAN address, a host name) the board and the API need a
    login, and the server refuses to start without users or tokens."""
    port: int = Field(8080, ge=0, le=65535)
    """0: any free port."""
    root_path: str = ""
    """Path prefix when served behind a reverse proxy under a sub-path."""
    forwarded_allow_ips: list[str] = []
    """Addresses of reverse proxies whose X-Forwarded-For names the client (for the
    per-address login back-off and the logs), e.g. ["127.0.0.1"]; none by default: the
    client is the connection's peer."""

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for addr in value:
            try:
                ipaddress.ip_network(addr)
            except ValueError:
                raise ValueError(
                    f"{addr!r} is not an IP address or network (like 10.0.0.0/8, host bits 0)"
                ) from None
        return value


class AuthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: dict[str, str] = {}
    """user name -> password hash from `footfall-web hash-password`."""
    tokens: list[SecretStr] = []
    """Bearer tokens for API clients (`Authorization: Bearer ...`), at least 16 characters."""
    session_secret: SecretStr | None = None
    """Key that signs login cookies and CSRF tokens; default: random at start. Sessions
    are kept in memory: a restart logs everyone out either way."""
    session_hours: float = Field(12.0, gt=0, le=24 * 30)
    login_failures: int = Field(5, ge=1, le=100)
    """Failed logins in a row (per user name and per client address) before the back-off:
    then 1 s, doubling with each further failure."""
    login_backoff_max_s: float = Field(300.0, ge=1, le=3600)
    """Longest back-off after failed logins."""
    cookie_secure: bool = False
    """Mark the login cookie Secure (set when served over HTTPS by a reverse proxy)."""
    require_login: bool | None = None
    """None: a login is needed exactly when http.host is not a loopback address;
    true: always (even on loopback). false is refused beyond loopback."""

    @field_validator("users")
    @classmethod
    def _hashes(cls, value: dict[str, str]) -> dict[str, str]:
        for user, encoded in value.items():
            if not user or ":" in user or len(user) > 64:
                raise ValueError(f"user name {user!r}: 1-64 characters, no ':'")
            try:
                parse_password_hash(encoded)
            except ValueError as exc:
                raise ValueError(
                    f"user {user!r}: {exc} (make one with `footfall-web hash-password`)"
                ) from None
        return value

    @field_validator("tokens")
    @classmethod
    def _long_tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        for i, token in enumerate(value):
            if len(token.get_secret_value()) < 16:
                raise ValueError(f"tokens[{i}] is shorter than 16 characters")
        return value


Ratio = Annotated[float, Field(gt=0, le=10)]


class CrowdingSettings(BaseModel):
    """The public display: busyness levels by share of capacity, and staleness."""

    model_config = ConfigDict(extra="forbid")

    moderate: Ratio = 0.30
    busy: Ratio = 0.60
    very_busy: Ratio = 0.85
    zones: dict[str, Thresholds] = {}
    """Per-zone thresholds, keyed "site/zone", e.g. {"iso-omena/library": {"moderate":
    0.4, "busy": 0.7, "very_busy": 0.9}}."""
    stale_after_s: float = Field(180.0, gt=0)
    """Occupancy older than this is "no data" (the collector republishes every 60 s)."""
    refresh_s: float = Field(10.0, ge=1, le=600)
    """How often the public page asks for fresh figures."""
    public_zones: list[str] | None = None
    """"site/zone" entries this server may show publicly, of those the site files mark
    `public: true` (docs/spec.md §3); None: all of those. It can only narrow the site
    files' choice, never add a zone to it."""

    @model_validator(mode="after")
    def _ordered(self) -> CrowdingSettings:
        Thresholds(moderate=self.moderate, busy=self.busy, very_busy=self.very_busy)
        for key in [*self.zones, *(self.public_zones or [])]:
            if key.count("/") != 1:
                raise ValueError(f'zone key {key!r} must be "site/zone"')
        return self

    def thresholds(self, site: str, zone: str) -> Thresholds:
        default = Thresholds(moderate=self.moderate, busy=self.busy, very_busy=self.very_busy)
        return self.zones.get(f"{site}/{zone}", default)

    def allows_public(self, site: str, zone: str) -> bool:
        """Whether this setting lets the zone be shown; `Web.is_public` also asks the
        site file."""
        return self.public_zones is None or f"{site}/{zone}" in self.public_zones


class BoardSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sparkline_hours: float = Field(6.0, gt=0, le=48)
    max_points: int = Field(5000, ge=10, le=100_000)
    """Most points one history request may ask for (400 beyond)."""
    forecast_weeks: int = Field(4, ge=1, le=52)
    forecast_step_min: int = Field(15, ge=1, le=120)


class AlertsApiSettings(BaseModel):
    """Where each site's footfall-alerts API is, for the board's Acknowledge and Silence
    buttons. Unset (no url, no sites): no buttons, and the board's action endpoints
    answer 404."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    """Base URL of every site's alerts API; "{site}" is replaced by the site id, e.g.
    "http://127.0.0.1:9110" (one site) or "http://alerts-{site}:9110"."""
    sites: dict[str, str] = {}
    """site id -> base URL, over `url` for those sites."""
    token: SecretStr | None = None
    """Bearer token sent to the alerts APIs (one of their http.tokens)."""
    timeout_s: float = Field(5.0, gt=0, le=60)
    silence_hours: list[Annotated[float, Field(gt=0, le=24 * 7)]] = [1.0, 4.0]
    """The board's Silence buttons (hours); the action endpoint accepts up to a week."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            check_alerts_url(value.replace("{site}", "site"), "url")
        return value

    @field_validator("sites")
    @classmethod
    def _site_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for site, url in value.items():
            check_alerts_url(url, f"sites.{site}")
        return value

    def url_for(self, site: str) -> str | None:
        """The site's alerts API base URL (no trailing slash), None when not configured."""
        url = self.sites.get(site) or (
            self.url.replace("{site}", site) if self.url is not None else None
        )
        return None if url is None else url.rstrip("/")


def check_alerts_url(url: str, name: str) -> None:
    if not url.startswith(("http://", "https://")) or len(url) < 10:
        raise ValueError(f"{name}: {url!r} is not an http:// or https:// URL")
    if "{" in url or "}" in url:
        raise ValueError(f'{name}: {url!r}: the only placeholder is "{{site}}" (in url)')


class WebSettings(FootfallSettings):
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    http: WebHttpSettings = WebHttpSettings()
    auth: AuthSettings = AuthSettings()
    crowding: CrowdingSettings = CrowdingSettings()
    board: BoardSettings = BoardSettings()
    alerts: AlertsApiSettings = AlertsApiSettings()
    sites: SitesSettings = SitesSettings()
    """With `--sites-dir`: `poll_s`, as the collector's and the alerts service's."""
    client_id: str | None = None
    """MQTT client id; default footfall-web-<random> (clean session: it only reads
    retained state)."""
