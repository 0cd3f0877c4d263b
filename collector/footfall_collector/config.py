"""Collector settings: `FOOTFALL_*` environment variables over an optional TOML file."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from footfall_contract.limits import MAX_PAYLOAD_BYTES
from footfall_runtime.config import MqttSettings
from footfall_runtime.settings import FootfallSettings

# pydantic matches with Rust regex, where $ is the end of the text (no trailing newline)
DURATION_PATTERN = r"^(INF|[1-9][0-9]{0,5}[hdw])$"


def duration_days(text: str | None) -> float | None:
    """ "400d", "8w", "72h" -> days; "INF" or None -> None (no limit)."""
    if text is None or text == "INF":
        return None
    return int(text[:-1]) * {"h": 1 / 24, "d": 1, "w": 7}[text[-1]]


class InfluxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = "http://localhost:8086"
    api: Literal["v1", "v2"] = "v1"
    """v1: /write and /query (InfluxDB 1.x, or 2.x/3.x v1 endpoints); v2: influxdb-client."""
    database: str = "footfall"
    retention_policy: str | None = None
    """The policy raw events are written to; None: the database's default (`autogen`)."""
    retention_duration: str | None = Field("400d", pattern=DURATION_PATTERN)
    """How long raw events are kept (e.g. "400d", "INF" for ever): set on the raw policy
    at start (a named policy is created as the default); None leaves it as it is."""
    rollup_retention: str = Field("INF", pattern=DURATION_PATTERN)
    """How long the `rollups` policy (hourly and daily visits) keeps them."""
    create_database: bool = True
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    org: str | None = None
    bucket: str | None = None
    timeout_s: float = Field(10.0, gt=0)


class HttpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int | None = Field(9108, ge=0, le=65535)
    """/healthz, /metrics and /occupancy; 0 = any free port, unset (null) = none."""


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_payload_bytes: int = Field(MAX_PAYLOAD_BYTES, ge=1024)
    max_future_s: float = Field(300.0, ge=0)
    max_age_days: float | None = Field(None, gt=0)
    """Events older than this are refused as `too_old`; None: the raw retention
    (`influx.retention_duration`, 400 days), which InfluxDB would drop them beyond."""
    batch_points: int = Field(5000, ge=1)
    flush_interval_s: float = Field(0.1, gt=0)
    receive_maximum: int = Field(2000, ge=1, le=65535)
    """Unacknowledged messages the broker may send us at once: bounds memory while
    InfluxDB is away (the broker keeps the rest)."""
    max_queued_points: int = Field(200_000, ge=1000)
    """Points waiting for InfluxDB beyond which QoS 0 messages are dropped (counted as
    `overload_qos0`): Receive Maximum bounds QoS 1 and 2 only."""
    dedup_keys_per_agent: int = Field(4096, ge=1)
    """Crossing keys kept per agent for exactly-once occupancy (keep to twice as many);
    older re-deliveries are checked against InfluxDB."""
    occupancy_heartbeat_s: float = Field(60.0, gt=0)
    agent_silent_s: float = Field(90.0, gt=0)
    """No health or status from an agent for this long: recorded as offline ("silent")."""
    session_expiry_s: int = Field(7 * 24 * 3600, ge=0)


class HistorySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Recompute occupancy history and visit rollups at event time (docs/history.md)."""
    interval_s: float = Field(30.0, gt=0)
    """How often the history worker looks for windows that received data."""


class SitesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    poll_s: float = Field(30.0, gt=0)
    """With `--sites-dir`: how often the folder is read again (SIGHUP reads it at once)."""


class CollectorSettings(FootfallSettings):
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    http: HttpSettings = HttpSettings()
    ingest: IngestSettings = IngestSettings()
    history: HistorySettings = HistorySettings()
    sites: SitesSettings = SitesSettings()
    client_id: str | None = None
    """Fixed MQTT client id of the persistent session; default footfall-collector-<site>
    (`--site`), footfall-collector-shard-<K>-of-<N> (`--shard K/N`) or
    footfall-collector-all (a whole `--sites-dir`)."""
