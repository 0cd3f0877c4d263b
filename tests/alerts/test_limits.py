"""The engine's bounds (issue 11, items 10 and 11): an event costs the same however many
alerts there are, an agent has at most `max_alerts_per_agent` open alerts and then one
alert saying so, the state saved by parts equals the whole state, and a bad saved value
costs only itself."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall_alerts.engine import (
    MAX_SILENCE_S,
    Engine,
    FaultObs,
    ForgetObs,
    HealthObs,
    Observation,
    StatusObs,
    ZoneObs,
)
from footfall_alerts.rules import RulesError, parse_rules
from footfall_contract.timefmt import format_ts
from tests.alerts.scenario import RECEIVERS, Scenario
from tests.support.collector import small_site

SOURCES = sorted(small_site().fault_sources())
"""11 in the test site: five doors' outer and inner beams, one presence sensor."""


def beams(limit: int | None = None) -> str:
    cap = "" if limit is None else f"max_alerts_per_agent: {limit}\n"
    return (
        RECEIVERS
        + cap
        + """\
group_wait: 0s
routes:
  - {receivers: [mail]}
rules:
  - {name: beam, kind: beam_blocked, clear_for: 1m}
  - {name: offline, kind: agent_offline, for: 1m, active_hours: always}
"""
    )


def block(s: Scenario, agent: str, sources: list[str], active: bool = True) -> None:
    for source in sources:
        s.observe(FaultObs(agent, source, "beam_blocked", active, s.now))


def test_an_agent_past_its_limit_gets_one_alert_saying_so_and_others_are_unaffected() -> None:
    s = Scenario(beams(limit=3))
    block(s, "pi-1", SOURCES[:5])  # five real beams blocked: only three may be alerts
    block(s, "pi-2", SOURCES[:2])
    s.advance(1)
    ids = s.alert_states()
    pi1 = sorted(a for a in ids if a.startswith("beam-pi-1-"))
    assert len(pi1) == 3 and s.engine.open_alerts("pi-1") == 3
    assert len([a for a in ids if a.startswith("beam-pi-2-")]) == 2
    assert ids["too-many-alerts-pi-1"] == "firing"
    limit = next(t for t in s.transitions("firing") if t.alert["id"] == "too-many-alerts-pi-1")
    assert limit.alert["kind"] == "too_many_alerts" and limit.alert["scope"] == {"agent": "pi-1"}
    assert limit.alert["summary"] == (  # as it fired, at the first beam it could not raise
        "Too many alerts from sensor pi-1: 3 open (max_alerts_per_agent), 1 more not raised"
    )
    assert s.engine.alerts["too-many-alerts-pi-1"].value == 2.0  # both, once the tick counted
    assert ("firing", ["too-many-alerts-pi-1"]) in s.sent("mail")
    assert "too-many-alerts-pi-2" not in ids

    # The three raised clear: after clear_for, room again, and the two still blocked are
    # raised at the next tick; nothing is refused any more, so the limit alert resolves
    # after its own clear_for (5 min).
    block(s, "pi-1", pi1_sources(pi1), active=False)
    s.advance(61)
    ids = s.alert_states()
    assert sorted(a for a in ids if a.startswith("beam-pi-1-")) == sorted(
        f"beam-pi-1-{src.replace('/', '-')}"
        for src in SOURCES[:5]
        if f"beam-pi-1-{src.replace('/', '-')}" not in pi1
    )
    s.advance(301)
    assert "too-many-alerts-pi-1" not in s.alert_states()
    assert ("resolved", ["too-many-alerts-pi-1"]) in s.sent("mail")


def pi1_sources(alert_ids: list[str]) -> list[str]:
    by_id = {f"beam-pi-1-{src.replace('/', '-')}": src for src in SOURCES}
    return [by_id[a] for a in alert_ids]


def test_the_default_limit_is_100_and_a_rules_file_may_set_the_limit_rule() -> None:
    site = small_site()
    assert parse_rules(RECEIVERS, site).max_alerts_per_agent == 100
    own = RECEIVERS + (
        "rules:\n  - {name: noisy-pi, kind: too_many_alerts, severity: critical, clear_for: 0s}\n"
    )
    engine = Engine(site, parse_rules(own, site))
    assert engine.limit_rule.name == "noisy-pi" and engine.limit_rule.severity == "critical"
    assert [r.name for r in engine.rules] == ["noisy-pi"]
    assert [r.name for r in Engine(site, parse_rules(RECEIVERS, site)).all_rules][-1] == (
        "too-many-alerts"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("max_alerts_per_agent: 0\n", "max_alerts_per_agent"),
        (
            "rules:\n  - {name: too-many-alerts, kind: beam_blocked}\n",
            "'too-many-alerts' is kept for the too_many_alerts rule",
        ),
        (
            "rules:\n  - {name: a, kind: too_many_alerts}\n  - {name: b, kind: too_many_alerts}\n",
            "only one rule may be of kind too_many_alerts",
        ),
    ],
)
def test_bad_limit_settings_are_refused(text: str, reason: str) -> None:
    with pytest.raises(RulesError, match=reason):
        parse_rules(RECEIVERS + text, small_site(), "t.alerts.yaml")


def crowd(agents: int) -> Scenario:
    """`agents` agents, every real beam of the site blocked on each: 11 alerts per agent."""
    s = Scenario(beams())
    for i in range(agents):
        block(s, f"pi-{i}", SOURCES)
    s.advance(1)
    return s


def test_an_event_costs_the_same_with_22_alerts_or_2200(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted, not timed: how many (rule, key) steps three observations make, and how
    many state parts they leave to save."""
    counts: list[tuple[int, list[str]]] = []
    for agents in (2, 200):
        s = crowd(agents)
        assert len(s.engine.alerts) == agents * 11
        steps = [0]
        real = s.engine._step

        def counting(*args: Any, real: Any = real, steps: list[int] = steps) -> Any:
            steps[0] += 1
            return real(*args)

        monkeypatch.setattr(s.engine, "_step", counting)
        s.engine.take_changes()
        s.observe(FaultObs("pi-1", "kela-door/outer", "beam_blocked", False, s.now))
        s.observe(HealthObs("pi-1", 3, s.now))
        s.observe(ZoneObs("kela", 12, s.now))
        counts.append((steps[0], sorted(s.engine.take_changes())))
    assert counts[0] == counts[1]
    steps_made, changed = counts[0]
    assert steps_made == 3 + 2  # the fault: beam, offline, limit; the health: offline, limit
    assert changed == [
        "agent/pi-1",
        "alert/beam-pi-1-kela-door-outer",
        "fault/pi-1|kela-door/outer|beam_blocked",
        "zone/kela",
    ]


@pytest.mark.parametrize("agents", [200])
def test_forgetting_an_agent_touches_only_its_own_alerts(agents: int) -> None:
    s = crowd(agents)
    s.engine.take_changes()
    s.observe(ForgetObs("pi-7", s.now))
    s.advance(61, step_s=61)
    assert not [a for a in s.engine.alerts if "-pi-7-" in a]
    assert len(s.engine.alerts) == (agents - 1) * 11
    changed = s.engine.take_changes()
    assert all("pi-7" in k or k.startswith("owed/") for k in changed), sorted(changed)


# --- saving by parts ---------------------------------------------------------------------

SAVE = (
    RECEIVERS
    + """\
group_wait: 20s
max_alerts_per_agent: 4
routes:
  - {receivers: [mail], quiet_hours: "10:05-10:10"}
  - {receivers: [chat], severities: [warning]}
rules:
  - {name: full, kind: over_capacity, for: 10s, repeat: 1m}
  - {name: beam, kind: beam_blocked, clear_for: 30s, repeat: 2m}
  - {name: flap, kind: beam_flapping, fire_at: 2, window: 2m}
  - {name: offline, kind: agent_offline, for: 20s, silent_after: 1m, active_hours: always}
"""
)

AGENTS = ["pi-1", "pi-2"]
step = st.one_of(
    st.tuples(st.just("zone"), st.sampled_from(["kela", "library"]), st.integers(0, 300)),
    st.tuples(st.just("fault"), st.sampled_from(AGENTS), st.sampled_from(SOURCES), st.booleans()),
    st.tuples(st.just("status"), st.sampled_from(AGENTS), st.booleans()),
    st.tuples(st.just("forget"), st.sampled_from(AGENTS)),
    st.tuples(st.just("wait"), st.integers(1, 90)),
    st.tuples(st.just("silence"), st.sampled_from(["kela", "library"]), st.integers(1, 600)),
    st.tuples(st.just("unsilence")),
    st.tuples(st.just("ack")),
    st.tuples(st.just("restart")),
)


def apply(s: Scenario, op: tuple[Any, ...]) -> None:
    kind = op[0]
    obs: Observation | None = None
    if kind == "zone":
        obs = ZoneObs(op[1], op[2], s.now)
    elif kind == "fault":
        obs = FaultObs(op[1], op[2], "beam_blocked", op[3], s.now)
    elif kind == "status":
        obs = StatusObs(op[1], op[2], s.now)
    elif kind == "forget":
        obs = ForgetObs(op[1], s.now)
    elif kind == "wait":
        s.advance(op[1], step_s=7)
    elif kind == "silence":
        s.effects += s.engine.add_silence({"zone": op[1]}, s.now + op[2] * 1000, "a", "b", s.now)[1]
    elif kind == "unsilence" and s.engine.silences:
        s.effects += s.engine.remove_silence(sorted(s.engine.silences)[0], s.now)
    elif kind == "ack":
        firing = [a.id for a in s.engine.alerts.values() if a.state == "firing" and not a.ack_by]
        if firing:
            s.effects += s.engine.acknowledge(firing[0], "pekka", "on it", s.now)
    if obs is not None:
        s.observe(obs)


@settings(max_examples=150, deadline=None)
@given(st.lists(step, min_size=1, max_size=60))
def test_the_parts_saved_after_each_step_are_the_whole_state(ops: list[tuple[Any, ...]]) -> None:
    """What `take_changes` hands out, applied to what was saved, is always exactly the
    state (nothing changed without being saved), and restores to the same engine."""
    s = Scenario(SAVE)
    saved: dict[str, Any] = {}
    for op in ops:
        if op[0] == "restart":  # as the service: from the saved parts only
            s.engine = Engine(s.site, s.rules, parts=json.loads(json.dumps(saved)))
            assert s.engine.repairs == []
        else:
            apply(s, op)
        for key, value in json.loads(json.dumps(s.engine.take_changes())).items():
            if value is None:
                saved.pop(key, None)
            else:
                saved[key] = value
        assert saved == s.engine.parts()
    again = Engine(s.site, s.rules, parts=saved)
    assert again.snapshot() == s.engine.snapshot()
    assert again.take_changes() == {}


# --- a bad saved value costs only itself ----------------------------------------------------


def test_bad_saved_values_are_dropped_or_repaired_and_said() -> None:
    s = Scenario(beams())
    now = s.now
    block(s, "pi-1", ["kela-door/outer"])
    s.effects += s.engine.add_silence({"agent": "pi-1"}, now + 3600_000, "maija", "x", now)[1]
    s.advance(1)
    parts = json.loads(json.dumps(s.engine.parts()))
    day = 86_400_000
    parts["silence/s7"] = {
        "id": "s7",
        "matchers": {"zone": "kela"},
        "until": now + 3_000_000 * day,  # year 10240: no clock can show it
        "by": "old",
        "reason": "forever",
        "created": now,
    }
    parts["silence/s8"] = {**parts["silence/s7"], "id": "s8", "until": now + 400 * day}
    parts["silence/s9"] = "{not json"
    parts["alert/beam-pi-1-kela-door-inner"] = {"id": "x"}
    parts["fault/pi-1|made-up/outer|beam_blocked"] = {
        "agent": "pi-1",
        "source": "made-up/outer",
        "fault": "beam_blocked",
        "active": True,
        "since": now,
        "activations": [now],
    }
    parts["zone/kela"] = [3, 10**20]
    engine = Engine(s.site, s.rules, parts=parts)
    text = "\n".join(engine.repairs)
    assert "dropped silence s7" in text and "out of range" in text
    assert "silence s8" in text and "365 days" in text
    assert "dropped silence s9" in text
    assert "dropped alert 'beam-pi-1-kela-door-inner'" in text
    assert "dropped fault fact 'pi-1|made-up/outer|beam_blocked'" in text
    assert "dropped zone fact 'kela'" in text
    assert len(engine.repairs) == 6
    assert sorted(engine.silences) == ["s1", "s8"]
    assert engine.silences["s8"].until == now + MAX_SILENCE_S * 1000
    assert engine._silence_seq == 8  # a new silence never reuses a kept id
    assert list(engine.alerts) == ["beam-pi-1-kela-door-outer"]
    # The repairs are what is saved next: the bad parts go, s8 is rewritten.
    changed = engine.take_changes()
    assert {k for k, v in changed.items() if v is None} == {
        "silence/s7",
        "silence/s9",
        "alert/beam-pi-1-kela-door-inner",
        "fault/pi-1|made-up/outer|beam_blocked",
        "zone/kela",
    }
    assert changed["silence/s8"]["until"] == now + MAX_SILENCE_S * 1000
    # And everything that shows times works.
    assert [a["id"] for a in engine.active(now)] == ["beam-pi-1-kela-door-outer"]
    assert format_ts(engine.silences["s8"].until).startswith(str(2026 + 1))


def test_a_silence_longer_than_the_maximum_is_refused_by_the_engine() -> None:
    s = Scenario(beams())
    with pytest.raises(ValueError, match="at most 365 days"):
        s.engine.add_silence({"zone": "kela"}, s.now + MAX_SILENCE_S * 1000 + 1, "a", "b", s.now)
    assert s.engine.silences == {}
    assert not [k for k in s.engine.take_changes() if k.startswith("silence/")]
    s.engine.add_silence({"zone": "kela"}, s.now + MAX_SILENCE_S * 1000, "a", "b", s.now)
    assert list(s.engine.silences) == ["s1"]
