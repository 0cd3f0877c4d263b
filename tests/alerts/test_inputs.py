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
