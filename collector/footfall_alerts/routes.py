"""Who gets told: the receivers of a rules file (e-mail, webhooks), the routes that
bring alerts to them, and the routes' quiet hours. The rules file's models are strict
(frozen, unknown keys refused), so a typo is an error at start, not a silent default."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from footfall_contract.hours import parse_time
from footfall_contract.messages import Severity

from .kinds import KindName


class FileModel(BaseModel):
    """A part of the rules file."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# --- quiet hours -------------------------------------------------------------------------


def _parse_span(value: str) -> tuple[dt.time, dt.time]:
    """ "22:00-07:00" (may wrap past midnight) -> (start, end)."""
    if not isinstance(value, str):
        raise ValueError('quiet hours must be a quoted string such as "22:00-07:00"')
    start, sep, end = value.partition("-")
    if not sep:
        raise ValueError(f'quiet hours must be "HH:MM-HH:MM" (may wrap midnight), not {value!r}')
    a, b = parse_time(start.strip(), "quiet hours start"), parse_time(end.strip(), "quiet end")
    if a == b:
        raise ValueError(f"quiet hours {value!r} start and end at the same time")
    return a, b


def _check_span(value: str) -> str:
    _parse_span(value)
    return value


Span = Annotated[str, AfterValidator(_check_span)]


def in_span(span: str, local: dt.time) -> bool:
    """Whether a wall-clock time is inside "HH:MM-HH:MM" (which may wrap midnight)."""
    start, end = _parse_span(span)
    if start < end:
        return start <= local < end
    return local >= start or local < end


# --- receivers and routes ------------------------------------------------------------


def _check_address(value: str) -> str:
    if not re.match(r"^[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+$", value):
        raise ValueError(f"not an e-mail address: {value!r} (one address per item)")
    return value


Address = Annotated[str, AfterValidator(_check_address)]


class EmailReceiver(FileModel):
    """E-mail through the SMTP server of the settings (FOOTFALL_SMTP__*)."""

    type: Literal["email"]
    to: Annotated[list[Address], Field(min_length=1)]


class WebhookReceiver(FileModel):
    """JSON POST; `format` slack or teams sends what their incoming webhooks accept."""

    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    url_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    """Name of an environment variable holding the URL (Slack and Teams URLs are secrets)."""
    format: Literal["json", "slack", "teams"] = "json"
    headers: dict[str, str] = {}
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0

    @model_validator(mode="after")
    def _one_url(self) -> WebhookReceiver:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("a webhook needs exactly one of url: or url_env:")
        return self

    def resolved_url(self, environ: Mapping[str, str] | None = None) -> str:
        if self.url is not None:
            return self.url
        env = os.environ if environ is None else environ
        assert self.url_env is not None
        value = env.get(self.url_env, "")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"environment variable {self.url_env} must hold the webhook URL")
        return value


Receiver = Annotated[EmailReceiver | WebhookReceiver, Field(discriminator="type")]


class Route(FileModel):
    """Which receivers get which alerts; an alert goes to every route it matches."""

    receivers: Annotated[list[str], Field(min_length=1)]
    severities: list[Severity] | None = None
    kinds: list[KindName] | None = None
    zones: list[str] | None = None
    """Alerts about these zones (beam alerts carry the door's inside zone)."""
    agents: list[str] | None = None
    quiet_hours: Span | None = None
    """Site-local "HH:MM-HH:MM": notifications wait until it ends (and are dropped if the
    alert resolved meanwhile)."""

    def matches(self, severity: str, kind: str, scope: Mapping[str, str]) -> bool:
        if self.severities is not None and severity not in self.severities:
            return False
        if self.kinds is not None and kind not in self.kinds:
            return False
        if self.zones is not None and scope.get("zone") not in self.zones:
            return False
        return self.agents is None or scope.get("agent") in self.agents
