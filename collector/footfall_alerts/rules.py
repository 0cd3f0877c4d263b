"""The alert rules file (`SITE.alerts.yaml` next to the site file): rules, receivers and
routes, validated against the site so that a typo stops the service at start with the
file, the line and the reason (the same machinery and messages as the site file).

Without a rules file every site gets `default_rules()`: over capacity, agent offline for
5 minutes while the site is open, beam blocked, and occupancy not back near 0 after
closing. Every site, with or without a file, also gets the built-in `pipeline_silent`
rule (no zone occupancy from the collector for 3 minutes) unless the file has a rule of
that kind: a stopped collector must never go unnoticed."""

from __future__ import annotations

import datetime as dt
import os
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from footfall_contract.messages import Severity
from footfall_contract.site import (
    Site,
    SiteError,
    _check_duplicate_keys,
    _Located,
    _parse_time,
    _schema_error,
    _syntax_error,
    read_text,
)

__all__ = [
    "KINDS",
    "LIMIT_KIND",
    "LIMIT_RULE",
    "MAX_ALERTS_PER_AGENT",
    "PIPELINE_KIND",
    "PIPELINE_RULE",
    "EmailReceiver",
    "Route",
    "Rule",
    "RulesError",
    "RulesFile",
    "WebhookReceiver",
    "default_rules",
    "limit_rule",
    "load_rules",
    "parse_duration",
    "parse_rules",
    "pipeline_rule",
    "rules_path_for",
]


class RulesError(SiteError):
    """A rules file that cannot be used: `file:line: reason`."""


Kind = Literal[
    "over_capacity",
    "agent_offline",
    "agent_backlog",
    "beam_blocked",
    "beam_flapping",
    "drift_after_close",
    "drift_clamped",
    "too_many_alerts",
    "pipeline_silent",
]
KINDS: Final[tuple[str, ...]] = Kind.__args__  # type: ignore[attr-defined]
ZONE_KINDS: Final = frozenset({"over_capacity", "drift_after_close", "drift_clamped"})
AGENT_KINDS: Final = frozenset(
    {"agent_offline", "agent_backlog", "beam_blocked", "beam_flapping", "too_many_alerts"}
)
LIMIT_KIND: Final = "too_many_alerts"
LIMIT_RULE: Final = "too-many-alerts"
"""The built-in rule of LIMIT_KIND, when the rules file has none: an agent that reaches
`max_alerts_per_agent` gets this alert instead of more alerts."""
MAX_ALERTS_PER_AGENT: Final = 100
PIPELINE_KIND: Final = "pipeline_silent"
PIPELINE_RULE: Final = "pipeline-silent"
"""The built-in rule of PIPELINE_KIND, when the rules file has none: the collector's zone
occupancy (a heartbeat at least every 60 s) stopped coming."""
BUILT_IN: Final = {LIMIT_RULE: LIMIT_KIND, PIPELINE_RULE: PIPELINE_KIND}
"""Rule names kept for the built-in rule of their kind."""

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
_NAME = r"^[a-z0-9][a-z0-9-]{0,47}$"


def parse_duration(value: object) -> float:
    """Seconds from 90, "90s", "5m", "1h30m", "2d"; ValueError says what it accepts."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or text like 5m, 1h30m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip())
        if not isinstance(value, str) or not value.strip() or not match:
            raise ValueError(
                f"bad duration {value!r}: use seconds (90) or text like 30s, 5m, 1h30m, 2d"
            )
        d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = d * 86400 + h * 3600 + m * 60 + s
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _parse_span(value: str) -> tuple[dt.time, dt.time]:
    """ "22:00-07:00" (may wrap past midnight) -> (start, end)."""
    if not isinstance(value, str):
        raise ValueError('quiet hours must be a quoted string such as "22:00-07:00"')
    start, sep, end = value.partition("-")
    if not sep:
        raise ValueError(f'quiet hours must be "HH:MM-HH:MM" (may wrap midnight), not {value!r}')
    a, b = _parse_time(start.strip(), "quiet hours start"), _parse_time(end.strip(), "quiet end")
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


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# --- rules ---------------------------------------------------------------------------

_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    # fire_at / clear_at: the value that fires and the one that clears (hysteresis).
    "over_capacity": {"fire_at": 1.0, "clear_at": 0.9, "for_s": 60.0, "severity": "warning"},
    "agent_offline": {
        "fire_at": 1.0,
        "clear_at": 0.0,
        "for_s": 300.0,
        "clear_for": 60.0,
        "severity": "warning",
        "active_hours": "open",
    },
    "agent_backlog": {"fire_at": 1000.0, "clear_at": 100.0, "for_s": 300.0, "severity": "warning"},
    # A beam that clears and blocks again within 5 minutes is one incident, not several.
    "beam_blocked": {
        "fire_at": 1.0,
        "clear_at": 0.0,
        "for_s": 0.0,
        "clear_for": 300.0,
        "severity": "warning",
    },
    "beam_flapping": {"fire_at": 5.0, "clear_at": 0.0, "for_s": 0.0, "severity": "info"},
    "drift_after_close": {"fire_at": 5.0, "clear_at": 2.0, "for_s": 0.0, "severity": "info"},
    "drift_clamped": {"fire_at": 20.0, "clear_at": 0.0, "for_s": 0.0, "severity": "info"},
    # Seconds since the newest zone occupancy from the collector, which publishes every
    # zone at least every 60 s: 3 minutes is three heartbeats missed. Critical: the board,
    # the public displays and every zone alert go blind with it.
    "pipeline_silent": {
        "fire_at": 180.0,
        "clear_at": 60.0,
        "for_s": 0.0,
        "severity": "critical",
    },
    # Recomputed every tick; 5 minutes without a refused alert before it resolves.
    "too_many_alerts": {
        "fire_at": 1.0,
        "clear_at": 0.0,
        "for_s": 0.0,
        "clear_for": 300.0,
        "severity": "warning",
    },
}

_UNITS: Final = {
    "over_capacity": "ratio of capacity (1.0 = 100%)",
    "agent_offline": "1 = offline",
    "agent_backlog": "events queued on the Pi",
    "beam_blocked": "1 = blocked",
    "beam_flapping": "beam_blocked activations within `window`",
    "drift_after_close": "people still counted after closing",
    "drift_clamped": "people not subtracted since the reset because the count was 0",
    "too_many_alerts": "alerts of the agent not raised because it has max_alerts_per_agent",
    "pipeline_silent": "seconds since the newest zone occupancy from the collector",
}


class Rule(_Frozen):
    """One rule: a kind evaluated for every zone or agent in its scope; each scope key
    becomes its own alert (rule name + key)."""

    name: Annotated[str, Field(pattern=_NAME)]
    kind: Kind
    zones: list[str] | None = None
    """Zone kinds: the zones it watches (default: every zone; over_capacity: every zone
    with a capacity)."""
    agents: list[str] | None = None
    """Agent kinds: the agents it watches (default: every agent seen on MQTT)."""
    fire_at: float = None  # type: ignore[assignment]  # per-kind default, set below
    clear_at: float = None  # type: ignore[assignment]
    for_s: Annotated[Duration, Field(alias="for")] = None  # type: ignore[assignment]
    """The condition must hold this long before the alert fires (pending until then)."""
    clear_for: Duration = 0.0
    """...and be cleared this long before it resolves."""
    severity: Severity = None  # type: ignore[assignment]
    repeat: Duration | None = 4 * 3600.0
    """Re-send while it lasts (not acknowledged) every this long; null: never."""
    active_hours: Literal["always", "open"] = None  # type: ignore[assignment]
    """open: fires only while the site (the zone, the door's zone) is open; a condition
    that starts at night fires at opening if it still holds."""
    window: Duration = 600.0
    """beam_flapping: activations are counted over this window."""
    silent_after: Duration = 120.0
    """agent_offline: no status, health or data for this long also counts as offline."""
    grace: Duration = 1800.0
    """drift_after_close: checked from this long after closing until the daily reset."""
    summary: Annotated[str, Field(max_length=300)] | None = None
    """Overrides the generated one-line summary; {zone}, {agent}, {value} are filled in."""

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("kind") in _DEFAULTS:
            merged = dict(data)
            for key, value in _DEFAULTS[str(data["kind"])].items():
                alias = "for" if key == "for_s" else key
                if alias not in merged and key not in merged:
                    merged[alias] = value
            merged.setdefault("active_hours", "always")
            return merged
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.clear_at >= self.fire_at:
            raise _Located(
                f"rule {self.name!r}: clear_at ({self.clear_at:g}) must be below fire_at "
                f"({self.fire_at:g}): the gap is what stops a flapping value from paging "
                f"({self.kind} counts {_UNITS[self.kind]})",
                ("clear_at",),
            )
        if self.kind in AGENT_KINDS and self.zones is not None:
            raise _Located(
                f"rule {self.name!r}: {self.kind} watches agents, use agents: not zones:",
                ("zones",),
            )
        if self.kind in ZONE_KINDS and self.agents is not None:
            raise _Located(
                f"rule {self.name!r}: {self.kind} watches zones, use zones: not agents:",
                ("agents",),
            )
        if self.kind == PIPELINE_KIND and (self.zones is not None or self.agents is not None):
            raise _Located(
                f"rule {self.name!r}: {self.kind} watches the collector's occupancy of the "
                "whole site: it takes neither zones: nor agents:",
                ("zones" if self.zones is not None else "agents",),
            )
        if self.summary is not None:
            allowed = {"zone", "zone_name", "value", "agent", "source", "door"}
            try:
                names = {f for _, f, _, _ in string.Formatter().parse(self.summary) if f}
            except ValueError as exc:
                raise _Located(f"rule {self.name!r}: summary: {exc}", ("summary",)) from None
            if names - allowed:
                raise _Located(
                    f"rule {self.name!r}: summary: unknown placeholder(s) "
                    f"{', '.join(sorted(names - allowed))} (use {', '.join(sorted(allowed))})",
                    ("summary",),
                )
        if self.repeat is not None and self.repeat < 60:
            raise _Located(
                f"rule {self.name!r}: repeat must be at least 1m (or null for never)",
                ("repeat",),
            )
        return self


# --- receivers and routes ------------------------------------------------------------


def _check_address(value: str) -> str:
    if not re.match(r"^[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+$", value):
        raise ValueError(f"not an e-mail address: {value!r} (one address per item)")
    return value


Address = Annotated[str, AfterValidator(_check_address)]


class EmailReceiver(_Frozen):
    """E-mail through the SMTP server of the settings (FOOTFALL_SMTP__*)."""

    type: Literal["email"]
    to: Annotated[list[Address], Field(min_length=1)]


class WebhookReceiver(_Frozen):
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


class Route(_Frozen):
    """Which receivers get which alerts; an alert goes to every route it matches."""

    receivers: Annotated[list[str], Field(min_length=1)]
    severities: list[Severity] | None = None
    kinds: list[Kind] | None = None
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


class RulesFile(_Frozen):
    site: str | None = None
    """If given, must be the site's id: a rules file used with the wrong site is refused."""
    group_wait: Duration = 30.0
    """Transitions of one rule within this long go out as one message (a power cut that
    takes five Pis offline is one notification)."""
    receivers: dict[Annotated[str, Field(pattern=_NAME)], Receiver] = {}
    routes: list[Route] = []
    rules: list[Rule] | None = None
    """Omitted: `default_rules()`."""
    max_alerts_per_agent: Annotated[int, Field(ge=1, le=100_000)] = MAX_ALERTS_PER_AGENT
    """Open (pending or firing) alerts about one agent, at most: past it, the agent gets one
    `too_many_alerts` alert instead, so that no agent can grow the state without end."""

    def active_rules(self, site: Site) -> list[Rule]:
        return list(self.rules) if self.rules is not None else default_rules(site)

    @model_validator(mode="after")
    def _references(self) -> RulesFile:
        for i, route in enumerate(self.routes):
            for j, name in enumerate(route.receivers):
                if name not in self.receivers:
                    known = ", ".join(sorted(self.receivers)) or "none defined"
                    raise _Located(
                        f"route {i}: receiver {name!r} is not defined under receivers: ({known})",
                        ("routes", i, "receivers", j),
                    )
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules or []):
            if rule.name in seen:
                raise _Located(
                    f"rule {rule.name!r} is defined twice (rules[{seen[rule.name]}] and "
                    f"rules[{i}])",
                    ("rules", i, "name"),
                )
            seen[rule.name] = i
            kept = BUILT_IN.get(rule.name)
            if kept is not None and rule.kind != kept:
                raise _Located(
                    f"rule name {rule.name!r} is kept for the {kept} rule",
                    ("rules", i, "name"),
                )
        limits = [i for i, r in enumerate(self.rules or []) if r.kind == LIMIT_KIND]
        if len(limits) > 1:
            raise _Located(
                f"only one rule may be of kind {LIMIT_KIND} (rules[{limits[0]}] and "
                f"rules[{limits[1]}])",
                ("rules", limits[1], "kind"),
            )
        return self

    def check_site(self, site: Site) -> None:
        """Zone names must exist in the site; raised as _Located for file:line."""
        zones = {z.id for z in site.zones}
        if self.site is not None and self.site != site.site:
            raise _Located(
                f"this rules file is for site {self.site!r}, not {site.site!r}", ("site",)
            )

        def check(where: tuple[str | int, ...], names: list[str] | None) -> None:
            for k, zone in enumerate(names or []):
                if zone not in zones:
                    raise _Located(
                        f"zone {zone!r} does not exist in site {site.site!r} "
                        f"(zones: {', '.join(sorted(zones))})",
                        (*where, k),
                    )

        for i, rule in enumerate(self.rules or []):
            check(("rules", i, "zones"), rule.zones)
            if rule.kind == "over_capacity":
                for k, zone in enumerate(rule.zones or []):
                    if zone in zones and site.zone(zone).capacity is None:
                        raise _Located(
                            f"rule {rule.name!r}: zone {zone!r} has no capacity in the site file",
                            ("rules", i, "zones", k),
                        )
        for i, route in enumerate(self.routes):
            check(("routes", i, "zones"), route.zones)


def limit_rule() -> Rule:
    """The built-in rule of kind too_many_alerts (a rules file may define its own)."""
    return Rule.model_validate({"name": LIMIT_RULE, "kind": LIMIT_KIND})


def pipeline_rule() -> Rule:
    """The built-in rule of kind pipeline_silent (a rules file may define its own)."""
    return Rule.model_validate({"name": PIPELINE_RULE, "kind": PIPELINE_KIND})


def default_rules(site: Site) -> list[Rule]:
    """What every site gets without a rules file."""
    del site  # every default applies to whatever the site has
    return [
        Rule.model_validate({"name": "over-capacity", "kind": "over_capacity"}),
        Rule.model_validate({"name": "agent-offline", "kind": "agent_offline"}),
        Rule.model_validate({"name": "beam-blocked", "kind": "beam_blocked"}),
        Rule.model_validate({"name": "drift-after-close", "kind": "drift_after_close"}),
    ]


# --- loading -------------------------------------------------------------------------


def rules_path_for(site_path: str | os.PathLike[str]) -> Path:
    """`deploy/sites/iso-omena.yaml` -> `deploy/sites/iso-omena.alerts.yaml`."""
    path = Path(site_path)
    return path.with_name(f"{path.stem}.alerts.yaml")


def load_rules(path: str | os.PathLike[str], site: Site) -> RulesFile:
    file, text = read_text(path, "rules file", RulesError)
    return parse_rules(text, site, file)


def parse_rules(text: str, site: Site, file: str = "<rules>") -> RulesFile:
    """YAML text -> RulesFile checked against `site`; RulesError names file, line, why."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        err = _syntax_error(file, exc)
        raise RulesError(file, err.line, err.reason) from None
    except yaml.YAMLError as exc:
        raise RulesError(file, None, f"invalid YAML: {exc}") from None
    if root is None:
        return RulesFile()
    if not isinstance(root, yaml.MappingNode):
        raise RulesError(
            file,
            root.start_mark.line + 1,
            "the top level must be a mapping (receivers:, routes:, rules:)",
        )
    try:
        _check_duplicate_keys(file, root)
    except SiteError as exc:
        raise RulesError(file, exc.line, exc.reason) from None
    loader = yaml.SafeLoader("")
    try:
        data = loader.construct_document(root)
    finally:
        loader.dispose()
    try:
        rules = RulesFile.model_validate(data)
    except ValidationError as exc:
        err = _schema_error(file, root, exc)
        raise RulesError(file, err.line, err.reason) from None
    try:
        rules.check_site(site)
    except _Located as exc:
        from footfall_contract.site import _walk_loc

        node = _walk_loc(root, exc.loc)
        raise RulesError(file, node.start_mark.line + 1, str(exc)) from None
    return rules
