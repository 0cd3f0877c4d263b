"""What a rule watches: the keys in its scope (zones, agents, an agent's beams, the
site), the alert id and scope labels of each key, and its condition now as the kind's
reading gives it. Each scope key of a rule is its own alert (rule name + key)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .kinds import KIND, LIMIT_KIND, PIPELINE_KEY, alert_id_for
from .state import AlertBook, AlertRec, Condition

if TYPE_CHECKING:
    from footfall_contract.site import Site

    from .rules import Rule


def rule_zones(site: Site, rule: Rule) -> frozenset[str]:
    """The zones a zone kind's rule watches (none for any other kind)."""
    kind = KIND[rule.kind]
    if kind.watches != "zone":
        return frozenset()
    if rule.zones:
        return frozenset(rule.zones)
    if kind.needs_capacity:
        return frozenset(z.id for z in site.zones if z.capacity)
    return frozenset(z.id for z in site.zones)


def refs(book: AlertBook, rule: Rule, zones: frozenset[str]) -> list[str]:
    """Every key in the rule's scope now (the tick's full evaluation); `zones`: what
    `rule_zones` gave for it."""
    watches = KIND[rule.kind].watches
    if watches == "zone":
        return sorted(zones)
    if watches == "site":
        return [PIPELINE_KEY]
    if watches == "beam":
        return [
            key
            for key, rec in book.facts.faults.items()
            if rule.agents is None or rec["agent"] in rule.agents
        ]
    if rule.kind == LIMIT_KIND:
        return sorted(book.refused)
    return list(rule.agents) if rule.agents is not None else sorted(book.facts.agents)


def ref_of(alert: AlertRec) -> str:
    """The key `target` takes for this alert: its zone, agent or fault."""
    scope = alert.scope
    watches = KIND[alert.kind].watches
    if watches == "zone":
        return scope.get("zone", "")
    if watches == "beam":
        return f"{scope.get('agent')}|{scope.get('source')}|beam_blocked"
    if watches == "site":
        return PIPELINE_KEY
    return scope.get("agent", "")


def target(
    book: AlertBook, rule: Rule, ref: str, zones: frozenset[str], now: int
) -> tuple[str, Condition | None]:
    """The alert id for one key of a rule and its condition now; None: the key is not
    (or no longer) in the rule's scope."""
    kind = KIND[rule.kind]
    if kind.watches == "zone":
        alert_id = alert_id_for(rule.name, ref)
        if ref not in zones:
            return alert_id, None
        scope = {"zone": ref}
    elif kind.watches == "site":
        alert_id, scope = alert_id_for(rule.name, PIPELINE_KEY), {}
    elif kind.watches == "beam":
        agent, _, rest = ref.partition("|")
        source = rest.rpartition("|")[0]
        alert_id = alert_id_for(rule.name, f"{agent}-{source}")
        if ref not in book.facts.faults or (rule.agents is not None and agent not in rule.agents):
            return alert_id, None
        scope = _beam_scope(book.site, agent, source)
    else:
        alert_id = alert_id_for(rule.name, ref)
        if rule.agents is not None and ref not in rule.agents:
            return alert_id, None
        scope = {"agent": ref}
    reading = kind.reading(book, rule, ref, now)
    if reading is None:
        return alert_id, None
    return alert_id, Condition(ref, scope, *reading)


def _beam_scope(site: Site, agent: str, source: str) -> dict[str, str]:
    """A beam's alert names its door and the door's inside zone (routes by zone reach
    it) when the source is a beam of a door of the site."""
    scope = {"agent": agent, "source": source}
    door = source.split("/", 1)[0]
    if "/" in source:
        try:
            inside = site.door(door).inside
        except KeyError:
            return scope
        scope["door"] = door
        scope["zone"] = inside
    return scope
