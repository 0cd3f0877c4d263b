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

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from pydantic import TypeAdapter, ValidationError

from footfall_contract.site import Site
from footfall_contract.timefmt import format_ts

from .localtime import local_time
from .rules import (
    LIMIT_KIND,
    PIPELINE_KIND,
    ZONE_KINDS,
    Rule,
    RulesFile,
    in_span,
    limit_rule,
    pipeline_rule,
)

TransitionState = Literal[
    "pending",
    "firing",
    "resolved",
    "cancelled",
    "acknowledged",
    "silenced",
    "unsilenced",
    "updated",
]
Event = Literal["firing", "resolved", "repeat"]
PUBLISHED: Final = frozenset(
    {"firing", "resolved", "acknowledged", "silenced", "unsilenced", "updated"}
)
"""Transitions that change the retained MQTT alert (pending and cancelled do not)."""
RECORDED: Final = frozenset(
    {"pending", "firing", "resolved", "cancelled", "acknowledged", "silenced", "unsilenced"}
)
"""Transitions written to InfluxDB (`updated`, a new summary, is not a state change)."""
UPDATE_EVERY_MS: Final = 10_000
"""A firing alert whose summary changed is published again at most this often."""
PIPELINE_KEY: Final = "collector"
"""The scope key of pipeline_silent alerts (one per rule and site): `pipeline-silent-collector`."""

_MAX_ACTIVATIONS: Final = 200
MAX_SILENCE_S: Final = 365 * 86_400
"""The longest silence (docs/alerts.md): a longer one is refused, a longer one found in an
old state file is cut to this."""
MAX_SILENCES: Final = 1000
"""Active silences at most: each alert payload looks at every silence."""
TRACKED_FAULTS: Final = frozenset({"beam_blocked"})
"""The faults the rules read (beam_blocked and beam_flapping both count beam_blocked);
any other fault only says the agent is alive."""
MATCHER_KEYS: Final = ("alert", "rule", "kind", "zone", "agent", "door", "source")


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
    shown: str = ""
    """The summary last published on MQTT (the board's), to publish a changed one."""
    shown_at: int = 0


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
    def __init__(
        self,
        site: Site,
        rules: RulesFile,
        state: Mapping[str, Any] | None = None,
        parts: Mapping[str, Any] | None = None,
    ):
        """`state`: a `snapshot()` (or a state file of the version that saved one
        document); `parts`: what `take_changes()` handed out, as saved. Whatever of either
        cannot be used is dropped or repaired, and said in `repairs`."""
        self.site = site
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
        self.watch_from: int | None = None
        """When the service started listening (`watch`); None: pipeline_silent raises
        nothing new (a replay, a benchmark)."""
        self._heard: int | None = None
        """The newest zone occupancy time: the collector's heartbeat."""
        self._rule = {r.name: r for r in self._eval_rules}
        self._zones_of = {r.name: self._rule_zones(r) for r in self._eval_rules}
        self._sources = site.fault_sources()
        self._doors = frozenset(d.id for d in site.doors)
        self.facts = _Facts()
        self.alerts: dict[str, AlertRec] = {}
        self.silences: dict[str, Silence] = {}
        self.owed: dict[str, dict[str, Any]] = {}
        """receiver\\trule\\tevent -> {"due": ms, "ids": [firing ids], "resolved": [payloads]}"""
        self._silence_seq = 0
        # Indexes by scope key (rebuilt from the state, never saved).
        self._by_agent: dict[str, set[str]] = {}
        """agent -> ids of its open alerts, the limit alert not counted."""
        self._faults_of: dict[str, set[str]] = {}
        """agent -> keys of its fault facts."""
        self._refused: dict[str, set[str]] = {}
        """agent -> alerts not raised since the last tick because of the limit."""
        self._touched: set[str] = set()
        """owed keys changed during a scoped evaluation: the only ones it flushes."""
        self._dirty: set[str] = set()
        self.repairs: list[str] = []
        """What could not be restored as saved (the service logs each line)."""
        loaded: Mapping[str, Any] = {}
        if parts:
            loaded = parts
            state = _join(parts)
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

    def _rule_zones(self, rule: Rule) -> frozenset[str]:
        if rule.kind not in ZONE_KINDS:
            return frozenset()
        if rule.zones:
            return frozenset(rule.zones)
        if rule.kind == "over_capacity":
            return frozenset(z.id for z in self.site.zones if z.capacity)
        return frozenset(z.id for z in self.site.zones)

    # --- persistence -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to carry on after a restart, as one JSON-able document."""
        return {
            "version": 1,
            "facts": asdict(self.facts),
            "alerts": {k: asdict(a) for k, a in self.alerts.items()},
            "silences": {k: asdict(s) for k, s in self.silences.items()},
            "owed": self.owed,
            "silence_seq": self._silence_seq,
        }

    def parts(self) -> dict[str, Any]:
        """The whole state as parts by scope key (what `take_changes` hands out)."""
        f = self.facts
        out: dict[str, Any] = {"meta": {"version": 1, "silence_seq": self._silence_seq}}
        for prefix, table in (
            ("zone", f.zones),
            ("agent", f.agents),
            ("fault", f.faults),
            ("drift", f.drift),
            ("owed", self.owed),
        ):
            for key, value in table.items():
                out[f"{prefix}/{key}"] = value
        for key, alert in self.alerts.items():
            out[f"alert/{key}"] = asdict(alert)
        for key, silence in self.silences.items():
            out[f"silence/{key}"] = asdict(silence)
        copied: dict[str, Any] = json_copy(out)
        return copied

    def take_changes(self) -> dict[str, Any]:
        """The parts changed since the last call: key -> new value, or None if it is gone.
        Only what changed is looked at, so this costs what the last messages changed."""
        out = {key: self._part(key) for key in sorted(self._dirty)}
        self._dirty.clear()
        copied: dict[str, Any] = json_copy(out)
        return copied

    def _part(self, key: str) -> Any:
        kind, _, name = key.partition("/")
        f = self.facts
        if kind == "meta":
            return {"version": 1, "silence_seq": self._silence_seq}
        if kind == "alert":
            alert = self.alerts.get(name)
            return None if alert is None else asdict(alert)
        if kind == "silence":
            silence = self.silences.get(name)
            return None if silence is None else asdict(silence)
        tables: dict[str, dict[str, Any]] = {
            "zone": f.zones,
            "agent": f.agents,
            "fault": f.faults,
            "drift": f.drift,
            "owed": self.owed,
        }
        return tables.get(kind, {}).get(name)

    def _restore(self, state: Mapping[str, Any]) -> None:
        """Item by item: one bad value (an end time no clock can show, a field of the
        wrong type) costs that item, never the rest or the API."""
        if not isinstance(state, Mapping):
            self.repairs.append("the saved state is not a JSON object: starting empty")
            return
        facts: Mapping[str, Any] = state["facts"] if isinstance(state.get("facts"), Mapping) else {}
        site_zones = {z.id for z in self.site.zones}
        for zone, value in _items(facts.get("zones")):
            if zone in site_zones and _pair_ok(value):
                self.facts.zones[zone] = [int(value[0]), int(value[1])]
                self._heard = max(int(value[1]), self._heard or int(value[1]))
            else:
                self.repairs.append(f"dropped zone fact {zone!r}: {value!r:.100}")
        for zone, value in _items(facts.get("drift")):
            if zone in site_zones and _count_ok(value):
                self.facts.drift[zone] = int(value)
            else:
                self.repairs.append(f"dropped drift fact {zone!r}: {value!r:.100}")
        for agent, value in _items(facts.get("agents")):
            if _agent_ok(value):
                self.facts.agents[agent] = dict(value)
            else:
                self.repairs.append(f"dropped agent fact {agent!r}: {value!r:.100}")
        for key, value in _items(facts.get("faults")):
            if self._fault_ok(key, value):
                self.facts.faults[key] = dict(value)
                self._faults_of.setdefault(value["agent"], set()).add(key)
            else:
                self.repairs.append(f"dropped fault fact {key!r}: {value!r:.100}")
        for key, value in _items(state.get("alerts")):
            try:
                alert = _ALERT.validate_python(value)
            except ValidationError as exc:
                self.repairs.append(f"dropped alert {key!r}: {_first_error(exc)}")
                continue
            rule = self._rule.get(alert.rule)
            if rule is None:  # the rules file changed: dropped, not resolved
                continue
            if alert.id != key or alert.kind != rule.kind or not _alert_times_ok(alert):
                self.repairs.append(f"dropped alert {key!r}: bad id, kind or time")
                continue
            if isinstance(value, Mapping) and "shown" not in value:  # saved before updates
                alert.shown, alert.shown_at = alert.summary, alert.started or alert.since
            self._add(alert)
        for key, value in _items(state.get("silences")):
            silence = self._restore_silence(key, value)
            if silence is not None:
                self.silences[key] = silence
        for key, value in _items(state.get("owed")):
            names = key.split("\t")
            if len(names) != 3 or names[1] not in self._rule:
                continue
            if names[2] in ("firing", "resolved", "repeat") and _group_ok(value):
                self.owed[key] = {
                    "due": value["due"],
                    "ids": list(value["ids"]),
                    "resolved": list(value["resolved"]),
                }
            else:
                self.repairs.append(f"dropped pending notification {key!r}: {value!r:.100}")
        seq = state.get("silence_seq", 0)
        if isinstance(state.get("meta"), Mapping):
            seq = state["meta"].get("silence_seq", seq)
        numbers = [int(k[1:]) for k in self.silences if re.fullmatch(r"s\d{1,9}", k)]
        self._silence_seq = max([seq if _count_ok(seq) else 0, *numbers])

    def _restore_silence(self, key: str, value: Any) -> Silence | None:
        try:
            silence = _SILENCE.validate_python(value)
        except ValidationError as exc:
            self.repairs.append(f"dropped silence {key}: {_first_error(exc)}")
            return None
        if silence.id != key or not silence.matchers or set(silence.matchers) - set(MATCHER_KEYS):
            self.repairs.append(f"dropped silence {key}: bad id or matchers {silence.matchers}")
            return None
        if not (_time_ok(silence.created) and _time_ok(silence.until)):
            self.repairs.append(
                f"dropped silence {key} (by {silence.by!r}, {silence.matchers}): its times "
                f"(created {silence.created}, until {silence.until} ms) are out of range"
            )
            return None
        longest = silence.created + MAX_SILENCE_S * 1000
        if silence.until > longest:
            self.repairs.append(
                f"silence {key} (by {silence.by!r}, {silence.matchers}) ended after the "
                f"longest silence ({MAX_SILENCE_S // 86_400} days): now ends {format_ts(longest)}"
            )
            silence.until = longest
        return silence

    def _fault_ok(self, key: str, value: Any) -> bool:
        return (
            isinstance(value, Mapping)
            and isinstance(value.get("agent"), str)
            and value.get("source") in self._sources
            and value.get("fault") in TRACKED_FAULTS
            and key == f"{value['agent']}|{value['source']}|{value['fault']}"
            and isinstance(value.get("active"), bool)
            and _time_ok(value.get("since"))
            and isinstance(value.get("activations"), list)
            and all(_time_ok(t) for t in value["activations"])
        )

    # --- the state, by key ------------------------------------------------------------------

    def _add(self, alert: AlertRec) -> None:
        self.alerts[alert.id] = alert
        agent = alert.scope.get("agent")
        if agent is not None and alert.kind != LIMIT_KIND:
            self._by_agent.setdefault(agent, set()).add(alert.id)
        self._dirty.add(f"alert/{alert.id}")

    def _drop(self, alert: AlertRec) -> None:
        del self.alerts[alert.id]
        agent = alert.scope.get("agent")
        ids = self._by_agent.get(agent) if agent is not None else None
        if ids is not None:
            ids.discard(alert.id)
            if not ids:
                del self._by_agent[agent]  # type: ignore[arg-type]
        self._dirty.add(f"alert/{alert.id}")

    def _changed(self, alert: AlertRec) -> None:
        self._dirty.add(f"alert/{alert.id}")

    def _owed_changed(self, key: str) -> None:
        self._dirty.add(f"owed/{key}")
        self._touched.add(key)

    def open_alerts(self, agent: str) -> int:
        """Open alerts about `agent`, its too_many_alerts alert not counted."""
        return len(self._by_agent.get(agent, ()))

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
                self._heard = max(ts, self._heard or ts)
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
                targets.append((self._rule[alert.rule], self._ref_of(alert)))
        else:
            self._see(obs, ts)
            targets = self._agent_targets(obs.agent)
            if isinstance(obs, FaultObs) and obs.fault in TRACKED_FAULTS:
                key = self._fault(obs, ts)
                targets += [(r, key) for r in self._eval_rules if r.kind.startswith("beam_")]
        return self._evaluate_targets(targets, now)

    def _see(self, obs: StatusObs | HealthObs | FaultObs | SeenObs, ts: int) -> None:
        agent = self.facts.agents.setdefault(
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
        self._dirty.add(f"agent/{obs.agent}")

    def _fault(self, obs: FaultObs, ts: int) -> str:
        key = f"{obs.agent}|{obs.source}|{obs.fault}"
        rec = self.facts.faults.setdefault(
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
        self._faults_of.setdefault(obs.agent, set()).add(key)
        if obs.active and not rec["active"]:
            rec["activations"] = [*rec["activations"], ts][-_MAX_ACTIVATIONS:]
        if obs.active != rec["active"]:
            rec["since"] = ts
        rec["active"] = obs.active
        self._dirty.add(f"fault/{key}")
        return key

    def _agent_targets(self, agent: str) -> list[tuple[Rule, str]]:
        kinds = ("agent_offline", "agent_backlog", LIMIT_KIND)
        return [(r, agent) for r in self._eval_rules if r.kind in kinds]

    def _ref_of(self, alert: AlertRec) -> str:
        """The key `_target` takes for this alert's rule: its zone, agent or fault."""
        scope = alert.scope
        if alert.kind in ZONE_KINDS:
            return scope.get("zone", "")
        if alert.kind.startswith("beam_"):
            return f"{scope.get('agent')}|{scope.get('source')}|beam_blocked"
        if alert.kind == PIPELINE_KIND:
            return PIPELINE_KEY
        return scope.get("agent", "")

    def tick(self, now: int) -> list[Effect]:
        """Time passing: `for` durations, silent agents, closing hours, grouping, repeats."""
        return self.evaluate(now)

    # --- evaluation ----------------------------------------------------------------------

    def evaluate(self, now: int) -> list[Effect]:
        """Everything (the tick): every rule over its whole scope."""
        out: list[Effect] = []
        out += self._expire_silences(now)
        self._refused = {}
        by_rule: dict[str, list[str]] = {}
        for alert in self.alerts.values():
            by_rule.setdefault(alert.rule, []).append(alert.id)
        for rule in self._eval_rules:
            seen: set[str] = set()
            for ref in self._refs(rule):
                alert_id, cond = self._target(rule, ref, now)
                if cond is None:
                    continue
                seen.add(alert_id)
                out += self._step(rule, alert_id, cond, now)
            for alert_id in by_rule.get(rule.name, ()):
                gone = self.alerts.get(alert_id)
                if gone is not None and alert_id not in seen:  # gone from the scope
                    cond = _Condition(alert_id, gone.scope, None, now)
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
        refused_before = {a: len(ids) for a, ids in self._refused.items()}
        limit_done: set[str] = set()
        done: set[tuple[str, str]] = set()
        for rule, ref in targets:
            if (rule.name, ref) in done:  # e.g. a forgotten agent's offline alert
                continue
            done.add((rule.name, ref))
            if rule is self.limit_rule:
                limit_done.add(ref)
            out += self._step_ref(rule, ref, now)
        for agent, ids in list(self._refused.items()):
            if len(ids) != refused_before.get(agent, 0) and agent not in limit_done:
                out += self._step_ref(self.limit_rule, agent, now)
        out += self._flush(now, only=self._touched)
        self._touched = set()
        return out

    def _step_ref(self, rule: Rule, ref: str, now: int) -> list[Effect]:
        alert_id, cond = self._target(rule, ref, now)
        if cond is None:
            alert = self.alerts.get(alert_id)
            if alert is None:
                return []
            cond = _Condition(alert_id, alert.scope, None, now)
        return self._step(rule, alert_id, cond, now)

    def _step(self, rule: Rule, alert_id: str, cond: _Condition, now: int) -> list[Effect]:
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
                self._refused.setdefault(agent, set()).add(alert_id)
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
            self._add(alert)
            out: list[Effect] = [self._transition("pending", alert, now)]
            return out + self._maybe_fire(rule, alert, now)
        bad = value is not None and value > rule.clear_at
        if value is not None and value != alert.value:
            alert.value = value
            # pipeline_silent's summary says since when: the incident's, not the recovery's
            if bad or rule.kind != PIPELINE_KIND:
                alert.summary = self._summary(rule, alert)
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
        alert.summary = self._summary(rule, alert)
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

    def _owe(self, receiver: str, rule: str, event: Event, due: int) -> dict[str, Any]:
        """The group a caller is about to add to (so it counts as changed)."""
        key = f"{receiver}\t{rule}\t{event}"
        group = self.owed.get(key)
        if group is None:
            group = self.owed[key] = {"due": due, "ids": [], "resolved": []}
        self._owed_changed(key)
        return group

    def _repeats(self, now: int) -> list[Effect]:
        for alert in self.alerts.values():
            rule = self._rule[alert.rule]
            if alert.state != "firing" or rule.repeat is None or alert.ack_by:
                continue
            for receiver, last in alert.notified.items():
                if now - last >= rule.repeat * 1000:
                    key = f"{receiver}\t{rule.name}\trepeat"
                    if alert.id not in self.owed.get(key, {}).get("ids", ()):
                        self._owe(receiver, rule.name, "repeat", now)["ids"].append(alert.id)
        return []

    def _flush(self, now: int, only: set[str] | None = None) -> list[Effect]:
        """Send the groups that are due (`only`: of these keys)."""
        out: list[Effect] = []
        keys = self.owed if only is None else [k for k in only if k in self.owed]
        for key in sorted(keys, key=lambda k: (self.owed[k]["due"], k)):
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
                self._changed(alert)
                send.append(self._payload(alert, "firing", now))
            keep_resolved = []
            for payload in group["resolved"]:
                if self._quiet_scope(receiver, payload, now):
                    keep_resolved.append(payload)
                else:
                    send.append(payload)
            if keep_ids or keep_resolved:
                if keep_ids != group["ids"] or keep_resolved != group["resolved"]:
                    group["ids"], group["resolved"] = keep_ids, keep_resolved
                    self._dirty.add(f"owed/{key}")
            else:
                del self.owed[key]
                self._dirty.add(f"owed/{key}")
            if send:
                out.append(Notification(receiver, rule.name, event, tuple(send), now))  # type: ignore[arg-type]
        return out

    # --- conditions ----------------------------------------------------------------------

    def _refs(self, rule: Rule) -> list[str]:
        """Every key in the rule's scope now (the tick's full evaluation)."""
        kind = rule.kind
        if kind in ZONE_KINDS:
            return sorted(self._zones_of[rule.name])
        if kind in ("agent_offline", "agent_backlog"):
            return list(rule.agents) if rule.agents is not None else sorted(self.facts.agents)
        if kind == LIMIT_KIND:
            return sorted(self._refused)
        if kind == PIPELINE_KIND:
            return [PIPELINE_KEY]
        return [
            key
            for key, rec in self.facts.faults.items()
            if rule.agents is None or rec["agent"] in rule.agents
        ]

    def _target(self, rule: Rule, ref: str, now: int) -> tuple[str, _Condition | None]:
        """The alert id for one key of a rule and its condition now; None: the key is
        not (or no longer) in the rule's scope."""
        f = self.facts
        kind = rule.kind
        if kind in ZONE_KINDS:
            alert_id = alert_id_for(rule.name, ref)
            if ref not in self._zones_of[rule.name]:
                return alert_id, None
            scope = {"zone": ref}
            if kind == "over_capacity":
                capacity = self.site.zone(ref).capacity
                fact = f.zones.get(ref)
                value = None if fact is None or not capacity else fact[0] / capacity
                return alert_id, _Condition(ref, scope, value, fact[1] if fact else now)
            if kind == "drift_after_close":
                fact = f.zones.get(ref)
                value = None
                if fact is not None and self._closed_for(ref, rule.grace, now):
                    value = float(fact[0])
                return alert_id, _Condition(ref, scope, value, now)
            clamped = f.drift.get(ref)
            return alert_id, _Condition(
                ref, scope, None if clamped is None else float(clamped), now
            )
        if kind == PIPELINE_KIND:
            return self._pipeline_target(rule, now)
        if kind.startswith("beam_"):
            agent, _, rest = ref.partition("|")
            source = rest.rpartition("|")[0]
            alert_id = alert_id_for(rule.name, f"{agent}-{source}")
            rec = f.faults.get(ref)
            if rec is None or (rule.agents is not None and agent not in rule.agents):
                return alert_id, None
            scope = {"agent": agent, "source": source}
            door = source.split("/", 1)[0]
            if "/" in source and door in self._doors:
                scope["door"] = door
                scope["zone"] = self.site.door(door).inside
            if kind == "beam_blocked":
                return alert_id, _Condition(ref, scope, 1.0 if rec["active"] else 0.0, rec["since"])
            recent = [t for t in rec["activations"] if t > now - rule.window * 1000]
            return alert_id, _Condition(
                ref, scope, float(len(recent)), recent[0] if recent else now
            )
        alert_id = alert_id_for(rule.name, ref)
        if rule.agents is not None and ref not in rule.agents:
            return alert_id, None
        scope = {"agent": ref}
        if kind == LIMIT_KIND:
            return alert_id, _Condition(ref, scope, float(len(self._refused.get(ref, ()))), now)
        a = f.agents.get(ref)
        if a is None:
            return alert_id, None
        if kind == "agent_backlog":
            return alert_id, _Condition(ref, scope, float(a["queue"]), a["seen"])
        silent_at = a["seen"] + round(rule.silent_after * 1000)
        if not a["online"]:
            return alert_id, _Condition(ref, scope, 1.0, a["changed"])
        if now >= silent_at:
            return alert_id, _Condition(ref, scope, 1.0, silent_at)
        return alert_id, _Condition(ref, scope, 0.0, now)

    def _pipeline_target(self, rule: Rule, now: int) -> tuple[str, _Condition | None]:
        """Seconds since the newest zone occupancy. A new alert waits for `watch` and then
        the rule's own threshold (the retained topics arrive in the first second); an
        open one counts from the last data, so a restart neither resolves nor repeats it."""
        alert_id = alert_id_for(rule.name, PIPELINE_KEY)
        alert = self.alerts.get(alert_id)
        fire_ms = round(rule.fire_at * 1000)
        if alert is None and (self.watch_from is None or now < self.watch_from + fire_ms):
            return alert_id, None
        if self._heard is not None:
            base = self._heard
        elif alert is not None:
            base = alert.since - fire_ms
        else:
            assert self.watch_from is not None
            base = self.watch_from
        onset = max(base, self.watch_from if self.watch_from is not None else base) + fire_ms
        value = float(max(0, now - base) // 1000)
        return alert_id, _Condition(PIPELINE_KEY, {}, value, onset)

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
                self._dirty.add(f"silence/{sid}")
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
        unknown = set(matchers) - set(MATCHER_KEYS)
        if unknown:
            raise ValueError(f"unknown matcher(s): {', '.join(sorted(unknown))}")
        if until <= now:
            raise ValueError("a silence must end in the future")
        if until - now > MAX_SILENCE_S * 1000:
            raise ValueError(f"a silence may last at most {MAX_SILENCE_S // 86_400} days")
        if sum(s.until > now for s in self.silences.values()) >= MAX_SILENCES:
            raise ValueError(
                f"there are already {MAX_SILENCES} active silences, the most there may be: "
                "remove some first"
            )
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

    def acknowledge(self, alert_id: str, by: str, reason: str, now: int) -> list[Effect]:
        alert = self.alerts.get(alert_id)
        if alert is None or alert.state != "firing":
            raise KeyError(f"no firing alert {alert_id!r}")
        alert.ack_by, alert.ack_reason = by, reason
        self._changed(alert)
        for key, group in list(self.owed.items()):
            if key.endswith("\trepeat") and alert_id in group["ids"]:
                group["ids"].remove(alert_id)
                self._dirty.add(f"owed/{key}")
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
        if state in PUBLISHED and shown == "firing" and alert.id in self.alerts:
            alert.shown, alert.shown_at = alert.summary, now
            self._changed(alert)
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
        if rule.kind == PIPELINE_KIND:
            return self._pipeline_summary(alert)
        agent = scope.get("agent", "?")
        if rule.kind == LIMIT_KIND:
            return (
                f"Too many alerts from sensor {agent}: {self.max_per_agent} open "
                f"(max_alerts_per_agent), {v:g} more not raised"
            )
        if rule.kind == "agent_offline":
            return f"Sensor {agent} offline"
        if rule.kind == "agent_backlog":
            return f"Sensor {agent}: {v:g} events waiting to be sent"
        where = scope.get("source", "?")
        if rule.kind == "beam_blocked":
            return f"Beam {where} blocked (sensor {agent})"
        return f"Beam {where} flapping: blocked {v:g} times within {rule.window / 60:g} min"

    def _pipeline_summary(self, alert: AlertRec) -> str:
        """Since when no data came: the incident's start, kept as it is once resolved."""
        tz = self.site.timezone
        if self._heard is None:
            started = self.watch_from if self.watch_from is not None else alert.since
            when = f"since footfall-alerts started at {local_time(started, tz)}"
        else:
            when = f"since {local_time(self._heard, tz)}"
        return (
            f"No zone occupancy from the collector {when}: the live board, the public "
            "displays and the zone alerts are not being updated (is footfall-collector "
            "running and connected to MQTT?)"
        )


_ALERT: Final = TypeAdapter(AlertRec)
_SILENCE: Final = TypeAdapter(Silence)
_FIRST_MS: Final = -62_135_596_800_000
"""0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the times `format_ts` can write."""
_LAST_MS: Final = 253_402_300_799_999


def _time_ok(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and _FIRST_MS <= value <= _LAST_MS


def _count_ok(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _pair_ok(value: object) -> bool:
    return (
        isinstance(value, list) and len(value) == 2 and _count_ok(value[0]) and _time_ok(value[1])
    )


def _agent_ok(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and set(value) == {"online", "changed", "seen", "queue"}
        and isinstance(value["online"], bool)
        and _time_ok(value["changed"])
        and _time_ok(value["seen"])
        and _count_ok(value["queue"])
    )


def _alert_times_ok(alert: AlertRec) -> bool:
    times = [alert.since, alert.started, alert.shown_at, *alert.notified.values()]
    if alert.clear_since is not None:
        times.append(alert.clear_since)
    return all(_time_ok(t) for t in times)


def _group_ok(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and _time_ok(value.get("due"))
        and isinstance(value.get("ids"), list)
        and all(isinstance(i, str) for i in value["ids"])
        and isinstance(value.get("resolved"), list)
        and all(isinstance(p, Mapping) for p in value["resolved"])
    )


def _items(table: object) -> list[tuple[str, Any]]:
    return [(str(k), v) for k, v in table.items()] if isinstance(table, Mapping) else []


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _join(parts: Mapping[str, Any]) -> dict[str, Any]:
    """Saved parts (`take_changes`) back into one `snapshot()` document."""
    facts: dict[str, dict[str, Any]] = {"zones": {}, "agents": {}, "faults": {}, "drift": {}}
    state: dict[str, Any] = {"version": 1, "facts": facts, "alerts": {}, "silences": {}}
    state["owed"] = {}
    tables = {
        "zone": facts["zones"],
        "agent": facts["agents"],
        "fault": facts["faults"],
        "drift": facts["drift"],
        "alert": state["alerts"],
        "silence": state["silences"],
        "owed": state["owed"],
    }
    for key, value in parts.items():
        kind, _, name = key.partition("/")
        if kind == "meta":
            state["meta"] = value
        elif kind in tables:
            tables[kind][name] = value
    return state


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-able data (lists, dicts, str, numbers, None)."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


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
