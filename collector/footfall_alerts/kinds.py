"""The alert kinds, one entry each: what a kind watches, how its value is read from the
engine's facts, its defaults, its unit and its summary. A new kind is one entry here
(its words in every language of wording.py, and its name in docs/alerts.md); the rules
file and the engine only read this table.

Readings are pure: they take the engine's state and the time, and do no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from footfall_contract.hours import last_closing, reset_after

from .localtime import local_time
from .wording import number, say

if TYPE_CHECKING:
    from footfall_contract.site import Site

    from .rules import Rule
    from .state import AlertBook, AlertRec

Watches = Literal["zone", "agent", "beam", "site"]
"""What one alert of the kind is about: a zone, an agent, an agent's beam (its fault
source), or the whole site (the collector's heartbeat)."""
Reading = tuple[float | None, int]
"""The value now (None: no data) and since when it has held."""

LIMIT_KIND: Final = "too_many_alerts"
PIPELINE_KIND: Final = "pipeline_silent"
PIPELINE_KEY: Final = "collector"
"""The scope key of pipeline_silent alerts (one per rule and site): `pipeline-silent-collector`."""


@dataclass(frozen=True)
class Kind:
    name: str
    watches: Watches
    unit: str
    """What the value counts: said when a rules file gets fire_at and clear_at wrong."""
    defaults: Mapping[str, Any]
    """fire_at / clear_at (the value that fires and the one that clears: hysteresis),
    for_s, severity, and any other field of the rule that differs for this kind."""
    reading: Callable[[AlertBook, Rule, str, int], Reading | None]
    """(engine, rule, scope key, now) -> the reading; None: the key is not watched."""
    summary: Callable[[AlertBook, Rule, AlertRec, str, float], str]
    """(engine, rule, alert, zone name, value) -> the one-line summary."""
    needs_capacity: bool = False
    """Only zones with a capacity: by default, and a rule may name no other."""


# --- readings ---------------------------------------------------------------------------


def _capacity_ratio(book: AlertBook, rule: Rule, zone: str, now: int) -> Reading:
    capacity = book.site.zone(zone).capacity
    fact = book.facts.zones.get(zone)
    value = None if fact is None or not capacity else fact[0] / capacity
    return value, fact[1] if fact else now


def _count_after_close(book: AlertBook, rule: Rule, zone: str, now: int) -> Reading:
    fact = book.facts.zones.get(zone)
    if fact is not None and closed_for(book.site, zone, rule.grace, now):
        return float(fact[0]), now
    return None, now


def closed_for(site: Site, zone: str, grace_s: float, now: int) -> bool:
    """Closed for at least `grace_s` since the last closing, and the daily reset has
    not come since (after it the count starts again from 0)."""
    local = datetime.fromtimestamp(now / 1000, site.tz)
    if site.is_open(local, zone):
        return False
    closed = last_closing(site, local, zone)
    if closed is None:
        return False
    return closed + timedelta(seconds=grace_s) <= local < reset_after(site, closed)


def _clamped(book: AlertBook, rule: Rule, zone: str, now: int) -> Reading:
    clamped = book.facts.drift.get(zone)
    return None if clamped is None else float(clamped), now


def _refused(book: AlertBook, rule: Rule, agent: str, now: int) -> Reading:
    return float(len(book.refused.get(agent, ()))), now


def _backlog(book: AlertBook, rule: Rule, agent: str, now: int) -> Reading | None:
    a = book.facts.agents.get(agent)
    return None if a is None else (float(a["queue"]), a["seen"])


def _offline(book: AlertBook, rule: Rule, agent: str, now: int) -> Reading | None:
    a = book.facts.agents.get(agent)
    if a is None:
        return None
    silent_at = a["seen"] + round(rule.silent_after * 1000)
    if not a["online"]:
        return 1.0, a["changed"]
    if now >= silent_at:
        return 1.0, silent_at
    return 0.0, now


def _blocked(book: AlertBook, rule: Rule, fault: str, now: int) -> Reading:
    rec = book.facts.faults[fault]
    return 1.0 if rec["active"] else 0.0, rec["since"]


def _flapping(book: AlertBook, rule: Rule, fault: str, now: int) -> Reading:
    recent = [t for t in book.facts.faults[fault]["activations"] if t > now - rule.window * 1000]
    return float(len(recent)), recent[0] if recent else now


def _silence_s(book: AlertBook, rule: Rule, key: str, now: int) -> Reading | None:
    """Seconds since the newest zone occupancy. A new alert waits for `watch` and then
    the rule's own threshold (the retained topics arrive in the first second); an
    open one counts from the last data, so a restart neither resolves nor repeats it."""
    alert = book.alerts.get(alert_id_for(rule.name, PIPELINE_KEY))
    watch_from = book.watch_from
    fire_ms = round(rule.fire_at * 1000)
    if alert is None and (watch_from is None or now < watch_from + fire_ms):
        return None
    if book.heard is not None:
        base = book.heard
    elif alert is not None:
        base = alert.since - fire_ms
    else:
        assert watch_from is not None
        base = watch_from
    onset = max(base, watch_from if watch_from is not None else base) + fire_ms
    return float(max(0, now - base) // 1000), onset


# --- summaries ---------------------------------------------------------------------------


def _over_capacity(book: AlertBook, rule: Rule, alert: AlertRec, zone_name: str, v: float) -> str:
    capacity = book.site.zone(alert.scope["zone"]).capacity or 0
    return say(
        book.lang,
        "summary.over_capacity",
        zone=zone_name,
        count=round(v * capacity),
        capacity=capacity,
        pct=f"{v * 100:.0f}",
    )


def _pipeline_summary(book: AlertBook, rule: Rule, alert: AlertRec, zone: str, v: float) -> str:
    """Since when no data came: the incident's start, kept as it is once resolved."""
    tz, lang = book.site.timezone, book.lang
    if book.heard is None:
        started = book.watch_from if book.watch_from is not None else alert.since
        when = say(lang, "pipeline.since_start", time=local_time(started, tz, lang))
    else:
        when = say(lang, "pipeline.since", time=local_time(book.heard, tz, lang))
    return say(lang, "summary.pipeline_silent", when=when)


def _worded(kind: str) -> Callable[[AlertBook, Rule, AlertRec, str, float], str]:
    """The summary of a kind whose text takes only the alert's scope and its value."""

    def summary(book: AlertBook, rule: Rule, alert: AlertRec, zone: str, v: float) -> str:
        lang = book.lang
        return say(
            lang,
            f"summary.{kind}",
            zone=zone,
            agent=alert.scope.get("agent", "?"),
            source=alert.scope.get("source", "?"),
            count=number(lang, v),
            minutes=number(lang, rule.window / 60),
            max=book.max_per_agent,
        )

    return summary


# --- the table ---------------------------------------------------------------------------

_ENTRIES: Final = (
    Kind(
        "over_capacity",
        "zone",
        "ratio of capacity (1.0 = 100%)",
        {"fire_at": 1.0, "clear_at": 0.9, "for_s": 60.0, "severity": "warning"},
        _capacity_ratio,
        _over_capacity,
        needs_capacity=True,
    ),
    Kind(
        "agent_offline",
        "agent",
        "1 = offline",
        {
            "fire_at": 1.0,
            "clear_at": 0.0,
            "for_s": 300.0,
            "clear_for": 60.0,
            "severity": "warning",
            "active_hours": "open",
        },
        _offline,
        _worded("agent_offline"),
    ),
    Kind(
        "agent_backlog",
        "agent",
        "events queued on the Pi",
        {"fire_at": 1000.0, "clear_at": 100.0, "for_s": 300.0, "severity": "warning"},
        _backlog,
        _worded("agent_backlog"),
    ),
    # A beam that clears and blocks again within 5 minutes is one incident, not several.
    Kind(
        "beam_blocked",
        "beam",
        "1 = blocked",
        {"fire_at": 1.0, "clear_at": 0.0, "for_s": 0.0, "clear_for": 300.0, "severity": "warning"},
        _blocked,
        _worded("beam_blocked"),
    ),
    Kind(
        "beam_flapping",
        "beam",
        "beam_blocked activations within `window`",
        {"fire_at": 5.0, "clear_at": 0.0, "for_s": 0.0, "severity": "info"},
        _flapping,
        _worded("beam_flapping"),
    ),
    Kind(
        "drift_after_close",
        "zone",
        "people still counted after closing",
        {"fire_at": 5.0, "clear_at": 2.0, "for_s": 0.0, "severity": "info"},
        _count_after_close,
        _worded("drift_after_close"),
    ),
    Kind(
        "drift_clamped",
        "zone",
        "people not subtracted since the reset because the count was 0",
        {"fire_at": 20.0, "clear_at": 0.0, "for_s": 0.0, "severity": "info"},
        _clamped,
        _worded("drift_clamped"),
    ),
    # Recomputed every tick; 5 minutes without a refused alert before it resolves.
    Kind(
        LIMIT_KIND,
        "agent",
        "alerts of the agent not raised because it has max_alerts_per_agent",
        {"fire_at": 1.0, "clear_at": 0.0, "for_s": 0.0, "clear_for": 300.0, "severity": "warning"},
        _refused,
        _worded("too_many_alerts"),
    ),
    # Seconds since the newest zone occupancy from the collector, which publishes every
    # zone at least every 60 s: 3 minutes is three heartbeats missed. Critical: the board,
    # the public displays and every zone alert go blind with it.
    Kind(
        PIPELINE_KIND,
        "site",
        "seconds since the newest zone occupancy from the collector",
        {"fire_at": 180.0, "clear_at": 60.0, "for_s": 0.0, "severity": "critical"},
        _silence_s,
        _pipeline_summary,
    ),
)
KIND: Final[Mapping[str, Kind]] = {k.name: k for k in _ENTRIES}
"""Every kind by name, in the order the docs list them."""
KINDS: Final[tuple[str, ...]] = tuple(KIND)


def summarize(book: AlertBook, rule: Rule, alert: AlertRec) -> str:
    """The alert's one-line summary: the rule's own template, else its kind's."""
    zone = alert.scope.get("zone")
    zone_name = book.site.zone(zone).name_in(book.lang) if zone else ""
    value = alert.value
    if rule.summary:
        fields = _Blank(
            alert.scope, zone_name=zone_name, value="" if value is None else f"{value:g}"
        )
        return rule.summary.format_map(fields)
    return KIND[rule.kind].summary(book, rule, alert, zone_name, value or 0.0)


class _Blank(dict[str, str]):
    """Placeholders this alert has no value for (a beam on an unknown door) stay empty."""

    def __missing__(self, key: str) -> str:
        return "?"


def alert_id_for(rule: str, key: str) -> str:
    """`rule-key` as a topic- and tag-safe id ([a-z0-9-], at most 64 characters)."""
    text = re.sub(r"[^a-z0-9-]+", "-", f"{rule}-{key}".lower()).strip("-")
    if len(text) <= 64:
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{text[:55].rstrip('-')}-{digest}"


if TYPE_CHECKING:
    KindName = str
else:
    KindName = Literal[KINDS]
"""A kind's name, as the rules file's `kind:` and a route's `kinds:` accept it."""
