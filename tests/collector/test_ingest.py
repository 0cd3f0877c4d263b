"""Validation of everything a device can send, and the point times."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall_collector.ingest import REASONS, Ingest, Limits
from footfall_collector.points import Point, event_time_ns
from footfall_contract.timefmt import format_ts
from tests.support.collector import small_site

NOW = 1_795_428_902_120
TS = format_ts(NOW)
T = "footfall/v1/test-site/agent/pi-1"


def crossing(**over: object) -> bytes:
    event = {"seq": 1, "ts": TS, "door": "library-main", "dir": "in", **over}
    return json.dumps({"epoch": "e1", "events": [event]}).encode()


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "detail"),
    [
        (f"{T}/crossing", b"{not json", "invalid_json", "Invalid JSON: key must be a string"),
        (f"{T}/crossing", b"\xff\xfe", "invalid_json", ""),
        (
            f"{T}/crossing",
            b'{"epoch": "e1", "events": []}',
            "schema",
            "events: List should have at least 1",
        ),
        (
            f"{T}/crossing",
            crossing(dir="up"),
            "schema",
            "events.0.dir: Input should be 'in' or 'out'",
        ),
        (f"{T}/crossing", crossing(seq=-1), "schema", "events.0.seq"),
        (f"{T}/crossing", crossing(ts="yesterday"), "schema", "not an RFC 3339 timestamp"),
        (
            f"{T}/crossing",
            crossing(door="side-door"),
            "unknown_door",
            "door 'side-door' is not in site",
        ),
        (f"{T}/crossing", crossing(ts=format_ts(NOW + 301_000)), "future", "ahead"),
        (f"{T}/crossing", crossing(ts=format_ts(NOW - 401 * 86_400_000)), "too_old", "s old"),
        (
            f"{T}/presence",
            json.dumps(
                {"epoch": "e", "events": [{"seq": 1, "ts": TS, "sensor": "nope", "occupied": True}]}
            ).encode(),
            "unknown_sensor",
            "sensor 'nope'",
        ),
        ("footfall/v1/other-site/agent/pi-1/crossing", crossing(), "wrong_site", "'other-site'"),
        (f"{T}/teleport", crossing(), "bad_topic", "unknown message kind"),
        (f"{T}/crossing", b" " * (256 * 1024 + 1), "too_large", "bytes >"),
        (
            f"{T}/fault",
            json.dumps(
                {
                    "epoch": "e",
                    "events": [
                        {
                            "seq": 1,
                            "ts": TS,
                            "source": "door\nx=1",
                            "fault": "beam_blocked",
                            "active": True,
                        }
                    ],
                }
            ).encode(),
            "schema",
            "events.0.source",
        ),
    ],
)
def test_rejections_name_the_reason(topic: str, payload: bytes, reason: str, detail: str) -> None:
    out = Ingest(small_site()).handle(topic, payload, NOW)
    assert [r.reason for r in out.rejections] == [reason]
    assert detail in out.rejections[0].detail
    assert out.points == [] and out.lines == [] and out.crossings == []


def test_one_bad_event_rejects_only_itself() -> None:
    payload = json.dumps(
        {
            "epoch": "e1",
            "events": [
                {"seq": 1, "ts": TS, "door": "library-main", "dir": "in"},
                {"seq": 2, "ts": TS, "door": "nowhere", "dir": "in"},
                {"seq": 3, "ts": TS, "door": "library-main", "dir": "out"},
            ],
        }
    ).encode()
    out = Ingest(small_site()).handle(f"{T}/crossing", payload, NOW)
    assert [c.dir for c in out.crossings] == ["in", "out"]
    assert [r.reason for r in out.rejections] == ["unknown_door"]


def test_crossing_points_follow_the_schema() -> None:
    out = Ingest(small_site()).handle(f"{T}/crossing", crossing(seq=7), NOW)
    t = NOW * 1_000_000 + 7
    # into the library from the centre: into the library only (the centre holds both sides)
    assert out.lines == [
        f"crossing,agent=pi-1,dir=in,door=library-main,site=test-site count=1i {t}",
        f"zone_flow,agent=pi-1,dir=in,site=test-site,zone=library count=1i {t}",
    ]
    out = Ingest(small_site()).handle(
        f"{T}/crossing", crossing(seq=8, door="library-mall", dir="out"), NOW
    )
    t = NOW * 1_000_000 + 8
    assert out.lines == [
        f"crossing,agent=pi-1,dir=out,door=library-mall,site=test-site count=1i {t}",
        f"zone_flow,agent=pi-1,dir=out,site=test-site,zone=centre count=1i {t}",
        f"zone_flow,agent=pi-1,dir=out,site=test-site,zone=library count=1i {t}",
    ]


def test_same_millisecond_events_get_distinct_times_and_redelivery_the_same() -> None:
    assert event_time_ns(NOW, 1) != event_time_ns(NOW, 2)
    assert event_time_ns(NOW, 1) == event_time_ns(NOW, 1)
    assert event_time_ns(NOW, 1_000_001) == NOW * 1_000_000 + 1


def test_line_protocol_escaping() -> None:
    p = Point("m x", {"t,a": "v=1 2", "empty": ""}, {"s": 'say "hi"\\', "b": True, "f": 1.5}, 5)
    assert p.line() == 'm\\ x,t\\,a=v\\=1\\ 2 s="say \\"hi\\"\\\\",b=true,f=1.5 5'


def test_health_and_status() -> None:
    ing = Ingest(small_site())
    health = {
        "epoch": "e",
        "ts": TS,
        "uptime_s": 12.5,
        "queue_depth": 3,
        "totals": {"library-main": {"in": 4, "out": 2}},
        "dropped": 0,
        "cpu_temp_c": 48.3,
        "sw": "0.1.0",
    }
    out = ing.handle(f"{T}/health", json.dumps(health).encode(), NOW)
    assert out.health and out.points[0].measurement == "agent_health"
    assert out.points[0].fields["crossings_in"] == 4
    status = {
        "state": "offline",
        "epoch": "e",
        "ts": format_ts(NOW - 10 * 86_400_000),
        "sw": "0.1.0",
    }
    out = ing.handle(f"{T}/status", json.dumps(status).encode(), NOW)
    assert out.status is not None and out.status.state == "offline"  # old ts is fine here
    assert out.rejections == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["crossing", "presence", "fault", "health", "status", "x"]),
    payload=st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.builds(
            lambda evs: json.dumps({"epoch": "e", "events": evs}).encode(),
            st.lists(
                st.dictionaries(
                    st.sampled_from(
                        [
                            "seq",
                            "ts",
                            "door",
                            "dir",
                            "sensor",
                            "occupied",
                            "source",
                            "fault",
                            "active",
                        ]
                    ),
                    json_values | st.sampled_from([TS, "library-main", "in", "out", 3]),
                ),
                max_size=4,
            ),
        ),
    ),
)
def test_garbage_never_raises(kind: str, payload: bytes) -> None:
    out = Ingest(small_site(), Limits()).handle(f"{T}/{kind}", payload, NOW)
    assert all(r.reason in REASONS for r in out.rejections)
    assert out.rejections or out.points or out.lines or out.status is not None
