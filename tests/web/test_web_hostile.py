"""footfall-web against hostile input, with the real server, a real Mosquitto and a real
InfluxDB: password guessing (back-off per user name and per address, answered 429 with
Retry-After), a cookie copied before logout, oversized and bad retained MQTT messages
(memory, /healthz, rate-limited logs) and report periods beyond what InfluxDB stores."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from footfall_collector.config import InfluxSettings
from footfall_collector.influx import connect
from footfall_contract.timefmt import format_ts
from footfall_runtime.config import MqttSettings
from footfall_sim.localservices import Influx, Mosquitto, find_binary
from footfall_web import live as live_module
from footfall_web.auth import hash_password
from footfall_web.live import MAX_PAYLOAD_BYTES, MAX_SW_CHARS, LiveState
from tests.support.collector import Publisher, now_ms, wait_for
from tests.support.web import ALWAYS_OPEN, site_with_hours, web_server, web_settings

pytestmark = pytest.mark.services

SITE = site_with_hours(ALWAYS_OPEN)
STATUS = "footfall/v1/test-site/agent/{}/status"
PASSWORD = "s3cret-pass"
USERS = {"anna": hash_password(PASSWORD, n=2**12), "bob": hash_password("bobs-pass", n=2**12)}


class Clock:
    """The app's clock (`Web(now=...)`), moved by the test: back-offs end without waiting."""

    def __init__(self) -> None:
        self.t = time.time()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += seconds


def login(http: httpx.Client, user: str, password: str, address: str) -> httpx.Response:
    """POST /login as a browser behind the reverse proxy at 127.0.0.1 from `address`."""
    return http.post(
        "/login",
        data={"user": user, "password": password, "next": "/"},
        headers={"X-Forwarded-For": address, "Accept-Language": "en"},
    )


def status(sw: str = "0.1.0", state: str = "online") -> str:
    return json.dumps({"state": state, "epoch": "e1", "ts": format_ts(now_ms()), "sw": sw})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def board(mosquitto: Mosquitto, influx: Influx, clock: Clock) -> Iterator[httpx.Client]:
    """The board beyond loopback (login needed) behind a proxy on 127.0.0.1, on `clock`."""
    settings = web_settings(
        mosquitto.port,
        influx.url,
        http={"host": "0.0.0.0", "forwarded_allow_ips": ["127.0.0.1"]},
        auth={"users": USERS},
    )
    with (
        web_server(settings, [SITE], forecaster_factory=False, now=clock) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        yield http


# -- item 12: password guessing and logout --------------------------------------------


def test_failed_logins_back_off_per_user_and_per_address(board: httpx.Client, clock: Clock) -> None:
    # 20 wrong passwords for anna: 5 are checked (a wrong-password page), then 429s
    answers = [login(board, "anna", f"guess-{i}", "10.0.0.1") for i in range(20)]
    assert [r.status_code for r in answers] == [303] * 5 + [429] * 15
    assert all("error=1" in r.headers["location"] for r in answers[:5])
    for r in answers[5:]:
        assert r.headers["retry-after"] == "1"  # the first back-off: 1 s
        assert "Too many failed logins: try again in 1 s" in r.text
    assert "footfall_session" not in board.cookies
    # the right password during the back-off is refused too, from any address
    assert login(board, "anna", PASSWORD, "10.0.0.1").status_code == 429
    assert login(board, "anna", PASSWORD, "10.0.0.2").status_code == 429
    assert board.get("/api/v1/sites").status_code == 401
    # after the back-off (the app's clock, not a sleep) it is accepted
    clock.advance(1.0)
    ok = login(board, "anna", PASSWORD, "10.0.0.1")
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    assert board.get("/api/v1/sites").status_code == 200
    board.post("/logout")

    # a success clears the count; then each further failure doubles the back-off:
    # truth 2 ** (failures - 5) s
    assert [login(board, "anna", "x", "10.0.0.1").status_code for _ in range(5)] == [303] * 5
    waits = []
    for _ in range(4):
        locked = login(board, "anna", "x", "10.0.0.1")
        assert locked.status_code == 429
        waits.append(int(locked.headers["retry-after"]))
        clock.advance(waits[-1])
        assert login(board, "anna", "x", "10.0.0.1").status_code == 303  # checked: wrong
    assert waits == [1, 2, 4, 8]
    assert login(board, "anna", "x", "10.0.0.1").headers["retry-after"] == "16"

    # per address: five guesses at unknown names from 10.0.0.3 hold bob there, not elsewhere
    for i in range(5):
        assert login(board, f"nobody-{i}", "x", "10.0.0.3").status_code == 303
    assert login(board, "bob", "bobs-pass", "10.0.0.3").status_code == 429
    assert login(board, "bob", "bobs-pass", "10.0.0.4").status_code == 303
    board.post("/logout")
    # per user name, also one nobody has: five addresses, then the sixth is held
    for i in range(5):
        assert login(board, "nobody", "x", f"10.0.1.{i}").status_code == 303
    started = time.monotonic()
    held = login(board, "nobody", "x", "10.0.1.99")
    assert held.status_code == 429 and held.headers["retry-after"] == "1"
    assert time.monotonic() - started < 0.5  # answered at once, no password checked


def test_logout_ends_the_session_for_every_copy_of_the_cookie(board: httpx.Client) -> None:
    assert login(board, "anna", PASSWORD, "10.0.0.1").status_code == 303
    cookie = board.cookies["footfall_session"]
    with (
        httpx.Client(base_url=str(board.base_url), timeout=10) as thief,
        httpx.Client(base_url=str(board.base_url), timeout=10) as other_tab,
    ):
        thief.cookies.set("footfall_session", cookie)
        assert thief.get("/api/v1/sites").status_code == 200
        assert thief.get("/").status_code == 200
        # anna has a second session of her own elsewhere
        assert login(other_tab, "anna", PASSWORD, "10.0.0.2").status_code == 303
        assert board.post("/logout").status_code == 303
        assert "footfall_session" not in board.cookies
        # the copy made before the logout is dead on the server, not only in the browser
        r = thief.get("/api/v1/sites")
        assert r.status_code == 401 and "login required" in r.json()["detail"]
        page = thief.get("/")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert thief.get("/api/v1/stream").status_code == 401
        # her other session was not the one logged out
        assert other_tab.get("/api/v1/sites").status_code == 200
        # and logging in again gives a new, working session
        assert login(board, "anna", PASSWORD, "10.0.0.1").status_code == 303
        assert board.cookies["footfall_session"] != cookie
        assert board.get("/api/v1/sites").status_code == 200


# -- item 9: oversized retained messages ----------------------------------------------


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def mosquitto_pub(port: int, topic: str, payload_file: Path, *, retain: bool = True) -> None:
    """Publish a file from another process (the test process' memory stays the board's)."""
    args = [find_binary("mosquitto_pub"), "-p", str(port), "-q", "1", "-t", topic]
    subprocess.run(
        [*args, *(["-r"] if retain else []), "-f", str(payload_file)],
        check=True,
        capture_output=True,
        timeout=60,
    )


class Tab:
    """One open board tab: the live stream, read in a thread, bytes and events counted."""

    def __init__(self, url: str) -> None:
        self.bytes = 0
        self.text = ""
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._client = httpx.Client(base_url=url, timeout=30)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with self._client.stream("GET", "/api/v1/stream") as stream:
            for chunk in stream.iter_text():
                self.bytes += len(chunk)
                if len(self.text) < 100_000:
                    self.text += chunk
                if "event: snapshot" in self.text:
                    self.ready.set()
                if self._stop.is_set():
                    return

    def close(self) -> None:
        self._stop.set()
        self._client.close()


def test_oversized_retained_status_never_reaches_the_board(
    mosquitto: Mosquitto, influx: Influx, tmp_path: Path
) -> None:
    """The test broker has no size limit: as a broker configured before the limit, or a
    status retained before it was set. The board (MQTT v5 Maximum Packet Size) is never
    sent one, so 30 open tabs, its memory and /healthz are untouched; a status within the
    contract is kept with `sw` cut to its bound."""
    big = tmp_path / "big.json"
    big.write_text(status(sw="x" * 50_000_000))  # 50 MB, as in the report
    mosquitto_pub(mosquitto.port, STATUS.format("pi-big"), big)
    within = status(sw="v" * 200 * 1024)  # 200 KiB: within the contract
    pub = Publisher(mosquitto.port)
    pub.send(STATUS.format("pi-long-sw"), within, retain=True)
    settings = web_settings(mosquitto.port, influx.url)
    tabs: list[Tab] = []
    try:
        with (
            web_server(settings, [SITE], forecaster_factory=False) as server,
            httpx.Client(base_url=server.url, timeout=10) as http,
        ):
            live = server.web.live
            wait_for(lambda: live.snapshot(["test-site"])["test-site"]["agents"], 10, "a status")
            tabs = [Tab(server.url) for _ in range(30)]
            for tab in tabs:
                assert tab.ready.wait(10), "a tab got no snapshot"
            before = rss_bytes()
            mosquitto_pub(mosquitto.port, STATUS.format("pi-big-2"), big)  # while tabs are open
            pub.send(STATUS.format("pi-marker"), status(), retain=True)
            wait_for(lambda: all("pi-marker" in t.text for t in tabs), 20, "marker in every tab")
            grown = rss_bytes() - before
            slowest = 0.0
            for _ in range(20):
                started = time.monotonic()
                health = http.get("/healthz")
                slowest = max(slowest, time.monotonic() - started)
                assert health.status_code == 200
            snap = live.snapshot(["test-site"])["test-site"]["agents"]
            agents = {a["agent"]: a["sw"] for a in snap}
            print(
                f"board RSS growth {grown / 1e6:.1f} MB, slowest /healthz {slowest * 1000:.0f} ms"
            )
            assert grown < 30e6, f"the board grew by {grown / 1e6:.0f} MB"
            assert slowest < 0.5, f"/healthz took {slowest:.2f} s"
            # truth: the two statuses within the contract, the 50 MB ones never arrived
            assert sorted(agents) == ["pi-long-sw", "pi-marker"]
            assert agents["pi-long-sw"] == "v" * (MAX_SW_CHARS - 1) + "…"
            assert health.json()["mqtt_rejected"] == {}  # dropped by the broker, unread
            assert max(t.bytes for t in tabs) < 20_000  # no tab was sent the 50 MB
        log = (mosquitto.workdir / "mosquitto.log").read_text(errors="replace")
        assert "Dropping too large outgoing PUBLISH" in log
    finally:
        for tab in tabs:
            tab.close()
        for agent in ("pi-big", "pi-big-2"):  # the broker saves its store every second
            pub.send(STATUS.format(agent), b"", retain=True)
        pub.close()


def test_payloads_over_the_contract_are_dropped_unread_and_strings_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live = LiveState(MqttSettings(), [SITE], "t")
    topic = STATUS.format("pi-1")
    # one byte over the contract, and not even JSON: counted too_large, so never parsed
    assert live.apply(topic, b"{" * (MAX_PAYLOAD_BYTES + 1)) is None
    assert live.rejected_counts() == {"too_large": 1}
    # exactly the contract's limit passes, its sw cut to the bound
    pad = MAX_PAYLOAD_BYTES - len(status(sw=""))
    payload = status(sw="s" * pad).encode()
    assert len(payload) == MAX_PAYLOAD_BYTES
    change = live.apply(topic, payload)
    assert change is not None and change.data["sw"] == "s" * (MAX_SW_CHARS - 1) + "…"
    # an alert's open-ended fields are cut too
    ts = format_ts(now_ms())
    alert = {
        "id": "a1",
        "rule": "r",
        "kind": "over_capacity",
        "severity": "info",
        "state": "firing",
        "scope": {f"k{i}": "v" * 5_000 for i in range(20)},
        "summary": "s",
        "started": ts,
        "ts": ts,
        "acknowledged_by": "b" * 100_000,
    }
    live.apply("footfall/v1/test-site/alert/a1", json.dumps(alert).encode())
    (kept,) = live.snapshot(["test-site"])["test-site"]["alerts"]
    assert len(kept["scope"]) == 8 and {len(v) for v in kept["scope"].values()} == {256}
    assert len(kept["acknowledged_by"]) == 256
    # a topic id that is not an id
    assert live.apply(STATUS.format("Pi_1"), status().encode()) is None
    # at most MAX_PER_SITE agents per site (made small here); known ones still update
    monkeypatch.setattr(live_module, "MAX_PER_SITE", 10)
    for i in range(2, 15):
        live.apply(STATUS.format(f"pi-{i}"), status().encode())
    assert len(live.snapshot(["test-site"])["test-site"]["agents"]) == 10
    assert live.apply(topic, status(state="offline").encode()) is not None
    assert live.rejected_counts() == {"too_large": 1, "bad_topic": 1, "too_many": 4}


def test_bad_mqtt_messages_are_logged_once_a_minute_per_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = [0.0]
    live = LiveState(MqttSettings(), [SITE], "t", clock=lambda: t[0])
    topic = STATUS.format("pi-1")
    caplog.set_level(logging.WARNING, logger="footfall_web.live")
    for _ in range(100):
        live.apply(topic, b"not json")
        live.apply(topic, b"x" * (MAX_PAYLOAD_BYTES + 1))
    for _ in range(10):
        live.apply(STATUS.format("Bad"), b"{}")
    lines = [r.getMessage() for r in caplog.records if r.name == "footfall_web.live"]
    assert len(lines) == 3  # one per reason
    assert sum("bad_payload" in line for line in lines) == 1
    assert sum("too_large" in line for line in lines) == 1
    assert sum("bad_topic" in line for line in lines) == 1
    t[0] = 59.9
    live.apply(topic, b"not json")
    assert len([r for r in caplog.records if r.name == "footfall_web.live"]) == 3
    t[0] = 60.0
    live.apply(topic, b"still not json")
    last = caplog.records[-1].getMessage()
    assert "bad_payload" in last and "and 100 more bad_payload" in last
    assert live.rejected_counts() == {"bad_payload": 102, "too_large": 100, "bad_topic": 10}


def test_bad_messages_through_the_broker_are_counted_in_healthz(
    mosquitto: Mosquitto, influx: Influx, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="footfall_web.live")
    pub = Publisher(mosquitto.port)
    try:
        with (
            web_server(
                web_settings(mosquitto.port, influx.url), [SITE], forecaster_factory=False
            ) as server,
            httpx.Client(base_url=server.url, timeout=10) as http,
        ):
            for i in range(50):
                pub.send(STATUS.format("pi-1"), f"bad {i}")
            pub.send(STATUS.format("pi-2"), status())
            wait_for(lambda: server.web.live.snapshot(["test-site"])["test-site"]["agents"], 10)
            health = http.get("/healthz").json()
            assert health == {"ready": True, "mqtt": True, "mqtt_rejected": {"bad_payload": 50}}
        lines = [r for r in caplog.records if "ignoring bad_payload" in r.getMessage()]
        assert len(lines) == 1
    finally:
        pub.close()


# -- item 13: dates the database cannot hold ------------------------------------------


def test_out_of_range_dates_are_400_not_503(mosquitto: Mosquitto, influx: Influx) -> None:
    empty = connect(InfluxSettings(url=influx.url, database="footfall"))
    empty.ensure_database()
    empty.close()
    with (
        web_server(
            web_settings(mosquitto.port, influx.url), [SITE], forecaster_factory=False
        ) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        history = "/api/v1/sites/test-site/zones/library/history"
        r = http.get(history, params={"from": "0001-01-01T00:00:00+23:59"})
        assert r.status_code == 400 and "from is out of range" in r.json()["detail"]
        # the edges InfluxDB can hold answer (empty), whatever the interval
        edges: list[dict[str, Any]] = [
            {"from": "1970-01-01T00:00:00Z", "to": "1970-01-08T00:00:00Z", "every": "1w"},
            {"from": "2261-12-01T00:00:00Z", "to": "2261-12-31T23:59:59Z", "every": "1d"},
            {"from": "1970-01-01T00:00:00Z", "to": "2261-12-31T00:00:00Z"},
        ]
        for params in edges:
            r = http.get(history, params=params)
            assert r.status_code == 200, (params, r.text)
        visits = "/api/v1/sites/test-site/reports/visits"
        for period in ("2262", "2999", "2262-01", "2300-W01", "2999-12-31"):
            r = http.get(visits, params={"period": period})
            assert r.status_code == 400, (period, r.text)
            assert "2000 to 2261" in r.json()["detail"], (period, r.text)
        assert http.get(visits, params={"period": "2261"}).status_code == 200
        stats = http.get("/api/v1/sites/test-site/reports/statistics", params={"year": "2262"})
        assert stats.status_code == 400 and "2000 to 2261" in stats.json()["detail"]
        page = http.get("/reports/test-site", params={"period": "2500-05"})
        # the page in Finnish (no language asked for): the same range, in its words
        assert page.status_code == 400 and "vuoden on oltava 2000–2261" in page.text
