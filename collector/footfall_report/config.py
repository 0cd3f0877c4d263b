"""footfall-report settings: `FOOTFALL_*` environment variables over an optional TOML file
(the same loader and InfluxDB/SMTP sections as the collector and the alerts service)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from footfall_collector.config import InfluxSettings
from footfall_runtime.settings import FootfallSettings
from footfall_runtime.smtp import SmtpSettings

Address = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]


class ReportSmtpSettings(SmtpSettings):
    sender: str = "footfall-report@localhost"


class MailSettings(BaseModel):
    """The monthly report by e-mail (`footfall-report mail-monthly`)."""

    model_config = ConfigDict(extra="forbid")

    recipients: list[Address] = []
    """Who gets every site's monthly report (`--to` adds more)."""
    sites: list[Path] = []
    """Site files whose report is mailed when `--site` is not given."""


class ReportSettings(FootfallSettings):
    influx: InfluxSettings = InfluxSettings()
    smtp: ReportSmtpSettings = ReportSmtpSettings()
    mail: MailSettings = MailSettings()
    state_dir: Path = Path("/var/lib/footfall-report")
    """The ledger of mailed reports (SQLite): what makes a rerun send nothing twice."""
