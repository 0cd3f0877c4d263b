"""The alert rules file (`SITE.alerts.yaml` next to the site file): rules, receivers and
routes, validated against the site so that a typo stops the service at start with the
file, the line and the reason (the same machinery and messages as the site file).

Without a rules file every site gets `default_rules()`: over capacity, agent offline for
5 minutes while the site is open, beam blocked, and occupancy not back near 0 after
closing. Every site, with or without a file, also gets the built-in `pipeline_silent`
rule (no zone occupancy from the collector for 3 minutes) unless the file has a rule of
that kind: a stopped collector must never go unnoticed."""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from footfall_contract.messages import Severity
from footfall_contract.site import Site, SiteError
from footfall_contract.yamlfile import Located, parse_mapping, read_text

from .kinds import KIND, KINDS, LIMIT_KIND, PIPELINE_KIND, KindName
from .routes import EmailReceiver, FileModel, Receiver, Route, WebhookReceiver, in_span
from .wording import DEFAULT, Lang

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
    "in_span",
    "limit_rule",
    "load_rules",
    "parse_duration",
    "parse_rules",
    "pipeline_rule",
    "rules_path_for",
]


class RulesError(SiteError):
    """A rules file that cannot be used: `file:line: reason`."""


ZONE_KINDS: Final = frozenset(k.name for k in KIND.values() if k.watches == "zone")
AGENT_KINDS: Final = frozenset(k.name for k in KIND.values() if k.watches in ("agent", "beam"))
LIMIT_RULE: Final = "too-many-alerts"
"""The built-in rule of LIMIT_KIND, when the rules file has none: an agent that reaches
`max_alerts_per_agent` gets this alert instead of more alerts."""
MAX_ALERTS_PER_AGENT: Final = 100
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


class _Frozen(BaseModel):
    model_config = FileModel.model_config


# --- rules ---------------------------------------------------------------------------


class Rule(_Frozen):
    """One rule: a kind evaluated for every zone or agent in its scope; each scope key
    becomes its own alert (rule name + key)."""

    name: Annotated[str, Field(pattern=_NAME)]
    kind: KindName
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
    """Overrides the generated one-line summary; {zone}, {agent}, {value} are filled in
    ({zone_name}: in the file's `language` when the site names it so); kept as written."""

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("kind") in KIND:
            merged = dict(data)
            for key, value in KIND[str(data["kind"])].defaults.items():
                alias = "for" if key == "for_s" else key
                if alias not in merged and key not in merged:
                    merged[alias] = value
            merged.setdefault("active_hours", "always")
            return merged
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.clear_at >= self.fire_at:
            raise Located(
                f"rule {self.name!r}: clear_at ({self.clear_at:g}) must be below fire_at "
                f"({self.fire_at:g}): the gap is what stops a flapping value from paging "
                f"({self.kind} counts {KIND[self.kind].unit})",
                ("clear_at",),
            )
        if self.kind in AGENT_KINDS and self.zones is not None:
            raise Located(
                f"rule {self.name!r}: {self.kind} watches agents, use agents: not zones:",
                ("zones",),
            )
        if self.kind in ZONE_KINDS and self.agents is not None:
            raise Located(
                f"rule {self.name!r}: {self.kind} watches zones, use zones: not agents:",
                ("agents",),
            )
        if KIND[self.kind].watches == "site" and (
            self.zones is not None or self.agents is not None
        ):
            raise Located(
                f"rule {self.name!r}: {self.kind} watches the collector's occupancy of the "
                "whole site: it takes neither zones: nor agents:",
                ("zones" if self.zones is not None else "agents",),
            )
        if self.summary is not None:
            allowed = {"zone", "zone_name", "value", "agent", "source", "door"}
            try:
                names = {f for _, f, _, _ in string.Formatter().parse(self.summary) if f}
            except ValueError as exc:
                raise Located(f"rule {self.name!r}: summary: {exc}", ("summary",)) from None
            if names - allowed:
                raise Located(
                    f"rule {self.name!r}: summary: unknown placeholder(s) "
                    f"{', '.join(sorted(names - allowed))} (use {', '.join(sorted(allowed))})",
                    ("summary",),
                )
        if self.repeat is not None and self.repeat < 60:
            raise Located(
                f"rule {self.name!r}: repeat must be at least 1m (or null for never)",
                ("repeat",),
            )
        return self


class RulesFile(_Frozen):
    site: str | None = None
    """If given, must be the site's id: a rules file used with the wrong site is refused."""
    language: Lang = DEFAULT
    """The language of the site's alert texts: generated summaries (MQTT, the board) and
    every notification text; zone names in it when the site file gives them."""
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
                    raise Located(
                        f"route {i}: receiver {name!r} is not defined under receivers: ({known})",
                        ("routes", i, "receivers", j),
                    )
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules or []):
            if rule.name in seen:
                raise Located(
                    f"rule {rule.name!r} is defined twice (rules[{seen[rule.name]}] and "
                    f"rules[{i}])",
                    ("rules", i, "name"),
                )
            seen[rule.name] = i
            kept = BUILT_IN.get(rule.name)
            if kept is not None and rule.kind != kept:
                raise Located(
                    f"rule name {rule.name!r} is kept for the {kept} rule",
                    ("rules", i, "name"),
                )
        limits = [i for i, r in enumerate(self.rules or []) if r.kind == LIMIT_KIND]
        if len(limits) > 1:
            raise Located(
                f"only one rule may be of kind {LIMIT_KIND} (rules[{limits[0]}] and "
                f"rules[{limits[1]}])",
                ("rules", limits[1], "kind"),
            )
        return self

    def check_site(self, site: Site) -> None:
        """Zone names must exist in the site; raised as _Located for file:line."""
        zones = {z.id for z in site.zones}
        if self.site is not None and self.site != site.site:
            raise Located(
                f"this rules file is for site {self.site!r}, not {site.site!r}", ("site",)
            )

        def check(where: tuple[str | int, ...], names: list[str] | None) -> None:
            for k, zone in enumerate(names or []):
                if zone not in zones:
                    raise Located(
                        f"zone {zone!r} does not exist in site {site.site!r} "
                        f"(zones: {', '.join(sorted(zones))})",
                        (*where, k),
                    )

        for i, rule in enumerate(self.rules or []):
            check(("rules", i, "zones"), rule.zones)
            if KIND[rule.kind].needs_capacity:
                for k, zone in enumerate(rule.zones or []):
                    if zone in zones and site.zone(zone).capacity is None:
                        raise Located(
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
    doc = parse_mapping(
        text,
        file,
        RulesError,
        what="rules file",
        top_level="the top level must be a mapping (receivers:, routes:, rules:)",
    )
    if doc is None:
        return RulesFile()
    rules = doc.validate(RulesFile, RulesError)
    try:
        rules.check_site(site)
    except Located as exc:
        raise doc.at(exc, RulesError) from None
    return rules
