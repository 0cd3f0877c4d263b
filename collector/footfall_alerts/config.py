"""footfall-alerts settings: `FOOTFALL_*` environment variables over an optional TOML file
(the same loader and broker/InfluxDB sections as the collector)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from footfall_collector.config import HttpSettings, InfluxSettings, SitesSettings
from footfall_runtime.config import ConfigError, MqttSettings
from footfall_runtime.httpauth import MIN_TOKEN_LENGTH, is_loopback, short_tokens
from footfall_runtime.settings import FootfallSettings
from footfall_runtime.smtp import SmtpSettings


class AlertsHttpSettings(HttpSettings):
    """The API: where it listens, and the bearer tokens it asks for."""

    port: int | None = Field(9110, ge=0, le=65535)
    """0 = any free port, unset (null) = no API. Its own default (not the collector's
    9108) also when only some FOOTFALL_HTTP__* variables are set."""
    tokens: list[SecretStr] = Field(default_factory=list)
    """`Authorization: Bearer <token>` for /api/v1/* (at least 16 characters each). Set:
    every /api/v1/* request needs one, on loopback too. Unset: only allowed on loopback
    (the API is then open to local processes, as before)."""

    @field_validator("tokens")
    @classmethod
    def _long_tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        short = short_tokens([t.get_secret_value() for t in value])
        if short:
            raise ValueError(f"tokens[{short[0]}] is shorter than {MIN_TOKEN_LENGTH} characters")
        return value

    def token_values(self) -> list[str]:
        return [t.get_secret_value() for t in self.tokens]


def token_required(host: str, tokens: int) -> bool:
    """Whether the API asks for a bearer token; ConfigError when it would listen beyond
    loopback without any (anyone on the network could silence every alert)."""
    if tokens:
        return True
    if not is_loopback(host):
        raise ConfigError(
            f"http.host {host!r} is beyond loopback: the alerts API (silences, "
            "acknowledgements) needs a bearer token there, but none is configured. Set "
            "FOOTFALL_HTTP__TOKENS='[\"<at least 16 random characters>\"]' (or tokens = "
            "[...] under [http] in the config file), or listen on 127.0.0.1."
        )
    return False


class DeliverySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retry_min_s: float = Field(2.0, gt=0)
    retry_max_s: float = Field(300.0, gt=0)
    """Back-off between attempts of one outbox entry grows up to this and stays there:
    an entry is retried until it goes out (or is refused for good, e.g. HTTP 400)."""
    keep_sent_days: float = Field(14.0, gt=0)


class AlertsSettings(FootfallSettings):
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    http: AlertsHttpSettings = AlertsHttpSettings()
    """/api/v1/alerts, silences, acknowledgements, /healthz, /metrics (0 = any free port);
    bearer tokens for /api/v1/* (required beyond loopback)."""
    smtp: SmtpSettings = SmtpSettings()
    delivery: DeliverySettings = DeliverySettings()
    sites: SitesSettings = SitesSettings()
    state_dir: Path = Path("/var/lib/footfall-alerts")
    """Engine state and the outbox (SQLite), one file per site (SITE.sqlite3): what makes
    a restart send nothing twice."""
    client_id: str | None = None
    """Fixed MQTT client id of the persistent session; default footfall-alerts-<site>
    (--site), footfall-alerts-all (--sites-dir) or footfall-alerts-shard-K-of-N."""
    session_expiry_s: int = Field(7 * 24 * 3600, ge=0)
    tick_s: float = Field(1.0, gt=0, le=60)
    drift_poll_s: float = Field(60.0, gt=0)
    """How often drift_clamped rules read occupancy_drift from InfluxDB."""
    link: str | None = None
    """A URL put in every message as "Dashboard" (e.g. the Grafana dashboard; the word in
    the rules file's language)."""
    board_url: str | None = None
    """The live board's address (FOOTFALL_BOARD_URL), put in every message as "Live
    board": where facilities staff see the alert and acknowledge or silence it."""

    @field_validator("board_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value):
            raise ValueError(
                f"must be an http:// or https:// address without spaces, e.g. "
                f"https://footfall.example.org/, not {value!r}"
            )
        return value
