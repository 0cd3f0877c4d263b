"""footfall-web for tests and benchmarks: the server (uvicorn in a thread on a free port),
site variants with fixed opening hours, seeded occupancy, and where screenshots go
(Chromium itself: tests/support/browser.py)."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from footfall_collector.config import InfluxSettings
from footfall_collector.influx import connect
from footfall_contract.site import Site, parse_site
from footfall_contract.timefmt import format_ts
from footfall_sim.localservices import Influx, Mosquitto, free_port, wait_port
from footfall_web.app import ForecasterFactory, Web, create_app
from footfall_web.cli import proxy_settings
from footfall_web.config import WebSettings
from tests.support.collector import SITE_YAML, now_ms
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

_HOURS = 'opening_hours: {mon-fri: "08:00-20:00", sat: "10:00-16:00"}'


def occupancy(count: int, capacity: int | None = 250, ts_ms: int | None = None) -> str:
    """A retained zone occupancy payload (docs/spec.md §2) as the collector publishes it."""
    return json.dumps(
        {
            "count": count,
            "capacity": capacity,
            "ratio": None if capacity is None else round(count / capacity, 4),
            "ts": format_ts(ts_ms if ts_ms is not None else now_ms()),
        }
    )


PUBLIC: tuple[str, ...] = ("centre", "library", "kela")
"""The zones with a public display in `site_with_hours` (youth has none by default)."""


def site_with_hours(
    hours: str, site_id: str = "test-site", public: tuple[str, ...] = PUBLIC
) -> Site:
    """The collector tests' site (same zones and doors) with other opening hours, e.g.
    '{mon-sun: "00:00-24:00"}' (always open) or '{mon-sun: closed}' (never), and a public
    display (`public: true`) for the zones in `public`."""
    text = SITE_YAML.replace(_HOURS, f"opening_hours: {hours}")
    text = text.replace("site: test-site", f"site: {site_id}")
    for zone in public:
        marked = text.replace(f"{{id: {zone}, ", f"{{id: {zone}, public: true, ", 1)
        assert marked != text, f"no zone {zone!r} in the test site"
        text = marked
    return parse_site(text, f"{site_id}.yaml")


ALWAYS_OPEN = '{mon-sun: "00:00-24:00"}'
NEVER_OPEN = "{mon-sun: closed}"


def web_settings(mqtt_port: int, influx_url: str, **overrides: Any) -> WebSettings:
    data: dict[str, Any] = {
        "mqtt": {
            "host": "127.0.0.1",
            "port": mqtt_port,
            "reconnect_min_s": 1,
            "reconnect_max_s": 1,
        },
        "influx": {"url": influx_url, "database": "footfall", "timeout_s": 5},
        "http": {"host": "127.0.0.1", "port": 0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return WebSettings(**data)


class WebServer:
    """The real app under uvicorn on a free port, in a thread of the test process.
    `host` is where it listens (0.0.0.0 for the bind-policy test); tests connect to
    127.0.0.1."""

    def __init__(
        self,
        settings: WebSettings,
        sites: list[Site],
        *,
        forecaster_factory: ForecasterFactory | bool | None = True,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.port = settings.http.port or free_port()
        self.web = Web(settings, sites, forecaster_factory=forecaster_factory, now=now)
        self.app = create_app(self.web)
        config = uvicorn.Config(
            self.app,
            host=settings.http.host,
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=1,
            lifespan="on",
            **proxy_settings(settings),  # as `footfall-web run`
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="footfall-web", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> WebServer:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise TimeoutError("footfall-web did not start")
            time.sleep(0.02)
        wait_port(self.port, timeout_s)
        if not self.web.live.connected.wait(timeout_s):
            raise TimeoutError("footfall-web did not connect to MQTT")
        return self

    def stop(self) -> None:
        self.web.close_streams()
        self.server.should_exit = True
        self.thread.join(15)
        assert not self.thread.is_alive(), "footfall-web did not stop"


@contextmanager
def web_server(
    settings: WebSettings,
    sites: list[Site],
    *,
    forecaster_factory: ForecasterFactory | bool | None = True,
    now: Callable[[], float] = time.time,
) -> Iterator[WebServer]:
    server = WebServer(settings, sites, forecaster_factory=forecaster_factory, now=now).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def board(
    mqtt_port: int,
    influx_url: str,
    sites: list[Site],
    *,
    now: Callable[[], float] = time.time,
    timeout_s: float = 30.0,
) -> Iterator[tuple[WebServer, httpx.Client]]:
    """footfall-web with the tests' settings for `sites`, and an HTTP client on it."""
    with (
        web_server(web_settings(mqtt_port, influx_url), sites, now=now) as server,
        httpx.Client(base_url=server.url, timeout=timeout_s) as http,
    ):
        yield server, http


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.png"


def seed_occupancy(
    influx_url: str, site: Site, zone: str, points: Iterable[tuple[float, int]]
) -> None:
    """Write `occupancy` (live) and `occupancy_history` (event time, what the history
    and the forecast read) points (epoch seconds, count) as the collector would."""
    from footfall_collector.config import InfluxSettings
    from footfall_collector.influx import connect
    from footfall_collector.points import Point
    from footfall_collector.schema import OCCUPANCY, occupancy_history_point

    capacity = site.zone(zone).capacity
    extra = {"capacity": capacity} if capacity else {}
    lines = []
    for t, count in points:
        time_ns = int(t * 1000) * 1_000_000
        tags = {"site": site.site, "zone": zone}
        lines.append(Point(OCCUPANCY, tags, {"count": count, **extra}, time_ns).line())
        lines.append(occupancy_history_point(site.site, zone, count, 0, time_ns).line())
    influx = connect(InfluxSettings(url=influx_url, database="footfall"))
    try:
        influx.ensure_database()
        influx.write(lines)
    finally:
        influx.close()


def seed_typical(
    influx_url: str,
    site: Site,
    zone: str,
    *,
    peak_hour: int = 15,
    peak_count: int = 200,
    weeks: int = 4,
    now_s: float | None = None,
) -> None:
    """Occupancy history on the past `weeks` same weekdays as today (site-local): 0 at
    the day's reset, then every 15 minutes from 06:00 to 22:00, rising linearly to
    `peak_count` at `peak_hour`:00."""
    today = dt.datetime.fromtimestamp(now_s or time.time(), site.tz).date()
    points = []
    for week in range(1, weeks + 1):
        day = today - dt.timedelta(days=7 * week)
        points.append((dt.datetime.combine(day, site.reset_time(), site.tz).timestamp(), 0))
        for minute in range(6 * 60, 22 * 60, 15):
            local = dt.datetime.combine(day, dt.time(minute // 60, minute % 60), site.tz)
            distance = abs(minute - peak_hour * 60) / 60
            points.append((local.timestamp(), max(0, round(peak_count * (1 - distance / 9)))))
    seed_occupancy(influx_url, site, zone, points)


def seed_recent(influx_url: str, site: Site, zone: str, hours: float = 6, peak: int = 120) -> None:
    """A wave of occupancy over the last `hours`, one point a minute (for sparklines)."""
    now = time.time()
    minutes = int(hours * 60)
    points = [
        (now - (minutes - m) * 60, round(peak * (0.55 + 0.45 * math.sin(m / 40))))
        for m in range(minutes)
    ]
    seed_occupancy(influx_url, site, zone, points)


@contextmanager
def web_process(
    sites: list[str], mosquitto: Mosquitto, influx: Influx, log: Path, **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client]]:
    """`footfall-web run` with `sites` (`["--site", FILE]` or `["--sites-dir", DIR]`) as a
    process, the way users start it, up and connected to the broker (the database made as
    the collector makes it); `env`: more FOOTFALL_* settings."""
    database = connect(InfluxSettings(url=influx.url, database="footfall"))
    try:
        database.ensure_database()
    finally:
        database.close()
    port = free_port()
    settings = {
        "FOOTFALL_MQTT__HOST": "127.0.0.1",
        "FOOTFALL_MQTT__PORT": str(mosquitto.port),
        "FOOTFALL_INFLUX__URL": influx.url,
        "FOOTFALL_HTTP__HOST": "127.0.0.1",
        "FOOTFALL_HTTP__PORT": str(port),
    }
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "footfall_web.cli", "run", *sites],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, **settings, **env},
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

            def healthy() -> bool:
                assert proc.poll() is None, log.read_text()
                try:
                    return http.get("/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            eventually(healthy, 30, "footfall-web up and connected to MQTT")
            yield proc, http
    finally:
        proc.send_signal(signal.SIGTERM)  # nothing if the test stopped it already
        assert proc.wait(20) == 0, log.read_text()
