"""The web app's pure logic: busyness levels, staleness, opening hours, languages, SSE
framing, passwords, sessions, the bind policy, history parameters, settings."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from footfall_contract.timefmt import format_ts, parse_ts
from footfall_runtime.settings import ConfigError, load_settings
from footfall_web import auth, i18n, levels, sse
from footfall_web.config import WebSettings
from footfall_web.history import (
    BadParameter,
    auto_every,
    buckets,
    history_query,
    history_request,
    merge_history,
    parse_duration,
    parse_time,
    window_starts,
)
from footfall_web.levels import Reading, Thresholds
from tests.support.web import ALWAYS_OPEN, NEVER_OPEN, site_with_hours

T = Thresholds()
# Wednesday 2026-11-25 12:00 in Helsinki (UTC+2)
NOON = parse_ts("2026-11-25T10:00:00Z")


@pytest.mark.parametrize(
    ("ratio", "level"),
    [
        (0.0, "quiet"),
        (0.2999, "quiet"),
        (0.30, "moderate"),
        (0.5999, "moderate"),
        (0.60, "busy"),
        (0.8499, "busy"),
        (0.85, "very_busy"),
        (1.4, "very_busy"),
    ],
)
def test_level_boundaries(ratio: float, level: str) -> None:
    assert levels.level_of(ratio, T) == level


def test_thresholds_must_increase() -> None:
    with pytest.raises(ValidationError, match="must increase"):
        Thresholds(moderate=0.5, busy=0.5, very_busy=0.9)


def test_crowding_open_closed_no_data_and_stale() -> None:
    site = site_with_hours('{mon-fri: "08:00-20:00"}')
    fresh = Reading(count=160, capacity=250, ratio=0.64, ts_ms=NOON - 30_000)
    view = levels.crowding(site, "library", fresh, NOON, T, 180)
    assert (view.state, view.level, view.percent, view.count) == ("open", "busy", 64, None)
    # older than the staleness limit: no number at all, never the old one as if live
    old = Reading(count=160, capacity=250, ratio=0.64, ts_ms=NOON - 181_000)
    view = levels.crowding(site, "library", old, NOON, T, 180)
    assert (view.state, view.level, view.percent) == ("no_data", None, None)
    assert levels.crowding(site, "library", None, NOON, T, 180).state == "no_data"
    # 21:00 local on a weekday and all day Saturday..Sunday: closed, even with fresh data
    evening = parse_ts("2026-11-25T19:00:00Z")
    assert levels.crowding(site, "library", fresh, evening, T, 180).state == "closed"
    never = site_with_hours(NEVER_OPEN)
    view = levels.crowding(never, "library", fresh, NOON, T, 180)
    assert (view.state, view.percent, view.count) == ("closed", None, None)


def test_crowding_zone_without_capacity_shows_people() -> None:
    site = site_with_hours(ALWAYS_OPEN)
    reading = Reading(count=7, capacity=None, ratio=None, ts_ms=NOON)
    view = levels.crowding(site, "youth", reading, NOON, T, 180)
    assert (view.state, view.level, view.percent, view.count) == ("open", None, None, 7)


def test_forecast_rest_of_day_and_busiest_slot() -> None:
    values: list[float | None] = [None] * 96
    for slot in range(32, 80):  # 08:00..20:00
        values[slot] = float(100 - abs(slot - 60))  # 15:00 is slot 60
    values[90] = 500.0  # 22:30: outside opening hours, not "usually busiest"
    hours = (dt.time(8), dt.time(20))
    assert levels.busiest_slot(values, 15, hours) == 60
    assert levels.slot_time(60, 15) == "15:00"
    assert levels.busiest_slot(values, 15, None) is None
    now = dt.datetime(2026, 11, 25, 18, 10)
    rest = levels.rest_of_day(values, 15, now, hours)
    assert [s for s, _ in rest] == list(range(72, 80))  # 18:00 .. 19:45
    assert levels.rest_of_day(values, 15, now, None) == []
    all_day = levels.rest_of_day(values, 15, now, (dt.time(0), dt.time.max))
    assert all_day[-1][0] == 95


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "fi"),
        ("", "fi"),
        ("fi-FI,fi;q=0.9,en;q=0.8", "fi"),
        ("sv-FI,sv;q=0.9,fi;q=0.8", "sv"),
        ("en-US,en;q=0.9", "en"),
        ("de-DE,de;q=0.9,en;q=0.5,sv;q=0.6", "sv"),
        ("de, fr", "fi"),
        ("en;q=0, sv;q=0.1", "sv"),
        ("*", "fi"),
        ("en;q=bogus, sv", "sv"),
        ("EN-gb", "en"),
    ],
)
def test_accept_language(header: str | None, lang: str) -> None:
    assert i18n.negotiate(header) == lang


@settings(deadline=None)  # a noisy machine must not fail it
@given(st.text(max_size=200))
def test_accept_language_never_fails(header: str) -> None:
    assert i18n.negotiate(header) in i18n.LANGS


def test_language_choice_order_and_texts() -> None:
    assert i18n.choose("sv", "en", "fi") == "sv"
    assert i18n.choose(None, "en", "fi") == "en"
    assert i18n.choose("xx", None, "en-GB") == "en"
    assert i18n.format_time("15:00", "fi") == "15.00"
    assert i18n.format_time("15:00", "en") == "15:00"
    assert i18n.text("fi", "peak", time="15.00") == "Yleensä vilkkainta klo 15.00"
    for lang in i18n.LANGS:  # every language has every text
        assert i18n.TEXTS[lang].keys() == i18n.TEXTS["en"].keys()


def test_sse_framing() -> None:
    frame = sse.format_event("occupancy", {"count": 3, "name": "Kirjasto\nä"}, 7)
    assert frame.endswith(b"\n\n")
    lines = frame.decode().split("\n")
    assert lines[0] == "event: occupancy" and lines[1] == "id: 7"
    assert json.loads(lines[2].removeprefix("data: ")) == {"count": 3, "name": "Kirjasto\nä"}
    assert sse.format_comment("a\nb") == b": a\n: b\n\n"
    assert sse.format_retry(1000) == b"retry: 1000\n\n"
    with pytest.raises(ValueError, match="bad SSE event name"):
        sse.format_event("bad\nname", {})


def test_password_hash_roundtrip_and_bad_hashes() -> None:
    encoded = auth.hash_password("correct horse", n=2**10)
    assert encoded.startswith("scrypt$1024$8$1$")
    assert auth.verify_password("correct horse", encoded)
    assert not auth.verify_password("wrong horse", encoded)
    assert auth.hash_password("x", salt=b"0123456789abcdef") != auth.hash_password("x")
    users = {"anna": encoded}
    assert auth.check_login(users, "anna", "correct horse")
    assert not auth.check_login(users, "bob", "correct horse")
    for bad in (
        "",
        "plain",
        "pbkdf2$1$2$3$4$5",
        "scrypt$1000$8$1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
    ):
        with pytest.raises(ValueError):
            auth.parse_password_hash(bad)


def test_sessions_and_tokens() -> None:
    secret = b"k" * 32
    store = auth.SessionStore(secret)
    cookie = store.create("anna", 1000.0, 3600)
    assert store.user(cookie, 2000.0) == "anna"
    assert store.user(cookie, 4600.0) is None  # expired at 1000 + 3600
    assert len(store) == 0  # and forgotten
    cookie = store.create("anna", 1000.0, 3600)
    other = auth.SessionStore(b"x" * 32)
    assert other.user(cookie, 2000.0) is None  # other key
    sid, sig = cookie.split(".")
    forged = auth.SessionStore(secret)  # same key, but it never issued this session
    assert forged.user(cookie, 2000.0) is None
    assert store.user(f"{sid}x.{sig}", 2000.0) is None
    for junk in (None, "", "a.b", "a.b.c", "...", "." * 500, cookie + "."):
        assert store.user(junk, 2000.0) is None
    assert auth.bearer_token("Bearer abc") == "abc"
    assert auth.bearer_token("Basic abc") is None
    assert auth.bearer_token("Bearer ") is None
    assert auth.check_token(["a" * 20, "b" * 20], "b" * 20)
    assert not auth.check_token(["a" * 20], "a" * 19)


def test_logout_ends_a_session_for_every_copy_and_memory_is_bounded() -> None:
    store = auth.SessionStore(b"k" * 32, max_per_user=3)
    laptop, phone = store.create("anna", 0.0, 3600), store.create("anna", 1.0, 3600)
    copy = str(laptop)
    assert store.end(laptop)
    assert store.user(copy, 2.0) is None and store.user(laptop, 2.0) is None
    assert store.user(phone, 2.0) == "anna"  # her other session goes on
    assert not store.end(copy)  # already ended
    # the fourth login of a user ends her oldest session: at most 3 each
    cookies = [store.create("bob", float(t), 3600) for t in range(10)]
    assert [store.user(c, 20.0) for c in cookies] == [None] * 7 + ["bob"] * 3
    assert len(store) == 1 + 3


def test_login_backoff_per_key_doubles_up_to_the_maximum() -> None:
    throttle = auth.LoginThrottle(free_failures=5, base_s=1.0, max_s=300.0, forget_s=900.0)
    keys = throttle.keys("anna", "10.0.0.1")
    assert keys == ["user\x00anna", "addr\x0010.0.0.1"]
    now = 0.0
    # five attempts go ahead (each counts as a failure until it succeeds) ...
    assert [throttle.attempt(keys, now) for _ in range(5)] == [0.0] * 5
    # ... then the sixth waits 1 s, and nothing counts while it waits
    assert [throttle.attempt(keys, now) for _ in range(10)] == [1.0] * 10
    waits = []
    for _ in range(12):
        now += throttle.attempt(keys, now) or 0.0
        assert throttle.attempt(keys, now) == 0.0  # the back-off is over: one more try
        waits.append(throttle.attempt(keys, now))  # which failed: a longer one
    # truth: after n failures (n >= 5) the wait is min(300, 2 ** (n - 5)) s
    assert waits == [min(300.0, 2.0 ** (n - 5)) for n in range(6, 18)]
    throttle.succeeded(keys)
    assert throttle.attempt(keys, now) == 0.0
    # keys apart: another user from the same address is held by the address ...
    for _ in range(4):
        throttle.attempt(throttle.keys("x", "10.0.0.9"), now)
    assert throttle.attempt(throttle.keys("y", "10.0.0.9"), now) == 0.0  # 5th goes ahead
    assert throttle.attempt(throttle.keys("anna", "10.0.0.9"), now) == 1.0
    # ... and forgotten after forget_s without a failure
    assert throttle.attempt(throttle.keys("anna", "10.0.0.9"), now + 900.0) == 0.0


def test_login_backoff_keeps_a_bounded_number_of_keys() -> None:
    throttle = auth.LoginThrottle(max_keys=100)
    for i in range(1000):
        throttle.attempt(
            throttle.keys(f"guess-{i}" + "x" * 5000, f"10.0.{i // 256}.{i % 256}"), 0.0
        )
    assert len(throttle) == 100
    # a long unknown name is cut: one key for every name with the same first 65 characters
    assert throttle.keys("a" * 5000, None)[0] == "user\0" + "a" * 65


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("board.example", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert auth.is_loopback(host) is loopback
    assert auth.login_required(host, None) is (not loopback)


def test_bind_policy() -> None:
    assert auth.check_bind_policy("127.0.0.1", None, 0, 0) is False
    assert auth.check_bind_policy("0.0.0.0", None, 1, 0) is True
    assert auth.check_bind_policy("0.0.0.0", None, 0, 1) is True
    assert auth.check_bind_policy("127.0.0.1", True, 1, 0) is True
    with pytest.raises(ConfigError, match="beyond loopback needs a login"):
        auth.check_bind_policy("0.0.0.0", None, 0, 0)
    with pytest.raises(ConfigError, match="require_login = false is refused"):
        auth.check_bind_policy("0.0.0.0", False, 1, 0)
    with pytest.raises(ConfigError, match="needs a login"):
        auth.check_bind_policy("127.0.0.1", True, 0, 0)


def test_history_parameters() -> None:
    now = parse_ts("2026-11-25T12:00:00Z")
    assert parse_duration("5m", "every") == 300
    assert parse_time("-6h", "from", now) == now - 6 * 3600 * 1000
    assert parse_time("now", "to", now) == now
    assert parse_time("2026-11-25T10:00:00+02:00", "from", now) == parse_ts("2026-11-25T08:00:00Z")
    req = history_request("s", "z", None, None, None, now, 5000)
    assert req.end_ms == now and req.start_ms == now - 6 * 3600 * 1000
    assert req.every_s == auto_every(6 * 3600) == 120
    q = history_query(req)
    assert "GROUP BY time(120s)" in q and "\"zone\" = 'z'" in q
    for bad, message in [
        (("yesterday", None, None), "from must be an RFC 3339"),
        (("2026-11-25T10:00:00", None, None), "from must be an RFC 3339"),  # no zone
        ((None, None, "5 minutes"), "every must be a positive duration"),
        ((None, None, "0s"), "every must be a positive duration"),
        (("-1h", "-2h", None), "must be before"),
        (("-30d", None, "1s"), "at most 5000"),
    ]:
        with pytest.raises(BadParameter, match=message):
            history_request("s", "z", *bad, now, 5000)


def test_history_carries_the_level_and_restarts_at_resets() -> None:
    """InfluxDB's bucket answers -> intervals: a quiet hour carries the level, an hour
    that starts at the reset does not count the level before it, a quiet hour holding a
    reset ends at 0, and the first hours before any level are left out."""
    site = site_with_hours(ALWAYS_OPEN)  # reset_at 03:00 Europe/Helsinki
    day = dt.date(2026, 11, 25)

    def at(hour: int) -> int:
        return int(dt.datetime.combine(day, dt.time(hour), tzinfo=site.tz).timestamp() * 1000)

    req = history_request(
        "test-site",
        "library",
        "2026-11-24T22:00:00Z",
        "2026-11-25T08:00:00Z",
        "1h",
        at(23) + 86_400_000,
        5000,
        timezone="Europe/Helsinki",
    )
    spans = buckets(req, at(23) + 86_400_000)
    assert [a for a, _ in spans] == list(range(at(0), at(10), 3_600_000))
    rows = {  # hour -> (last, max); None: no point in it
        1: (4, 6),
        3: (0, 0),  # the reset point
        5: (2, 3),
    }
    levels = [
        {
            "columns": ["time", "count", "max"],
            "values": [[at(h), *rows.get(h, (None, None))] for h in range(10)],
        }
    ]
    visits = [{"columns": ["time", "visits"], "values": [[at(5), 3]]}]
    resets = window_starts(site, spans[0][0], spans[-1][1])
    assert resets == [at(3)]
    points = merge_history(req, spans, levels, visits, None, resets)
    got = [(p["t"], p["count"], p["max"], p["visits"]) for p in points]
    hour = {
        h: parse_ts(f"2026-11-{24 + (h + 22) // 24}T{(h + 22) % 24:02d}:00:00Z") for h in range(10)
    }
    assert [t for t, *_ in got] == [format_ts(hour[h]) for h in range(1, 10)]
    assert got == [
        (format_ts(hour[1]), 4, 6, 0),
        (format_ts(hour[2]), 4, 4, 0),  # quiet: the level carried
        (format_ts(hour[3]), 0, 0, 0),  # starts at the reset: 4 is not in it
        (format_ts(hour[4]), 0, 0, 0),
        (format_ts(hour[5]), 2, 3, 3),
        *[(format_ts(hour[h]), 2, 2, 0) for h in range(6, 10)],
    ]
    # without the reset point, the hour still starts from 0
    del rows[3]
    levels[0]["values"] = [[at(h), *rows.get(h, (None, None))] for h in range(10)]
    again = merge_history(req, spans, levels, visits, None, resets)
    assert [(p["count"], p["max"]) for p in again[2:4]] == [(0, 0), (0, 0)]
    # a reset inside a quiet interval: what was there before counts toward its max
    two = history_request(
        "test-site",
        "library",
        "2026-11-24T22:00:00Z",
        "2026-11-25T08:00:00Z",
        "2h",
        at(23) + 86_400_000,
        5000,
        timezone="Europe/Helsinki",
    )
    spans2 = buckets(two, at(23) + 86_400_000)
    levels2 = [{"columns": ["time", "count", "max"], "values": [[at(0), 4, 6]]}]
    out = merge_history(two, spans2, levels2, [], None, window_starts(site, at(0), at(10)))
    assert [(p["count"], p["max"]) for p in out[:3]] == [(4, 6), (0, 4), (0, 0)]


def test_history_times_out_of_range_name_the_parameter() -> None:
    now = parse_ts("2026-11-25T12:00:00Z")
    for text in ("0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "1960-01-01T00:00:00Z"):
        with pytest.raises(BadParameter, match=r"^from is out of range"):
            parse_time(text, "from", now)
    with pytest.raises(BadParameter, match=r"^to is out of range"):
        parse_time("-99999d", "to", now)
    with pytest.raises(BadParameter, match="every of a day or more must be whole days"):
        history_request("s", "z", "-3d", None, "25h", now, 5000)
    week = history_request("s", "z", "-30d", None, "1w", now, 5000, timezone="Europe/Helsinki")
    assert week.every_s == 7 * 86400 and week.days == 7
    assert "tz('Europe/Helsinki')" in history_query(week) and "time(1d)" in history_query(week)


def test_settings_from_env_and_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FOOTFALL_HTTP__PORT", "8099")
    monkeypatch.setenv("FOOTFALL_CROWDING__STALE_AFTER_S", "120")
    monkeypatch.setenv("FOOTFALL_AUTH__TOKENS", '["0123456789abcdef0123"]')
    toml = tmp_path / "web.toml"
    toml.write_text(
        '[crowding]\nbusy = 0.7\n[crowding.zones."iso-omena/library"]\n'
        "moderate = 0.4\nbusy = 0.75\nvery_busy = 0.95\n"
    )
    s = load_settings(WebSettings, toml)
    assert s.http.port == 8099 and s.http.host == "127.0.0.1"
    assert s.crowding.stale_after_s == 120 and s.crowding.busy == 0.7
    assert s.crowding.thresholds("iso-omena", "library").very_busy == 0.95
    assert s.crowding.thresholds("iso-omena", "kela").very_busy == 0.85
    monkeypatch.setenv("FOOTFALL_AUTH__USERS", '{"anna": "secret"}')
    with pytest.raises(ConfigError, match=re.escape("footfall-web hash-password")):
        load_settings(WebSettings)
    monkeypatch.delenv("FOOTFALL_AUTH__USERS")
    monkeypatch.setenv("FOOTFALL_HTTP__FORWARDED_ALLOW_IPS", '["127.0.0.1", "10.0.0.0/8"]')
    monkeypatch.setenv("FOOTFALL_AUTH__LOGIN_FAILURES", "3")
    s = load_settings(WebSettings)
    assert s.http.forwarded_allow_ips == ["127.0.0.1", "10.0.0.0/8"]
    assert (s.auth.login_failures, s.auth.login_backoff_max_s) == (3, 300.0)
    for bad in ('["proxy.example"]', '["10.0.0.1/8"]', '["*"]'):
        monkeypatch.setenv("FOOTFALL_HTTP__FORWARDED_ALLOW_IPS", bad)
        with pytest.raises(ConfigError, match=r"http.forwarded_allow_ips: .* is not an IP address"):
            load_settings(WebSettings)
    monkeypatch.delenv("FOOTFALL_HTTP__FORWARDED_ALLOW_IPS")
    monkeypatch.setenv("FOOTFALL_AUTH__LOGIN_FAILURES", "0")
    with pytest.raises(ConfigError, match="login_failures"):
        load_settings(WebSettings)
    monkeypatch.delenv("FOOTFALL_AUTH__LOGIN_FAILURES")
    monkeypatch.setenv("FOOTFALL_CROWDING__BUSY", "0.2")
    with pytest.raises(ConfigError, match="must increase"):
        load_settings(WebSettings)


def test_live_state_from_retained_messages() -> None:
    """What the board believes, message by message (no broker needed: `apply` is what
    the MQTT callback calls)."""
    from footfall_runtime.config import MqttSettings
    from footfall_web.live import LiveState

    site = site_with_hours(ALWAYS_OPEN)
    live = LiveState(MqttSettings(), [site], "test")
    occ = b'{"count": 5, "capacity": 250, "ratio": 0.02, "ts": "2026-11-25T10:00:00.000Z"}'
    change = live.apply("footfall/v1/test-site/zone/library/occupancy", occ)
    assert change is not None and change.data["count"] == 5
    assert live.reading("test-site", "library") == Reading(5, 250, 0.02, NOON)
    # ignored: other sites, unknown zones, other topics, garbage (logged, not raised)
    for topic, payload in [
        ("footfall/v1/other-site/zone/library/occupancy", occ),
        ("footfall/v1/test-site/zone/nope/occupancy", occ),
        ("footfall/v1/test-site/agent/pi-1/crossing", b"{}"),
        ("footfall/v1/test-site/zone/library/occupancy", b"{not json"),
        ("footfall/v1/test-site/zone/library/occupancy", b'{"count": -1}'),
        ("footfall/v1/test-site/alert/x", b'{"id": "x"}'),
    ]:
        assert live.apply(topic, payload) is None
    assert live.reading("test-site", "library") == Reading(5, 250, 0.02, NOON)
    status = b'{"state": "offline", "epoch": "e", "ts": "2026-11-25T10:00:00.000Z", "sw": "1"}'
    live.apply("footfall/v1/test-site/agent/pi-1/status", status)
    assert live.site_agents("test-site")[0]["online"] is False
    alert = {
        "id": "a1",
        "rule": "r",
        "kind": "over_capacity",
        "severity": "warning",
        "state": "firing",
        "scope": {"zone": "library"},
        "summary": "s",
        "started": "2026-11-25T10:00:00.000Z",
        "ts": "2026-11-25T10:00:00.000Z",
    }
    live.apply("footfall/v1/test-site/alert/a1", json.dumps(alert).encode())
    assert [a["id"] for a in live.site_alerts("test-site")] == ["a1"]
    alert["state"] = "resolved"
    live.apply("footfall/v1/test-site/alert/a1", json.dumps(alert).encode())
    assert live.site_alerts("test-site") == []
    live.apply("footfall/v1/test-site/alert/a1", json.dumps({**alert, "state": "firing"}).encode())
    live.apply("footfall/v1/test-site/alert/a1", b"")  # retained message cleared
    assert live.site_alerts("test-site") == []
    live.apply("footfall/v1/test-site/zone/library/occupancy", b"")
    assert live.reading("test-site", "library") is None
