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
    # an empty status is a retirement (docs/spec.md §2), everything else says something
    assert out.rejections or out.points or out.lines or out.status is not None or out.retired
    assert not out.retired or (kind, payload) == ("status", b"")


# --- one bad event rejects only itself (issue 11, item 4) -----------------------------


def good_crossings(n: int) -> list[dict[str, object]]:
    doors = ["centre-main", "library-main", "library-mall", "kela-door", "youth-door"]
    return [
        {"seq": 100 + i, "ts": TS, "door": doors[i % 5], "dir": "in" if i % 2 else "out"}
        for i in range(n)
    ]


BAD_EVENTS: list[tuple[object, str]] = [
    (
        {"seq": 50, "ts": TS, "door": "library-main", "dir": "x"},
        "dir: Input should be 'in' or 'out'",
    ),
    (
        {"seq": 50, "ts": "2016-12-31T23:59:60Z", "door": "library-main", "dir": "in"},
        "ts: Value error, not a valid date/time: '2016-12-31T23:59:60Z'",
    ),
    (
        {"seq": 50, "ts": "2026-11-23T10:15:02.120", "door": "library-main", "dir": "in"},
        "ts: Value error, not an RFC 3339 timestamp with a time zone",
    ),
    (
        {"seq": "50", "ts": TS, "door": "library-main", "dir": "in"},
        "seq: Input should be a valid integer",
    ),
    (
        {"seq": 50, "ts": TS + "\n", "door": "library-main", "dir": "in"},
        "ts: Value error, not an RFC 3339 timestamp",
    ),
    (
        {"seq": 50, "ts": TS, "door": "library-main\n", "dir": "in"},
        "door: String should match pattern",
    ),
    ({"seq": 50, "ts": TS, "door": "library-main"}, "dir: Field required"),
    (7, ": Input should be an object"),
]


@pytest.mark.parametrize("position", [0, 3, 5])
@pytest.mark.parametrize(("bad", "problem"), BAD_EVENTS)
def test_an_invalid_event_rejects_only_itself(bad: object, problem: str, position: int) -> None:
    good = good_crossings(5)
    events: list[object] = [*good]
    events.insert(position, bad)
    payload = json.dumps({"epoch": "e1", "events": events}).encode()
    out = Ingest(small_site()).handle(f"{T}/crossing", payload, NOW)
    # The five good ones, computed from what was sent, not from what came out.
    assert [(c.key, c.door, c.dir) for c in out.crossings] == [
        (("pi-1", NOW * 1_000_000 + int(str(e["seq"]))), e["door"], e["dir"]) for e in good
    ]
    assert out.events == 5
    assert [(r.reason, r.agent, r.kind) for r in out.rejections] == [("schema", "pi-1", "crossing")]
    assert out.rejections[0].detail.startswith(f"events.{position}")
    assert problem in out.rejections[0].detail


def test_every_bad_event_is_named_and_the_good_ones_kept() -> None:
    events: list[object] = [bad for bad, _ in BAD_EVENTS] + good_crossings(2)
    payload = json.dumps({"epoch": "e1", "events": events}).encode()
    out = Ingest(small_site()).handle(f"{T}/crossing", payload, NOW)
    assert len(out.crossings) == 2
    assert [r.detail.split(":")[0] for r in out.rejections] == [
        f"events.{i}.{p.split(':')[0]}".rstrip(".") for i, (_, p) in enumerate(BAD_EVENTS)
    ]


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({"events": good_crossings(2)}, "epoch: Field required"),
        ({"epoch": "e1\n", "events": good_crossings(2)}, "epoch: String should match pattern"),
        ({"epoch": "e1", "events": {"0": good_crossings(1)[0]}}, "events: Input should be"),
        ({"epoch": "e1", "events": []}, "events: List should have at least 1 item"),
        ([good_crossings(1)[0]], "payload: Input should be an object"),
    ],
)
def test_a_bad_envelope_rejects_the_message(payload: object, detail: str) -> None:
    out = Ingest(small_site()).handle(f"{T}/crossing", json.dumps(payload).encode(), NOW)
    assert [r.reason for r in out.rejections] == ["schema"]
    assert detail in out.rejections[0].detail
    assert out.crossings == [] and out.lines == []


def test_presence_and_fault_events_are_checked_one_by_one() -> None:
    presence = [
        {"seq": 1, "ts": TS, "sensor": "study-room-2", "occupied": True},
        {"seq": 2, "ts": TS, "sensor": "study-room-2", "occupied": 1},
        {"seq": 3, "ts": TS, "sensor": "study-room-2", "occupied": False},
    ]
    ing = Ingest(small_site())
    out = ing.handle(f"{T}/presence", json.dumps({"epoch": "e", "events": presence}).encode(), NOW)
    assert [(p.fields["occupied"], p.time_ns) for p in out.points] == [
        (True, NOW * 1_000_000 + 1),
        (False, NOW * 1_000_000 + 3),
    ]
    assert [(r.reason, r.detail[:25]) for r in out.rejections] == [
        ("schema", "events.1.occupied: Input ")
    ]
    faults = [
        {"seq": 4, "ts": TS, "source": "kela-door/outer", "fault": "beam_blocked", "active": True},
        {"seq": 5, "ts": TS, "source": "kela-door/outer", "fault": "beam_melted", "active": True},
        {"seq": 6, "ts": TS, "source": "kela-door/inner", "fault": "beam_flapping", "active": 0},
        {"seq": 7, "ts": TS, "source": "study-room-2", "fault": "beam_flapping", "active": False},
    ]
    out = ing.handle(f"{T}/fault", json.dumps({"epoch": "e", "events": faults}).encode(), NOW)
    assert [(p.tags["source"], p.tags["fault"], p.fields["active"]) for p in out.points] == [
        ("kela-door/outer", "beam_blocked", True),
        ("study-room-2", "beam_flapping", False),
    ]
    assert [r.detail.split(":")[0] for r in out.rejections] == ["events.1.fault", "events.2.active"]
    assert "Input should be 'beam_blocked' or 'beam_flapping'" in out.rejections[0].detail


# --- fault sources are the site's (issue 11, item 7) ----------------------------------


def fault(source: str, name: str = "beam_blocked", seq: int = 1) -> bytes:
    event = {"seq": seq, "ts": TS, "source": source, "fault": name, "active": True}
    return json.dumps({"epoch": "e", "events": [event]}).encode()


def test_fault_sources_are_the_sites_beams_and_sensors() -> None:
    site = small_site()
    beams = {f"{d.id}/{b}" for d in site.doors for b in ("outer", "inner")}
    assert site.fault_sources() == beams | {"study-room-2"}
    ing = Ingest(site)
    for source in sorted(site.fault_sources()):
        out = ing.handle(f"{T}/fault", fault(source), NOW)
        assert out.rejections == [] and [p.tags["source"] for p in out.points] == [source]


@pytest.mark.parametrize(
    "source",
    [
        "library-main/middle",
        "ghost-door/outer",
        "library-main",
        "library-main/outer/x",
        "study-room-2/outer",
        "Library-Main/outer",
        "kela-door/inner:1",
    ],
)
def test_an_unknown_fault_source_is_rejected(source: str) -> None:
    out = Ingest(small_site()).handle(f"{T}/fault", fault(source), NOW)
    assert out.points == [] and out.events == 0
    assert [(r.reason, r.agent, r.kind) for r in out.rejections] == [
        ("unknown_source", "pi-1", "fault")
    ]
    assert f"fault source {source!r} is neither a door's beam" in out.rejections[0].detail
    assert "'test-site'" in out.rejections[0].detail


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("beam_melted", "Input should be 'beam_blocked' or 'beam_flapping'"),
        ("beam_blocked\n", "Input should be 'beam_blocked' or 'beam_flapping'"),
        ("beam_blocked_x", "Input should be 'beam_blocked' or 'beam_flapping'"),
    ],
)
def test_fault_names_are_the_ones_the_edge_raises(name: str, problem: str) -> None:
    out = Ingest(small_site()).handle(f"{T}/fault", fault("kela-door/outer", name), NOW)
    assert [r.reason for r in out.rejections] == ["schema"]
    assert out.rejections[0].detail == f"events.0.fault: {problem}"


# --- ids: a full match (issue 11, item 8) ---------------------------------------------


@pytest.mark.parametrize(
    "topic",
    [
        "footfall/v1/test-site/agent/pi-1\n/crossing",
        "footfall/v1/test-site\n/agent/pi-1/crossing",
        "footfall/v1/test-site/agent/pi-1/crossing\n",
    ],
)
def test_an_id_ending_in_a_newline_is_a_bad_topic(topic: str) -> None:
    out = Ingest(small_site()).handle(topic, crossing(), NOW)
    assert [r.reason for r in out.rejections] == ["bad_topic"]
    assert "\\n" in out.rejections[0].detail  # the repr shows the newline
    assert out.lines == [] and out.agent is None


def test_ids_in_payloads_must_match_in_full() -> None:
    ing = Ingest(small_site())
    for field, value in [("door", "library-main\n"), ("door", "library-main\n\n")]:
        out = ing.handle(f"{T}/crossing", crossing(**{field: value}), NOW)
        assert [r.detail.split(":")[0] for r in out.rejections] == [f"events.0.{field}"]
    presence = {"seq": 1, "ts": TS, "sensor": "study-room-2\n", "occupied": True}
    out = ing.handle(
        f"{T}/presence", json.dumps({"epoch": "e", "events": [presence]}).encode(), NOW
    )
    assert [r.detail.split(":")[0] for r in out.rejections] == ["events.0.sensor"]


# --- finite numbers in health (issue 11, item 13) -------------------------------------


def health(**over: object) -> bytes:
    body: dict[str, object] = {
        "epoch": "e",
        "ts": TS,
        "uptime_s": 12.5,
        "queue_depth": 0,
        "totals": {"library-main": {"in": 4, "out": 2}},
        **over,
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (health().replace(b"12.5", b"1e999"), "uptime_s: Input should be a finite number"),
        (health().replace(b"12.5", b"-1e999"), "uptime_s: Input should be a finite number"),
        (health().replace(b"12.5", b"NaN"), "uptime_s: Input should be a finite number"),
        (health().replace(b"12.5", b"Infinity"), "uptime_s: Input should be a finite number"),
        (health(cpu_temp_c=1.0).replace(b"1.0", b"NaN"), "cpu_temp_c: numbers must be finite"),
        (health(cpu_temp_c=1.0).replace(b"1.0", b"1e999"), "cpu_temp_c: numbers must be finite"),
        (health(extra={"a": [1.0]}).replace(b"1.0", b"-Infinity"), "extra: numbers must be"),
        (health(uptime_s=-1), "uptime_s: Input should be greater than or equal to 0"),
    ],
)
def test_health_numbers_must_be_finite(payload: bytes, detail: str) -> None:
    out = Ingest(small_site()).handle(f"{T}/health", payload, NOW)
    assert [(r.reason, r.kind) for r in out.rejections] == [("schema", "health")]
    assert detail in out.rejections[0].detail
    assert out.points == [] and not out.health


def test_finite_health_is_stored_with_its_figures() -> None:
    out = Ingest(small_site()).handle(
        f"{T}/health", health(cpu_temp_c=48.3, uptime_s=1e300, dropped=2), NOW
    )
    assert out.rejections == [] and out.health
    fields = out.points[0].fields
    assert fields["uptime_s"] == 1e300 and fields["cpu_temp_c"] == 48.3
    assert (fields["crossings_in"], fields["crossings_out"], fields["dropped"]) == (4, 2, 2)


def test_a_crossing_stamped_before_the_clock_was_set_is_kept_and_flagged() -> None:
    out = Ingest(small_site()).handle(f"{T}/crossing", crossing(seq=9, clock_unsynced=True), NOW)
    t = NOW * 1_000_000 + 9
    assert out.lines == [
        "crossing,agent=pi-1,dir=in,door=library-main,site=test-site "
        f"count=1i,clock_unsynced=true {t}",
        f"zone_flow,agent=pi-1,dir=in,site=test-site,zone=library count=1i {t}",
    ]
    assert not out.rejections
