"""The alert engine in virtual time: hysteresis, `for`, grouping, quiet hours, opening
hours, silences, acknowledgements, repeats, drift and beams, and a restart mid-incident."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall_alerts.engine import (
    DriftObs,
    Engine,
    FaultObs,
    ForgetObs,
    HealthObs,
    StatusObs,
    ZoneObs,
)
from footfall_alerts.rules import parse_rules
from tests.alerts.scenario import RECEIVERS, TUESDAY_10, Scenario, local_ms

CAPACITY = (
    RECEIVERS
    + """\
group_wait: 30s
routes:
  - {receivers: [mail]}
rules:
  - {name: library-full, kind: over_capacity, zones: [library], for: 1m, repeat: null}
"""
)


def test_flapping_around_capacity_gives_one_firing_and_one_resolved() -> None:
    s = Scenario(CAPACITY)
    # 10 minutes hovering around 250 (100%): 245..255 every 10 s.
    for i in range(60):
        s.observe(ZoneObs("library", 245 + (i * 7) % 11, s.now))
        s.advance(10)
    # Down to 80%: below the 90% clear level.
    s.observe(ZoneObs("library", 200, s.now))
    s.advance(120)
    assert s.sent("mail") == [
        ("firing", ["library-full-library"]),
        ("resolved", ["library-full-library"]),
    ]
    states = [t.state for t in s.transitions()]
    assert [t for t in states if t != "updated"] == ["pending", "firing", "resolved"]
    # The board's copy follows the count (at most every 10 s), the mail does not.
    updates = s.transitions("updated")
    assert updates and all(b.ts_ms - a.ts_ms >= 10_000 for a, b in pairwise(updates))
    firing, resolved = s.notifications("mail")
    assert firing.alerts[0]["summary"].startswith("Library over capacity")
    assert resolved.alerts[0]["state"] == "resolved"
    assert resolved.alerts[0]["started"] == firing.alerts[0]["started"]


def test_for_duration_is_respected() -> None:
    s = Scenario(CAPACITY)
    s.observe(ZoneObs("library", 251, s.now))
    s.advance(50)
    s.observe(ZoneObs("library", 220, s.now))  # 88%: cleared before the minute was up
    s.advance(120)
    assert s.notifications() == []
    assert [t.state for t in s.transitions()] == ["pending", "cancelled"]

    start = s.now
    s.observe(ZoneObs("library", 260, s.now))
    s.advance(59)
    assert s.transitions("firing") == []
    s.advance(1)
    (firing,) = s.transitions("firing")
    assert firing.ts_ms == start + 60_000
    s.advance(29)
    assert s.notifications() == []  # grouping wait (30 s) not over yet
    s.advance(1)
    assert s.sent("mail") == [("firing", ["library-full-library"])]


def test_hysteresis_holds_firing_between_clear_and_fire_levels() -> None:
    s = Scenario(CAPACITY)
    s.observe(ZoneObs("library", 260, s.now))
    s.advance(100)
    for count in (240, 230, 226, 249, 226):  # all above 90% (225)
        s.observe(ZoneObs("library", count, s.now))
        s.advance(30)
    assert s.transitions("resolved") == []
    s.observe(ZoneObs("library", 225, s.now))
    s.advance(40)
    assert s.sent("mail") == [
        ("firing", ["library-full-library"]),
        ("resolved", ["library-full-library"]),
    ]


OFFLINE = (
    RECEIVERS
    + """\
routes:
  - {receivers: [mail, chat], kinds: [agent_offline]}
rules:
  - {name: pi-offline, kind: agent_offline, for: 5m}
"""
)


def test_power_cut_taking_five_pis_offline_is_one_notification() -> None:
    s = Scenario(OFFLINE)
    agents = [f"pi-{i}" for i in range(1, 7)]
    for agent in agents:
        s.observe(StatusObs(agent, True, s.now))
    s.advance(60)
    for agent in agents[:5]:  # their Last Wills arrive within a few seconds
        s.observe(StatusObs(agent, False, s.now))
        s.advance(0.7, step_s=0.7)
    for _ in range(20):  # pi-6 keeps sending health
        s.observe(HealthObs("pi-6", 0, s.now))
        s.advance(30)
    ids = [f"pi-offline-{a}" for a in agents[:5]]
    assert s.sent("mail") == [("firing", ids)]
    assert s.sent("chat") == [("firing", ids)]
    for agent in agents[:5]:  # power back
        s.observe(StatusObs(agent, True, s.now))
        s.advance(1)
    for _ in range(6):  # health every 30 s; resolved after 1 min clear (clear_for)
        for agent in agents:
            s.observe(HealthObs(agent, 0, s.now))
        s.advance(30)
    assert s.sent("mail") == [("firing", ids), ("resolved", ids)]
    assert len(s.transitions("firing")) == 5 and len(s.transitions("resolved")) == 5


def test_silent_agent_counts_as_offline() -> None:
    s = Scenario(OFFLINE)
    s.observe(HealthObs("pi-1", 0, s.now))
    s.advance(120 + 300 + 40, step_s=5)  # silent_after 2 min, for 5 min, group 30 s
    assert s.sent("mail") == [("firing", ["pi-offline-pi-1"])]
    for _ in range(4):
        s.observe(HealthObs("pi-1", 0, s.now))
        s.advance(30)
    assert s.sent("mail")[-1] == ("resolved", ["pi-offline-pi-1"])


def test_pi_power_saving_at_night_pages_nobody_but_one_still_off_at_opening_does() -> None:
    s = Scenario(OFFLINE, start_ms=local_ms(2026, 11, 24, 20, 30))  # closed since 20:00
    s.observe(StatusObs("pi-1", False, s.now))
    s.observe(StatusObs("pi-2", False, s.now))
    s.advance(11 * 3600, step_s=60)  # 07:30 next morning
    s.observe(StatusObs("pi-1", True, s.now))  # wakes up before opening
    for _ in range(60):  # and sends its health every 30 s until 08:00
        s.advance(30, step_s=10)
        s.observe(HealthObs("pi-1", 0, s.now))
    s.advance(60)
    assert s.sent("mail") == [("firing", ["pi-offline-pi-2"])]
    (firing,) = s.transitions("firing")
    assert firing.ts_ms == local_ms(2026, 11, 25, 8, 0)  # at opening: it was off all night


QUIET = (
    RECEIVERS
    + """\
group_wait: 0s
routes:
  - {receivers: [mail], quiet_hours: "22:00-07:00"}
  - {receivers: [chat], severities: [critical]}
rules:
  - {name: beam, kind: beam_blocked, repeat: null}
"""
)


def test_quiet_hours_hold_notifications_until_morning_and_drop_what_resolved() -> None:
    s = Scenario(QUIET, start_ms=local_ms(2026, 11, 24, 23, 0))
    s.observe(FaultObs("pi-1", "library-main/outer", "beam_blocked", True, s.now))
    s.observe(FaultObs("pi-2", "kela-door/inner", "beam_blocked", True, s.now))
    s.advance(3600, step_s=10)
    s.observe(FaultObs("pi-2", "kela-door/inner", "beam_blocked", False, s.now))  # 00:00
    s.advance(7 * 3600 + 60, step_s=30)  # 07:01
    assert s.sent("mail") == [("firing", ["beam-pi-1-library-main-outer"])]
    assert s.notifications()[0].ts_ms == local_ms(2026, 11, 25, 7, 0)
    assert s.sent("chat") == []  # warnings only to mail
    alert = s.notifications()[0].alerts[0]
    assert alert["scope"] == {
        "agent": "pi-1",
        "source": "library-main/outer",
        "door": "library-main",
        "zone": "library",
    }
    # Both transitions of pi-2 are on record and on MQTT even though nobody was told.
    assert [t.alert["id"] for t in s.transitions("resolved")] == ["beam-pi-2-kela-door-inner"]


SILENCE = (
    RECEIVERS
    + """\
group_wait: 0s
routes:
  - {receivers: [mail]}
rules:
  - {name: full, kind: over_capacity, for: 0s, repeat: 1h}
"""
)


def test_silence_holds_notifications_until_it_ends() -> None:
    s = Scenario(SILENCE)
    silence, effects = s.engine.add_silence(
        {"zone": "kela"}, s.now + 3600_000, "maija", "event in the lobby", s.now
    )
    s.effects += effects
    s.observe(ZoneObs("kela", 45, s.now))  # 40 capacity
    s.observe(ZoneObs("library", 260, s.now))
    s.advance(30 * 60, step_s=10)
    assert s.sent("mail") == [("firing", ["full-library"])]
    kela = next(t for t in s.transitions("firing") if t.alert["id"] == "full-kela")
    assert kela.alert["silenced_until"] is not None  # the board shows it as silenced
    s.advance(31 * 60, step_s=10)  # the silence ends while kela is still full
    assert ("firing", ["full-kela"]) in s.sent("mail")
    assert any(t.state == "unsilenced" for t in s.transitions())
    assert silence.by == "maija"


def test_silence_then_resolve_sends_nothing() -> None:
    s = Scenario(SILENCE)
    s.engine.add_silence({"alert": "full-kela"}, s.now + 600_000, "o", "r", s.now)
    s.observe(ZoneObs("kela", 45, s.now))
    s.advance(60)
    s.observe(ZoneObs("kela", 10, s.now))
    s.advance(3600, step_s=10)
    assert s.notifications() == []


def test_repeat_until_acknowledged_and_resolved_still_sent() -> None:
    s = Scenario(SILENCE)
    s.observe(ZoneObs("library", 260, s.now))
    s.advance(2 * 3600 + 10, step_s=10)
    assert [e for e, _ in s.sent("mail")] == ["firing", "repeat", "repeat"]
    s.effects += s.engine.acknowledge("full-library", "pekka", "doors closed", s.now)
    s.advance(3 * 3600, step_s=30)
    assert [e for e, _ in s.sent("mail")] == ["firing", "repeat", "repeat"]
    (ack,) = s.transitions("acknowledged")
    assert ack.alert["acknowledged_by"] == "pekka" and ack.reason == "doors closed"
    s.observe(ZoneObs("library", 100, s.now))
    s.advance(10)
    assert [e for e, _ in s.sent("mail")] == ["firing", "repeat", "repeat", "resolved"]


def test_api_actions_refuse_bad_input() -> None:
    s = Scenario(SILENCE)
    with pytest.raises(KeyError, match="no firing alert"):
        s.engine.acknowledge("nope", "a", "b", s.now)
    with pytest.raises(ValueError, match="at least one matcher"):
        s.engine.add_silence({}, s.now + 1000, "a", "b", s.now)
    with pytest.raises(ValueError, match="in the future"):
        s.engine.add_silence({"zone": "kela"}, s.now - 1, "a", "b", s.now)
    with pytest.raises(ValueError, match="unknown matcher"):
        s.engine.add_silence({"colour": "red"}, s.now + 1000, "a", "b", s.now)


def test_restart_mid_incident_resends_nothing_and_still_resolves() -> None:
    s = Scenario(CAPACITY)
    s.observe(ZoneObs("library", 260, s.now))
    s.advance(120)
    assert s.sent("mail") == [("firing", ["library-full-library"])]
    s.restart()
    s.advance(600)
    assert s.sent("mail") == [("firing", ["library-full-library"])]
    s.observe(ZoneObs("library", 100, s.now))
    s.advance(60)
    assert [e for e, _ in s.sent("mail")] == ["firing", "resolved"]
    assert len(s.transitions("firing")) == 1


DRIFT = (
    RECEIVERS
    + """\
group_wait: 0s
routes:
  - {receivers: [mail]}
rules:
  - {name: drift, kind: drift_after_close, zones: [library], grace: 30m, repeat: null}
  - {name: clamped, kind: drift_clamped, fire_at: 10}
  - {name: flapping, kind: beam_flapping, window: 10m, fire_at: 4}
  - {name: backlog, kind: agent_backlog, fire_at: 500, clear_at: 50, for: 0s}
"""
)


def test_drift_after_closing_fires_after_grace_and_resolves_at_reset() -> None:
    s = Scenario(DRIFT, start_ms=local_ms(2026, 11, 24, 19, 0))
    s.observe(ZoneObs("library", 12, s.now))
    s.advance(3600 + 29 * 60, step_s=60)  # 20:29: closed, but within the grace time
    assert s.notifications() == []
    s.advance(120, step_s=60)
    assert s.sent("mail") == [("firing", ["drift-library"])]
    assert "12 people still counted after closing" in s.notifications()[0].alerts[0]["summary"]
    s.advance(6 * 3600 + 30 * 60, step_s=300)  # 03:00 reset: the collector publishes 0
    s.observe(ZoneObs("library", 0, s.now))
    s.advance(60)
    assert [e for e, _ in s.sent("mail")] == ["firing", "resolved"]


def test_clamped_flapping_and_backlog() -> None:
    s = Scenario(DRIFT)
    s.observe(DriftObs("kela", 4, s.now))
    s.observe(DriftObs("kela", 11, s.now))
    for _ in range(4):
        s.observe(FaultObs("pi-1", "kela-door/outer", "beam_blocked", True, s.now))
        s.advance(20)
        s.observe(FaultObs("pi-1", "kela-door/outer", "beam_blocked", False, s.now))
        s.advance(20)
    s.observe(HealthObs("pi-2", 800, s.now))
    s.advance(1)
    fired = {a["id"] for n in s.notifications() if n.event == "firing" for a in n.alerts}
    assert fired == {"clamped-kela", "flapping-pi-1-kela-door-outer", "backlog-pi-2"}
    s.observe(HealthObs("pi-2", 10, s.now))
    s.advance(11 * 60, step_s=10)  # the flapping window passes
    resolved = {a["id"] for n in s.notifications() if n.event == "resolved" for a in n.alerts}
    assert resolved == {"flapping-pi-1-kela-door-outer", "backlog-pi-2"}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=180, max_value=300), min_size=1, max_size=80),
    st.integers(min_value=1, max_value=90),
)
def test_notifications_alternate_firing_and_resolved(counts: list[int], step: int) -> None:
    """Whatever the occupancy does: per alert and receiver, firing and resolved alternate,
    starting with firing, and every firing sent is followed by a resolved once it clears."""
    s = Scenario(SILENCE.replace("repeat: 1h", "repeat: null"))
    for count in counts:
        s.observe(ZoneObs("library", count, s.now))
        s.advance(step, step_s=max(1, step // 3))
    s.observe(ZoneObs("library", 0, s.now))
    s.advance(5)
    events = [e for e, _ in s.sent("mail")]
    assert events == ["firing", "resolved"] * (len(events) // 2)
    assert not s.engine.alerts and not s.engine.owed


def test_state_survives_json() -> None:
    s = Scenario(SILENCE)
    s.observe(StatusObs("pi-1", False, s.now))
    s.observe(ZoneObs("library", 260, s.now))
    s.engine.add_silence({"zone": "kela"}, s.now + 60_000, "a", "b", s.now)
    s.advance(5)
    snap = json.loads(json.dumps(s.engine.snapshot()))
    again = Engine(s.site, s.rules, snap)
    assert again.snapshot() == s.engine.snapshot()
    # A rules file without that rule any more: its alerts are dropped, not kept forever.
    other = parse_rules(RECEIVERS + "rules:\n  - {name: x, kind: beam_blocked}\n", s.site)
    assert Engine(s.site, other, snap).alerts == {}
    assert s.now > TUESDAY_10


def test_a_beam_that_blocks_again_within_clear_for_is_one_incident() -> None:
    s = Scenario(
        QUIET.replace(
            "{name: beam, kind: beam_blocked, repeat: null}",
            "{name: beam, kind: beam_blocked, clear_for: 5m}",
        )
    )
    for _ in range(8):  # blocked a minute, clear two, for 24 minutes
        s.observe(FaultObs("pi-1", "kela-door/outer", "beam_blocked", True, s.now))
        s.advance(60, step_s=5)
        s.observe(FaultObs("pi-1", "kela-door/outer", "beam_blocked", False, s.now))
        s.advance(120, step_s=5)
    s.advance(300, step_s=5)
    assert [e for e, _ in s.sent("mail")] == ["firing", "resolved"]


def test_custom_summary() -> None:
    s = Scenario(
        SILENCE.replace("repeat: 1h}", "repeat: 1h, summary: '{zone_name} is full ({value})'}")
    )
    s.observe(ZoneObs("kela", 44, s.now))
    s.advance(1)
    assert s.notifications()[0].alerts[0]["summary"] == "Kela is full (1.1)"


def test_a_forgotten_agent_resolves_and_stays_quiet() -> None:
    s = Scenario(OFFLINE)
    s.observe(StatusObs("pi-1", False, s.now))
    s.advance(6 * 60, step_s=5)
    assert s.sent("mail") == [("firing", ["pi-offline-pi-1"])]
    s.observe(ForgetObs("pi-1", s.now))  # its retained status was cleared
    s.advance(120, step_s=5)
    assert [e for e, _ in s.sent("mail")] == ["firing", "resolved"]
    s.advance(3600, step_s=30)
    assert len(s.sent("mail")) == 2 and "pi-1" not in s.engine.facts.agents
