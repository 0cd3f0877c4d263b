"""MQTT messages to observations: what each topic says, and what is refused and why."""

from __future__ import annotations

import json

import pytest

from footfall_alerts.engine import FaultObs, ForgetObs, HealthObs, SeenObs, StatusObs, ZoneObs
from footfall_alerts.inputs import observations, subscriptions
from footfall_contract.timefmt import format_ts
from tests.support.collector import small_site

NOW = 1_795_000_000_000
TS = format_ts(NOW - 500)
P = "footfall/v1/test-site"


def test_each_topic() -> None:
    site = small_site()
    occ = json.dumps({"count": 3, "capacity": 40, "ratio": 0.075, "ts": TS}).encode()
    assert observations(site, f"{P}/zone/kela/occupancy", occ, NOW) == [
        ZoneObs("kela", 3, NOW - 500)
    ]
    status = json.dumps({"state": "offline", "epoch": "e", "ts": TS, "sw": "1"}).encode()
    # The Last Will's ts is when it was set: the time of arrival counts.
    assert observations(site, f"{P}/agent/pi-1/status", status, NOW) == [
        StatusObs("pi-1", False, NOW)
    ]
    assert observations(site, f"{P}/agent/pi-1/status", b"", NOW) == [ForgetObs("pi-1", NOW)]
    health = json.dumps({"epoch": "e", "ts": TS, "uptime_s": 1, "queue_depth": 7, "totals": {}})
    assert observations(site, f"{P}/agent/pi-1/health", health.encode(), NOW) == [
        HealthObs("pi-1", 7, NOW - 500)
    ]
    fault = {
        "epoch": "e",
        "events": [
            {
                "seq": 1,
                "ts": TS,
                "source": "kela-door/outer",
                "fault": "beam_blocked",
                "active": True,
            },
            {
                "seq": 2,
                "ts": TS,
                "source": "kela-door/outer",
                "fault": "beam_blocked",
                "active": False,
            },
        ],
    }
    out = observations(site, f"{P}/agent/pi-1/fault", json.dumps(fault).encode(), NOW)
    assert [o.active for o in out if isinstance(o, FaultObs)] == [True, False]
    assert observations(site, f"{P}/agent/pi-1/crossing", b"{}", NOW) == [SeenObs("pi-1", NOW)]
    assert len(subscriptions("test-site")) == 5


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (f"{P}/zone/nowhere/occupancy", b"{}", "unknown zone 'nowhere'"),
        (f"{P}/zone/kela/occupancy", b"{oops", "Invalid JSON"),
        (
            f"{P}/zone/kela/occupancy",
            b'{"count": -1, "capacity": 40, "ratio": 0, "ts": "x"}',
            "count",
        ),
        ("footfall/v1/other/zone/kela/occupancy", b"{}", "another site"),
        (f"{P}/agent/pi-1/status", b'{"state": "asleep"}', "state"),
        ("footfall/v1/other/agent/pi-1/status", b"{}", "another site"),
        (f"{P}/agent/pi-1/colour", b"{}", "unknown message kind"),
        (f"{P}/zone/kela/count", b"{}", "occupancy topic"),
    ],
)
def test_bad_messages_are_refused_with_a_reason(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        observations(small_site(), topic, payload, NOW)


def test_fault_events_about_sources_the_site_does_not_have_are_dropped_one_by_one() -> None:
    site = small_site()

    def event(seq: int, source: str, fault: str = "beam_blocked") -> dict[str, object]:
        return {"seq": seq, "ts": TS, "source": source, "fault": fault, "active": True}

    good = ["kela-door/outer", "youth-door/inner", "study-room-2"]  # beams and a sensor
    bad = ["nowhere/outer", "kela-door/middle", "study-room-9", "kela-door"]
    events = [event(i, s) for i, s in enumerate(good + bad)]
    events.append(event(9, "kela-door/inner", "on_fire"))  # a fault the contract lacks
    payload = json.dumps({"epoch": "e", "events": events}).encode()
    dropped: list[tuple[str, str]] = []
    out = observations(site, f"{P}/agent/pi-1/fault", payload, NOW, dropped)
    assert out == [FaultObs("pi-1", s, "beam_blocked", True, NOW - 500) for s in good]
    assert [reason for reason, _ in dropped] == ["unknown_source"] * 4 + ["invalid"]
    assert dropped[0][1] == (
        f"{P}/agent/pi-1/fault: events.3.source: unknown fault source 'nowhere/outer' in "
        "site 'test-site' (a door's beam, DOOR/outer or DOOR/inner, or a presence sensor "
        "of the site file)"
    )
    assert dropped[4][1].startswith(f"{P}/agent/pi-1/fault: events.7.fault: Input should be")
    # Nothing usable at all: the message still says the agent is alive.
    only_bad = json.dumps({"epoch": "e", "events": [event(0, "fake-1/outer")]}).encode()
    assert observations(site, f"{P}/agent/pi-1/fault", only_bad, NOW) == [SeenObs("pi-1", NOW)]
