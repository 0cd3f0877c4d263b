"""Bringing a saved alert state back after a restart, item by item: one bad value (an
end time no clock can show, a field of the wrong type, a fact about a door that is no
longer in the site file) costs that item, never the rest or the API, and every repair
is said in `repairs` for the service to log."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from footfall_contract.timefmt import format_ts

from .state import (
    MATCHER_KEYS,
    MAX_SILENCE_S,
    TRACKED_FAULTS,
    AlertBook,
    AlertRec,
    Silence,
)


class Restoring(AlertBook):
    """The engine's restore step (its rules and the site's fault sources set first)."""

    _sources: frozenset[str]

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
                self.heard = max(int(value[1]), self.heard or int(value[1]))
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
