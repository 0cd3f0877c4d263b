"""The alert engine, pure: observations and the time go in, transitions and notifications
come out. No clock, no I/O, so scenarios replay in virtual time and the whole state is
one JSON document the service saves with the outbox in one transaction.

Per alert (rule + zone/agent/beam): inactive -> pending (the value reached `fire_at`)
-> firing (it held for `for`, in the rule's active hours) -> resolved (it fell to
`clear_at`, and stayed there for `clear_for`). The gap between `fire_at` and `clear_at`
is what keeps a value flapping around a threshold from paging anyone twice.

Notifications go per receiver and rule: transitions of one rule within `group_wait` make
one message (a power cut is one notification, not one per Pi). A receiver gets a
"resolved" only for an alert it was told about; an alert that fires and resolves while a
receiver's quiet hours, a silence or the grouping wait hold it back is never sent to it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from footfall_contract.site import Site
from footfall_contract.timefmt import format_ts

from .rules import Rule, RulesFile, in_span

TransitionState = Literal[
    "pending", "firing", "resolved", "cancelled", "acknowledged", "silenced", "unsilenced"
]
Event = Literal["firing", "resolved", "repeat"]
PUBLISHED: Final = frozenset({"firing", "resolved", "acknowledged", "silenced", "unsilenced"})
"""Transitions that change the retained MQTT alert (pending and cancelled do not)."""

_MAX_ACTIVATIONS: Final = 200


# --- observations ---------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneObs:
    zone: str
    count: int
    ts_ms: int


@dataclass(frozen=True)
class StatusObs:
    agent: str
    online: bool
    ts_ms: int


@dataclass(frozen=True)
class HealthObs:
    agent: str
    queue_depth: int
    ts_ms: int


@dataclass(frozen=True)
class FaultObs:
    agent: str
    source: str
    fault: str
    active: bool
    ts_ms: int


@dataclass(frozen=True)
class SeenObs:
    """Any other message from an agent (crossings, presence): it is alive."""

    agent: str
    ts_ms: int


@dataclass(frozen=True)
class DriftObs:
    zone: str
    clamped: int
    ts_ms: int


@dataclass(frozen=True)
class ForgetObs:
    """The agent's retained status was cleared: it is out of service, forget it."""

    agent: str
    ts_ms: int


Observation = ZoneObs | StatusObs | HealthObs | FaultObs | SeenObs | DriftObs | ForgetObs


# --- effects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """One alert's change: recorded in InfluxDB; the PUBLISHED ones also go to MQTT."""

    state: TransitionState
    alert: dict[str, Any]
    """The contract `Alert` payload as of this transition."""
    ts_ms: int
    by: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Notification:
    """One message to one receiver: alerts of one rule that fired, resolved or repeat."""

    receiver: str
    rule: str
    event: Event
    alerts: tuple[dict[str, Any], ...]
    ts_ms: int


Effect = Transition | Notification


# --- state -----------------------------------------------------------------------------


@dataclass
class AlertRec:
    id: str
    rule: str
    kind: str
    severity: str
    scope: dict[str, str]
    state: Literal["pending", "firing"]
    since: int
    """When the condition began (pending from then)."""
    value: float | None
    started: int = 0
    """When it fired."""
    clear_since: int | None = None
    notified: dict[str, int] = field(default_factory=dict)
    """receiver -> when it was last told (firing or repeat)."""
    ack_by: str | None = None
    ack_reason: str | None = None
    summary: str = ""


@dataclass
class Silence:
    id: str
    matchers: dict[str, str]
    """Any of alert, rule, kind, zone, agent; all given must match."""
    until: int
    by: str
    reason: str
    created: int

    def covers(self, alert: AlertRec) -> bool:
        for key, want in self.matchers.items():
            have = {"alert": alert.id, "rule": alert.rule, "kind": alert.kind}.get(key)
            if have is None:
                have = alert.scope.get(key)
            if have != want:
                return False
        return True


@dataclass
class _Condition:
    key: str
    scope: dict[str, str]
    value: float | None
    onset: int


@dataclass
class _Facts:
    zones: dict[str, list[int]] = field(default_factory=dict)
    """zone -> [count, ts]"""
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    """agent -> online, changed (ts of the last status), seen (ts), queue"""
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)
    """agent|source|fault -> agent, source, fault, active, since, activations [ts]"""
    drift: dict[str, int] = field(default_factory=dict)


class Engine:
    def __init__(self, site: Site, rules: RulesFile, state: Mapping[str, Any] | None = None):
        self.site = site
        self.config = rules
        self.rules = rules.active_rules(site)
        self._rule = {r.name: r for r in self.rules}
        self.facts = _Facts()
        self.alerts: dict[str, AlertRec] = {}
        self.silences: dict[str, Silence] = {}
        self.owed: dict[str, dict[str, Any]] = {}
        """receiver\\trule\\tevent -> {"due": ms, "ids": [firing ids], "resolved": [payloads]}"""
        self._silence_seq = 0
        if state:
            self._restore(state)

    # --- persistence -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to carry on after a restart, as JSON-able data."""
        return {
            "version": 1,
            "facts": asdict(self.facts),
            "alerts": {k: asdict(a) for k, a in self.alerts.items()},
            "silences": {k: asdict(s) for k, s in self.silences.items()},
            "owed": self.owed,
            "silence_seq": self._silence_seq,
        }

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.facts = _Facts(**state["facts"])
        # Alerts of rules that no longer exist are dropped (the rules file changed).
        self.alerts = {
            k: AlertRec(**a) for k, a in state["alerts"].items() if a["rule"] in self._rule
        }
        self.silences = {k: Silence(**s) for k, s in state["silences"].items()}
        self.owed = {k: v for k, v in state["owed"].items() if k.split("\t")[1] in self._rule}
        self._silence_seq = int(state.get("silence_seq", 0))

    # --- inputs ------------------------------------------------------------------------

    def observe(self, obs: Observation, now: int) -> list[Effect]:
        """Take one observation into the live state, then evaluate."""
        f = self.facts
        ts = min(obs.ts_ms, now)
        if isinstance(obs, ZoneObs):
            f.zones[obs.zone] = [obs.count, ts]
        elif isinstance(obs, DriftObs):
            f.drift[obs.zone] = obs.clamped
        elif isinstance(obs, ForgetObs):
            f.agents.pop(obs.agent, None)
            for key in [k for k, v in f.faults.items() if v["agent"] == obs.agent]:
                del f.faults[key]
        else:
            agent = f.agents.setdefault(
                obs.agent, {"online": True, "changed": ts, "seen": ts, "queue": 0}
            )
            if isinstance(obs, StatusObs):
                if obs.online != agent["online"] or obs.online:
                    agent["changed"] = ts
                agent["online"] = obs.online
            else:
                if not agent["online"]:
                    agent["changed"] = ts  # data again: it is back, whatever status said
                agent["online"] = True
            agent["seen"] = max(agent["seen"], ts) if agent["online"] else agent["seen"]
            if isinstance(obs, HealthObs):
                agent["queue"] = obs.queue_depth
            if isinstance(obs, FaultObs):
                key = f"{obs.agent}|{obs.source}|{obs.fault}"
                rec = f.faults.setdefault(
                    key,
                    {
                        "agent": obs.agent,
                        "source": obs.source,
                        "fault": obs.fault,
                        "active": False,
                        "since": ts,
                        "activations": [],
                    },
                )
                if obs.active and not rec["active"]:
                    rec["activations"] = [*rec["activations"], ts][-_MAX_ACTIVATIONS:]
                if obs.active != rec["active"]:
                    rec["since"] = ts
                rec["active"] = obs.active
        return self.evaluate(now)

    def tick(self, now: int) -> list[Effect]:
        """Time passing: `for` durations, silent agents, closing hours, grouping, repeats."""
        return self.evaluate(now)

    # --- evaluation ----------------------------------------------------------------------

    def evaluate(self, now: int) -> list[Effect]:
        out: list[Effect] = []
        out += self._expire_silences(now)
        for rule in self.rules:
            seen: set[str] = set()
            for cond in self._conditions(rule, now):
                alert_id = alert_id_for(rule.name, cond.key)
                seen.add(alert_id)
                out += self._step(rule, alert_id, cond, now)
            for alert in [a for a in self.alerts.values() if a.rule == rule.name]:
                if alert.id not in seen:  # its zone or agent is gone from the scope
                    cond = _Condition(alert.id, alert.scope, None, now)
                    out += self._step(rule, alert.id, cond, now)
        out += self._repeats(now)
        out += self._flush(now)
        return out

    def _step(self, rule: Rule, alert_id: str, cond: _Condition, now: int) -> list[Effect]:
        alert = self.alerts.get(alert_id)
        value = cond.value
        if alert is None:
            if value is None or value < rule.fire_at:
                return []
            alert = AlertRec(
                id=alert_id,
                rule=rule.name,
                kind=rule.kind,
                severity=rule.severity,
                scope=cond.scope,
                state="pending",
                since=min(cond.onset, now),
                value=value,
            )
            alert.summary = self._summary(rule, alert)
            self.alerts[alert_id] = alert
            out: list[Effect] = [self._transition("pending", alert, now)]
            return out + self._maybe_fire(rule, alert, now)
        bad = value is not None and value > rule.clear_at
        if value is not None:
            alert.value = value
        if alert.state == "pending":
            if not bad:
                del self.alerts[alert_id]
                return [self._transition("cancelled", alert, now)]
            return self._maybe_fire(rule, alert, now)
        # firing
        if bad:
            alert.clear_since = None
            return []
        if alert.clear_since is None:
            alert.clear_since = now
        if now - alert.clear_since < rule.clear_for * 1000:
            return []
        return self._resolve(rule, alert, now)

    def _maybe_fire(self, rule: Rule, alert: AlertRec, now: int) -> list[Effect]:
        if now - alert.since < rule.for_s * 1000 or not self._in_active_hours(rule, alert, now):
            return []
        alert.state = "firing"
        alert.started = now
        alert.summary = self._summary(rule, alert)
        for receiver in self._receivers(alert):
            group = self._owe(
                receiver, rule.name, "firing", now + round(self.config.group_wait * 1000)
            )
            group["ids"].append(alert.id)
        return [self._transition("firing", alert, now)]

    def _resolve(self, rule: Rule, alert: AlertRec, now: int) -> list[Effect]:
        del self.alerts[alert.id]
        alert.summary = self._summary(rule, alert)
        transition = self._transition("resolved", alert, now)
        untold: set[str] = set()
        for key, group in list(self.owed.items()):
            receiver, rule_name, event = key.split("\t")
            if (
                rule_name == rule.name
                and event in ("firing", "repeat")
                and alert.id in group["ids"]
            ):
                group["ids"].remove(alert.id)
                if event == "firing":
                    untold.add(receiver)
                if not group["ids"] and not group.get("resolved"):
                    del self.owed[key]
        for receiver in alert.notified:
            if receiver in untold:
                continue
            group = self._owe(
                receiver, rule.name, "resolved", now + round(self.config.group_wait * 1000)
            )
            group["resolved"].append(transition.alert)
        return [transition]

    def _owe(self, receiver: str, rule: str, event: Event, due: int) -> dict[str, Any]:
        key = f"{receiver}\t{rule}\t{event}"
        group = self.owed.get(key)
        if group is None:
            group = self.owed[key] = {"due": due, "ids": [], "resolved": []}
        return group

    def _repeats(self, now: int) -> list[Effect]:
        for alert in self.alerts.values():
            rule = self._rule[alert.rule]
            if alert.state != "firing" or rule.repeat is None or alert.ack_by:
                continue
            for receiver, last in alert.notified.items():
                if now - last >= rule.repeat * 1000:
                    group = self._owe(receiver, rule.name, "repeat", now)
                    if alert.id not in group["ids"]:
                        group["ids"].append(alert.id)
        return []

    def _flush(self, now: int) -> list[Effect]:
        out: list[Effect] = []
        for key in sorted(self.owed, key=lambda k: (self.owed[k]["due"], k)):
            group = self.owed[key]
            if group["due"] > now:
                continue
            receiver, rule_name, event = key.split("\t")
            rule = self._rule[rule_name]
            send: list[dict[str, Any]] = []
            keep_ids: list[str] = []
            for alert_id in group["ids"]:
                alert = self.alerts.get(alert_id)
                if alert is None or alert.state != "firing":
                    continue
                if event == "repeat" and alert.ack_by:
                    continue
                if (
                    self._silenced_until(alert, now) is not None
                    or self._quiet(receiver, alert, now)
                    or not self._in_active_hours(rule, alert, now)
                ):
                    keep_ids.append(alert_id)
                    continue
                alert.notified[receiver] = now
                send.append(self._payload(alert, "firing", now))
            keep_resolved = []
            for payload in group["resolved"]:
                if self._quiet_scope(receiver, payload, now):
                    keep_resolved.append(payload)
                else:
                    send.append(payload)
            if keep_ids or keep_resolved:
                group["ids"], group["resolved"] = keep_ids, keep_resolved
            else:
                del self.owed[key]
            if send:
                out.append(Notification(receiver, rule.name, event, tuple(send), now))  # type: ignore[arg-type]
        return out

    # --- conditions ----------------------------------------------------------------------

    def _conditions(self, rule: Rule, now: int) -> Iterator[_Condition]:
        f = self.facts
        site = self.site
        kind = rule.kind
        if kind == "over_capacity":
            zones = rule.zones or [z.id for z in site.zones if z.capacity]
            for zone in zones:
                capacity = site.zone(zone).capacity
                fact = f.zones.get(zone)
                value = None if fact is None or not capacity else fact[0] / capacity
                yield _Condition(zone, {"zone": zone}, value, fact[1] if fact else now)
        elif kind == "drift_after_close":
            for zone in rule.zones or [z.id for z in site.zones]:
                fact = f.zones.get(zone)
                value = None
                if fact is not None and self._closed_for(zone, rule.grace, now):
                    value = float(fact[0])
                yield _Condition(zone, {"zone": zone}, value, now)
        elif kind == "drift_clamped":
            for zone in rule.zones or [z.id for z in site.zones]:
                clamped = f.drift.get(zone)
                yield _Condition(
                    zone, {"zone": zone}, None if clamped is None else float(clamped), now
                )
        elif kind in ("agent_offline", "agent_backlog"):
            for agent in rule.agents or sorted(f.agents):
                a = f.agents.get(agent)
                if a is None:
                    continue
                if kind == "agent_backlog":
                    yield _Condition(agent, {"agent": agent}, float(a["queue"]), a["seen"])
                    continue
                silent_at = a["seen"] + round(rule.silent_after * 1000)
                if not a["online"]:
                    yield _Condition(agent, {"agent": agent}, 1.0, a["changed"])
                elif now >= silent_at:
                    yield _Condition(agent, {"agent": agent}, 1.0, silent_at)
                else:
                    yield _Condition(agent, {"agent": agent}, 0.0, now)
        else:  # beam_blocked, beam_flapping
            for rec in f.faults.values():
                if rec["fault"] != "beam_blocked":
                    continue
                if rule.agents is not None and rec["agent"] not in rule.agents:
                    continue
                scope = {"agent": rec["agent"], "source": rec["source"]}
                door = rec["source"].split("/", 1)[0]
                if door in {d.id for d in site.doors}:
                    scope["door"] = door
                    scope["zone"] = site.door(door).inside
                key = f"{rec['agent']}-{rec['source']}"
                if kind == "beam_blocked":
                    value = 1.0 if rec["active"] else 0.0
                    yield _Condition(key, scope, value, rec["since"])
                else:
                    recent = [t for t in rec["activations"] if t > now - rule.window * 1000]
                    yield _Condition(key, scope, float(len(recent)), recent[0] if recent else now)

    def _closed_for(self, zone: str, grace_s: float, now: int) -> bool:
        """Closed for at least `grace_s` since the last closing, and the daily reset has
        not come since (after it the count starts again from 0)."""
        site = self.site
        tz = site.tz
        local = dt.datetime.fromtimestamp(now / 1000, tz)
        if site.is_open(local, zone):
            return False
        last_close: dt.datetime | None = None
        for back in range(8):
            day = local.date() - dt.timedelta(days=back)
            hours = site.hours_on(day, zone)
            if hours is None:
                continue
            end = dt.datetime.combine(day, hours[1], tzinfo=tz)
            if hours[1] == dt.time.max:
                end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
            if end <= local:
                last_close = end
                break
        if last_close is None:
            return False
        reset = dt.datetime.combine(last_close.date(), site.reset_time(), tzinfo=tz)
        if reset <= last_close:
            reset += dt.timedelta(days=1)
        return last_close + dt.timedelta(seconds=grace_s) <= local < reset

    # --- routing, quiet hours, silences -------------------------------------------------

    def _receivers(self, alert: AlertRec) -> list[str]:
        out: list[str] = []
        for route in self.config.routes:
            if route.matches(alert.severity, alert.kind, alert.scope):
                out += [r for r in route.receivers if r not in out]
        return out

    def _quiet(self, receiver: str, alert: AlertRec, now: int) -> bool:
        return self._quiet_for(receiver, alert.severity, alert.kind, alert.scope, now)

    def _quiet_scope(self, receiver: str, payload: Mapping[str, Any], now: int) -> bool:
        return self._quiet_for(
            receiver, payload["severity"], payload["kind"], payload["scope"], now
        )

    def _quiet_for(
        self, receiver: str, severity: str, kind: str, scope: Mapping[str, str], now: int
    ) -> bool:
        """Quiet when every route that brings this alert to this receiver is in its quiet
        hours (one route without them is enough to deliver)."""
        local = dt.datetime.fromtimestamp(now / 1000, self.site.tz).time()
        routes = [
            r
            for r in self.config.routes
            if receiver in r.receivers and r.matches(severity, kind, scope)
        ]
        return bool(routes) and all(
            r.quiet_hours is not None and in_span(r.quiet_hours, local) for r in routes
        )

    def _in_active_hours(self, rule: Rule, alert: AlertRec, now: int) -> bool:
        if rule.active_hours == "always":
            return True
        when = dt.datetime.fromtimestamp(now / 1000, self.site.tz)
        return self.site.is_open(when, alert.scope.get("zone"))

    def _silenced_until(self, alert: AlertRec, now: int) -> int | None:
        until = [s.until for s in self.silences.values() if s.until > now and s.covers(alert)]
        return max(until) if until else None

    def _expire_silences(self, now: int) -> list[Effect]:
        out: list[Effect] = []
        for sid, silence in list(self.silences.items()):
            if silence.until <= now:
                del self.silences[sid]
                for alert in self.alerts.values():
                    if alert.state == "firing" and silence.covers(alert):
                        out.append(self._transition("unsilenced", alert, now))
        return out

    # --- API actions ---------------------------------------------------------------------

    def add_silence(
        self, matchers: Mapping[str, str], until: int, by: str, reason: str, now: int
    ) -> tuple[Silence, list[Effect]]:
        if not matchers:
            raise ValueError(
                "a silence needs at least one matcher (alert, rule, kind, zone, agent)"
            )
        unknown = set(matchers) - {"alert", "rule", "kind", "zone", "agent", "source", "door"}
        if unknown:
            raise ValueError(f"unknown matcher(s): {', '.join(sorted(unknown))}")
        if until <= now:
            raise ValueError("a silence must end in the future")
        self._silence_seq += 1
        silence = Silence(f"s{self._silence_seq}", dict(matchers), until, by, reason, now)
        self.silences[silence.id] = silence
        out: list[Effect] = [
            self._transition("silenced", a, now, by, reason)
            for a in self.alerts.values()
            if a.state == "firing" and silence.covers(a)
        ]
        return silence, out + self.evaluate(now)

    def remove_silence(self, silence_id: str, now: int) -> list[Effect]:
        silence = self.silences.get(silence_id)
        if silence is None:
            raise KeyError(f"no silence {silence_id!r}")
        silence.until = now
        return self.evaluate(now)

    def acknowledge(self, alert_id: str, by: str, reason: str, now: int) -> list[Effect]:
        alert = self.alerts.get(alert_id)
        if alert is None or alert.state != "firing":
            raise KeyError(f"no firing alert {alert_id!r}")
        alert.ack_by, alert.ack_reason = by, reason
        for key, group in list(self.owed.items()):
            if key.endswith("\trepeat") and alert_id in group["ids"]:
                group["ids"].remove(alert_id)
                if not group["ids"] and not group["resolved"]:
                    del self.owed[key]
        return [self._transition("acknowledged", alert, now, by, reason)]

    # --- payloads --------------------------------------------------------------------------

    def active(self, now: int) -> list[dict[str, Any]]:
        """Firing and pending alerts, for the API (pending ones have state "pending")."""
        out = []
        for alert in sorted(self.alerts.values(), key=lambda a: (a.since, a.id)):
            payload = self._payload(alert, "firing", now)
            payload["state"] = alert.state
            if alert.state == "pending":
                payload["started"] = format_ts(alert.since)
            payload["ack_reason"] = alert.ack_reason
            out.append(payload)
        return out

    def _transition(
        self,
        state: TransitionState,
        alert: AlertRec,
        now: int,
        by: str | None = None,
        reason: str | None = None,
    ) -> Transition:
        shown = "resolved" if state in ("resolved", "cancelled") else "firing"
        return Transition(state, self._payload(alert, shown, now), now, by, reason)

    def _payload(self, alert: AlertRec, state: str, now: int) -> dict[str, Any]:
        silenced = self._silenced_until(alert, now)
        return {
            "id": alert.id,
            "rule": alert.rule,
            "kind": alert.kind,
            "severity": alert.severity,
            "state": state,
            "scope": dict(alert.scope),
            "summary": alert.summary,
            "started": format_ts(alert.started or alert.since),
            "ts": format_ts(now),
            "value": alert.value,
            "acknowledged_by": alert.ack_by,
            "silenced_until": format_ts(silenced) if silenced is not None else None,
        }

    def _summary(self, rule: Rule, alert: AlertRec) -> str:
        scope = alert.scope
        value = alert.value
        zone = scope.get("zone")
        zone_name = self.site.zone(zone).name if zone else ""
        if rule.summary:
            fields = _Blank(scope, zone_name=zone_name, value="" if value is None else f"{value:g}")
            return rule.summary.format_map(fields)
        v = value or 0.0
        if rule.kind == "over_capacity":
            capacity = self.site.zone(scope["zone"]).capacity or 0
            return (
                f"{zone_name} over capacity: {round(v * capacity)} of {capacity} people ({v:.0%})"
            )
        if rule.kind == "drift_after_close":
            return f"{zone_name}: {v:g} people still counted after closing (count drift)"
        if rule.kind == "drift_clamped":
            return (
                f"{zone_name}: {v:g} exits found the count already at 0 since the reset "
                "(a sensor may miss people)"
            )
        agent = scope.get("agent", "?")
        if rule.kind == "agent_offline":
            return f"Sensor {agent} offline"
        if rule.kind == "agent_backlog":
            return f"Sensor {agent}: {v:g} events waiting to be sent"
        where = scope.get("source", "?")
        if rule.kind == "beam_blocked":
            return f"Beam {where} blocked (sensor {agent})"
        return f"Beam {where} flapping: blocked {v:g} times within {rule.window / 60:g} min"


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
