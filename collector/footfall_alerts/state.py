"""The alert engine's state and how it is saved: alerts, silences, the facts the rules
read, and the notifications owed, kept as parts by scope key (`alert/{id}`,
`fault/{key}`, `agent/{id}`, ...). `take_changes()` hands out only the parts that
changed, so saving after a message costs what the message changed, not the size of the
state; the whole state is one JSON document the service saves with its outbox."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from .kinds import LIMIT_KIND
from .observations import FaultObs, HealthObs, SeenObs, StatusObs

if TYPE_CHECKING:
    from footfall_contract.site import Site

    from .rules import Rule, RulesFile
    from .wording import Lang

MAX_SILENCE_S: Final = 365 * 86_400
"""The longest silence (docs/alerts.md): a longer one is refused, a longer one found in an
old state file is cut to this."""
MAX_SILENCES: Final = 1000
"""Active silences at most: each alert payload looks at every silence."""
TRACKED_FAULTS: Final = frozenset({"beam_blocked"})
"""The faults the rules read (beam_blocked and beam_flapping both count beam_blocked);
any other fault only says the agent is alive."""
MATCHER_KEYS: Final = ("alert", "rule", "kind", "zone", "agent", "door", "source")
_MAX_ACTIVATIONS: Final = 200


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


def check_silence(matchers: Mapping[str, str], until: int, now: int, active: int) -> None:
    """ValueError naming what is wrong with a silence asked for at `now`, while `active`
    silences are in force."""
    if not matchers:
        raise ValueError("a silence needs at least one matcher (alert, rule, kind, zone, agent)")
    unknown = set(matchers) - set(MATCHER_KEYS)
    if unknown:
        raise ValueError(f"unknown matcher(s): {', '.join(sorted(unknown))}")
    if until <= now:
        raise ValueError("a silence must end in the future")
    if until - now > MAX_SILENCE_S * 1000:
        raise ValueError(f"a silence may last at most {MAX_SILENCE_S // 86_400} days")
    if active >= MAX_SILENCES:
        raise ValueError(
            f"there are already {MAX_SILENCES} active silences, the most there may be: "
            "remove some first"
        )


@dataclass
class Condition:
    """One key of a rule now: the alert's scope, its value (None: no data) and since
    when the value has held."""

    key: str
    scope: dict[str, str]
    value: float | None
    onset: int


@dataclass
class Facts:
    zones: dict[str, list[int]] = field(default_factory=dict)
    """zone -> [count, ts]"""
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    """agent -> online, changed (ts of the last status), seen (ts), queue"""
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)
    """agent|source|fault -> agent, source, fault, active, since, activations [ts]"""
    drift: dict[str, int] = field(default_factory=dict)


class AlertBook:
    """The state by key, and which parts of it changed since they were last handed out."""

    # The rules in force, set by the engine before anything is evaluated or restored.
    config: RulesFile
    max_per_agent: int
    _rule: dict[str, Rule]

    def __init__(self, site: Site) -> None:
        self.site = site
        self.facts = Facts()
        self.alerts: dict[str, AlertRec] = {}
        self.silences: dict[str, Silence] = {}
        self.owed: dict[str, dict[str, Any]] = {}
        """receiver\\trule\\tevent -> {"due": ms, "ids": [firing ids], "resolved": [payloads]}"""
        self.watch_from: int | None = None
        """When the service started listening (`watch`); None: pipeline_silent raises
        nothing new (a replay, a benchmark)."""
        self.heard: int | None = None
        """The newest zone occupancy time: the collector's heartbeat."""
        self._silence_seq = 0
        # Indexes by scope key (rebuilt from the state, never saved).
        self._by_agent: dict[str, set[str]] = {}
        """agent -> ids of its open alerts, the limit alert not counted."""
        self._faults_of: dict[str, set[str]] = {}
        """agent -> keys of its fault facts."""
        self.refused: dict[str, set[str]] = {}
        """agent -> alerts not raised since the last tick because of the limit."""
        self._touched: set[str] = set()
        """owed keys changed during a scoped evaluation: the only ones it flushes."""
        self._dirty: set[str] = set()
        self.repairs: list[str] = []
        """What could not be restored as saved (the service logs each line)."""

    @property
    def lang(self) -> Lang:
        """The language of the texts it writes: the rules file's `language`."""
        return self.config.language

    # --- the state, by key ------------------------------------------------------------

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

    # --- facts -------------------------------------------------------------------------

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

    # --- saving ---------------------------------------------------------------------------

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

    def _tables(self) -> dict[str, dict[str, Any]]:
        f = self.facts
        return {
            "zone": f.zones,
            "agent": f.agents,
            "fault": f.faults,
            "drift": f.drift,
            "owed": self.owed,
        }

    def parts(self) -> dict[str, Any]:
        """The whole state as parts by scope key (what `take_changes` hands out)."""
        out: dict[str, Any] = {"meta": {"version": 1, "silence_seq": self._silence_seq}}
        for prefix, table in self._tables().items():
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
        if kind == "meta":
            return {"version": 1, "silence_seq": self._silence_seq}
        if kind == "alert":
            alert = self.alerts.get(name)
            return None if alert is None else asdict(alert)
        if kind == "silence":
            silence = self.silences.get(name)
            return None if silence is None else asdict(silence)
        return self._tables().get(kind, {}).get(name)


def join_parts(parts: Mapping[str, Any]) -> dict[str, Any]:
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
