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

Cost: an observation re-evaluates only the alerts of its own scope (its zone, its agent,
its agent's fault source), found by key, never by a scan of every alert; the time-driven
work (`for`, silent agents, closing hours, repeats, silences ending) is the tick's. The
state is kept as parts by scope key (`alert/{id}`, `fault/{key}`, `agent/{id}`, ...), and
`take_changes()` returns only the parts that changed, so saving after a message costs what
the message changed, not the size of the state. An agent has at most
`max_alerts_per_agent` open alerts; past that it gets one `too_many_alerts` alert.

The engine is the evaluation loop; the rest has a module each: `kinds.py` (what each
kind reads and says), `scopes.py` (the keys a rule watches), `state.py` (the facts, the
state and its parts), `restore.py`, `notify.py` (routes, quiet hours, silences, grouping) and
`observations.py` (what goes in and out).

A firing alert's summary follows its value ("83 people still counted", not the 5 it
fired with): the API shows it at once, MQTT gets an "updated" transition at most every
`UPDATE_EVERY_MS`, and receivers see it in the next repeat or the resolved message, never
a message per change.

`pipeline_silent` watches the collector itself: the seconds since the newest zone
occupancy (a heartbeat at least every 60 s). The service says when it started listening
(`watch`), so that a restart on an old saved state gives the collector the rule's
threshold to show up before anything fires.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from footfall_contract.site import Site

from .kinds import KIND, LIMIT_KIND, PIPELINE_KEY, PIPELINE_KIND, KindName, alert_id_for, summarize
from .notify import Notifying
from .observations import (
    PUBLISHED,
    RECORDED,
    DriftObs,
    Effect,
    Event,
    FaultObs,
    ForgetObs,
    HealthObs,
    Notification,
    Observation,
    SeenObs,
    StatusObs,
    Transition,
    TransitionState,
    ZoneObs,
)
from .restore import Restoring
from .rules import Rule, RulesFile, limit_rule, pipeline_rule
from .scopes import ref_of, refs, rule_zones, target
from .state import (
    MAX_SILENCE_S,
    MAX_SILENCES,
    TRACKED_FAULTS,
    AlertRec,
    Condition,
    Silence,
    check_silence,
    join_parts,
    json_copy,
)

__all__ = [
    "MAX_SILENCES",
    "MAX_SILENCE_S",
    "PIPELINE_KEY",
    "PUBLISHED",
    "RECORDED",
    "UPDATE_EVERY_MS",
    "AlertRec",
    "DriftObs",
    "Effect",
    "Engine",
    "Event",
    "FaultObs",
    "ForgetObs",
    "HealthObs",
    "KindName",
    "Notification",
    "Observation",
    "SeenObs",
    "Silence",
    "StatusObs",
    "Transition",
    "TransitionState",
    "ZoneObs",
    "alert_id_for",
    "json_copy",
]

UPDATE_EVERY_MS: Final = 10_000
"""A firing alert whose summary changed is published again at most this often."""


class Engine(Restoring, Notifying):
    """The evaluation loop: observations and the tick go in, each alert steps through
    pending, firing and resolved, and the transitions and notifications come out."""

    def __init__(
        self,
        site: Site,
        rules: RulesFile,
        state: Mapping[str, Any] | None = None,
        parts: Mapping[str, Any] | None = None,
    ) -> None:
        """`state`: a `snapshot()` (or a state file of the version that saved one
        document); `parts`: what `take_changes()` handed out, as saved. Whatever of either
        cannot be used is dropped or repaired, and said in `repairs`."""
        super().__init__(site)
        self.config = rules
        self.rules = rules.active_rules(site)
        self.max_per_agent = rules.max_alerts_per_agent
        own_limit = [r for r in self.rules if r.kind == LIMIT_KIND]
        self.limit_rule = own_limit[0] if own_limit else limit_rule()
        own_pipeline = any(r.kind == PIPELINE_KIND for r in self.rules)
        self._eval_rules = [r for r in self.rules if r.kind != LIMIT_KIND]
        if not own_pipeline:
            self._eval_rules.append(pipeline_rule())
        self._eval_rules.append(self.limit_rule)
        """Every rule, the built-in pipeline rule unless the file has one, and the limit
        rule last: it counts what the others could not raise."""
        self._pipeline = [r for r in self._eval_rules if r.kind == PIPELINE_KIND]
        self._rule = {r.name: r for r in self._eval_rules}
        self._zones_of = {r.name: rule_zones(site, r) for r in self._eval_rules}
        self._sources = site.fault_sources()
        loaded: Mapping[str, Any] = {}
        if parts:
            loaded = parts
            state = join_parts(parts)
        if state is not None:
            self._restore(state)
        # Whatever differs from what was loaded (repaired, dropped, all of it after a state
        # file of the one-document version, or the first save) is saved again.
        now_parts = self.parts()
        keys = set(loaded) | set(now_parts)
        self._dirty = {k for k in keys if loaded.get(k) != now_parts.get(k)}

    @property
    def all_rules(self) -> list[Rule]:
        """The rules file's rules and, unless it has its own, the built-in pipeline and
        limit rules."""
        return list(self._eval_rules)

    def watch(self, now: int) -> None:
        """The service listens from `now`: pipeline_silent counts from here at the
        earliest, so an old saved heartbeat pages nobody before MQTT had its chance."""
        self.watch_from = now

    # --- inputs ------------------------------------------------------------------------

    def observe(self, obs: Observation, now: int) -> list[Effect]:
        """Take one observation into the live state, then evaluate what it is about (its
        zone, its agent, its fault source) and nothing else."""
        f = self.facts
        ts = min(obs.ts_ms, now)
        targets: list[tuple[Rule, str]] = []
        if isinstance(obs, ZoneObs | DriftObs):
            if isinstance(obs, ZoneObs):
                f.zones[obs.zone] = [obs.count, ts]
                self._dirty.add(f"zone/{obs.zone}")
                self.heard = max(ts, self.heard or ts)
            elif f.drift.get(obs.zone) != obs.clamped:
                f.drift[obs.zone] = obs.clamped
                self._dirty.add(f"drift/{obs.zone}")
            targets = [
                (r, obs.zone) for r in self._eval_rules if obs.zone in self._zones_of[r.name]
            ]
            if isinstance(obs, ZoneObs):
                targets += [(r, PIPELINE_KEY) for r in self._pipeline]
        elif isinstance(obs, ForgetObs):
            if f.agents.pop(obs.agent, None) is not None:
                self._dirty.add(f"agent/{obs.agent}")
            for key in self._faults_of.pop(obs.agent, set()):
                f.faults.pop(key, None)
                self._dirty.add(f"fault/{key}")
            targets = self._agent_targets(obs.agent)
            for alert_id in sorted(self._by_agent.get(obs.agent, ())):
                alert = self.alerts[alert_id]
                targets.append((self._rule[alert.rule], ref_of(alert)))
        else:
            self._see(obs, ts)
            targets = self._agent_targets(obs.agent)
            if isinstance(obs, FaultObs) and obs.fault in TRACKED_FAULTS:
                key = self._fault(obs, ts)
                targets += [(r, key) for r in self._eval_rules if KIND[r.kind].watches == "beam"]
        return self._evaluate_targets(targets, now)

    def _agent_targets(self, agent: str) -> list[tuple[Rule, str]]:
        return [(r, agent) for r in self._eval_rules if KIND[r.kind].watches == "agent"]

    def tick(self, now: int) -> list[Effect]:
        """Time passing: `for` durations, silent agents, closing hours, grouping, repeats."""
        return self.evaluate(now)

    # --- evaluation ----------------------------------------------------------------------

    def evaluate(self, now: int) -> list[Effect]:
        """Everything (the tick): every rule over its whole scope."""
        out: list[Effect] = []
        out += self._expire_silences(now)
        self.refused = {}
        by_rule: dict[str, list[str]] = {}
        for alert in self.alerts.values():
            by_rule.setdefault(alert.rule, []).append(alert.id)
        for rule in self._eval_rules:
            seen: set[str] = set()
            for ref in refs(self, rule, self._zones_of[rule.name]):
                alert_id, cond = target(self, rule, ref, self._zones_of[rule.name], now)
                if cond is None:
                    continue
                seen.add(alert_id)
                out += self._step(rule, alert_id, cond, now)
            for alert_id in by_rule.get(rule.name, ()):
                gone = self.alerts.get(alert_id)
                if gone is not None and alert_id not in seen:  # gone from the scope
                    cond = Condition(alert_id, gone.scope, None, now)
                    out += self._step(rule, alert_id, cond, now)
        out += self._repeats(now)
        out += self._flush(now)
        self._touched = set()
        return out

    def _evaluate_targets(self, targets: list[tuple[Rule, str]], now: int) -> list[Effect]:
        """Only these (rule, key) pairs; then the limit alert of an agent that hit its
        limit, and the notifications they made due."""
        self._touched = set()
        out: list[Effect] = []
        refused_before = {a: len(ids) for a, ids in self.refused.items()}
        limit_done: set[str] = set()
        done: set[tuple[str, str]] = set()
        for rule, ref in targets:
            if (rule.name, ref) in done:  # e.g. a forgotten agent's offline alert
                continue
            done.add((rule.name, ref))
            if rule is self.limit_rule:
                limit_done.add(ref)
            out += self._step_ref(rule, ref, now)
        for agent, ids in list(self.refused.items()):
            if len(ids) != refused_before.get(agent, 0) and agent not in limit_done:
                out += self._step_ref(self.limit_rule, agent, now)
        out += self._flush(now, only=self._touched)
        self._touched = set()
        return out

    def _step_ref(self, rule: Rule, ref: str, now: int) -> list[Effect]:
        alert_id, cond = target(self, rule, ref, self._zones_of[rule.name], now)
        if cond is None:
            alert = self.alerts.get(alert_id)
            if alert is None:
                return []
            cond = Condition(alert_id, alert.scope, None, now)
        return self._step(rule, alert_id, cond, now)

    def _step(self, rule: Rule, alert_id: str, cond: Condition, now: int) -> list[Effect]:
        alert = self.alerts.get(alert_id)
        value = cond.value
        if alert is None:
            if value is None or value < rule.fire_at:
                return []
            agent = cond.scope.get("agent")
            if (
                agent is not None
                and rule.kind != LIMIT_KIND
                and self.open_alerts(agent) >= self.max_per_agent
            ):
                self.refused.setdefault(agent, set()).add(alert_id)
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
            alert.summary = summarize(self, rule, alert)
            self._add(alert)
            out: list[Effect] = [self._transition("pending", alert, now)]
            return out + self._maybe_fire(rule, alert, now)
        bad = value is not None and value > rule.clear_at
        if value is not None and value != alert.value:
            alert.value = value
            # pipeline_silent's summary says since when: the incident's, not the recovery's
            if bad or rule.kind != PIPELINE_KIND:
                alert.summary = summarize(self, rule, alert)
            self._changed(alert)
        if alert.state == "pending":
            if not bad:
                self._drop(alert)
                return [self._transition("cancelled", alert, now)]
            return self._maybe_fire(rule, alert, now)
        # firing
        if bad:
            if alert.clear_since is not None:
                alert.clear_since = None
                self._changed(alert)
            return self._update_due(alert, now)
        if alert.clear_since is None:
            alert.clear_since = now
            self._changed(alert)
        if now - alert.clear_since < rule.clear_for * 1000:
            return self._update_due(alert, now)
        return self._resolve(rule, alert, now)

    def _update_due(self, alert: AlertRec, now: int) -> list[Effect]:
        """Publish a changed summary of a firing alert, at most every UPDATE_EVERY_MS (the
        tick sends the latest one later); receivers are not told (no message per change)."""
        if alert.summary == alert.shown or now - alert.shown_at < UPDATE_EVERY_MS:
            return []
        return [self._transition("updated", alert, now)]

    def _maybe_fire(self, rule: Rule, alert: AlertRec, now: int) -> list[Effect]:
        if now - alert.since < rule.for_s * 1000 or not self._in_active_hours(rule, alert, now):
            return []
        alert.state = "firing"
        alert.started = now
        alert.summary = summarize(self, rule, alert)
        self._changed(alert)
        for receiver in self._receivers(alert):
            group = self._owe(
                receiver, rule.name, "firing", now + round(self.config.group_wait * 1000)
            )
            group["ids"].append(alert.id)
        return [self._transition("firing", alert, now)]

    def _resolve(self, rule: Rule, alert: AlertRec, now: int) -> list[Effect]:
        self._drop(alert)
        if rule.kind != PIPELINE_KIND:
            alert.summary = summarize(self, rule, alert)
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
                self._owed_changed(key)
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

    # --- API actions ---------------------------------------------------------------------

    def add_silence(
        self, matchers: Mapping[str, str], until: int, by: str, reason: str, now: int
    ) -> tuple[Silence, list[Effect]]:
        check_silence(matchers, until, now, sum(s.until > now for s in self.silences.values()))
        self._silence_seq += 1
        silence = Silence(f"s{self._silence_seq}", dict(matchers), until, by, reason, now)
        self.silences[silence.id] = silence
        self._dirty |= {f"silence/{silence.id}", "meta"}
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
        self._dirty.add(f"silence/{silence_id}")
        return self.evaluate(now)
