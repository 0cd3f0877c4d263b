"""footfall-web figures in a real headless Chromium, with the real collector and server.

One run measures:
  live latency   a crossing published to MQTT -> the number changing on the live board,
                 timed in the browser (a MutationObserver notes performance.timeOrigin +
                 performance.now()) against the publish time (p50, p99); baseline: the
                 same crossing -> the collector's retained occupancy reaching a plain MQTT
                 subscriber (the floor any MQTT-fed board has to wait for);
  page weight    every resource of the public crowding display (KB: bodies, and bytes
                 transferred with headers and gzip),
                 against the login page (HTML and CSS, no script);
  first render   first-contentful-paint of the crowding display, cold cache, median of
                 loads, against the login page.

The collector (`footfall-collector run`) and the web server (`footfall-web run`) run as
their own processes, as deployed; Mosquitto and InfluxDB as in the tests.

    .venv/bin/python -m benchmarks.web [--crossings 60] [--loads 11]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, Page, sync_playwright

from footfall_sim.localservices import Influx, Mosquitto, free_port
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.collector import Publisher, crossing_batch, write_site
from tests.support.web import ALWAYS_OPEN, seed_typical, site_with_hours

ZONE_TOPIC = "footfall/v1/test-site/zone/library/occupancy"
CROSSING_TOPIC = "footfall/v1/test-site/agent/bench-pi/crossing"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def wait_http(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout_s} s")


class Baseline:
    """A plain MQTT subscriber to the library's retained occupancy: arrival times by count."""

    def __init__(self, port: int) -> None:
        self.arrivals: dict[int, float] = {}
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: c.subscribe(ZONE_TOPIC, qos=1)
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._ready.wait(10)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time() * 1000
        count = json.loads(msg.payload)["count"]
        self.arrivals.setdefault(count, now)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


OBSERVE = """() => {
  window.__changes = [];
  const el = document.querySelector('#count-test-site-library');
  new MutationObserver(() => {
    window.__changes.push([el.textContent, performance.timeOrigin + performance.now()]);
  }).observe(el, {childList: true, characterData: true, subtree: true});
}"""


def live_latency(
    browser: Browser, web_url: str, mqtt_port: int, crossings: int
) -> tuple[list[float], list[float]]:
    baseline = Baseline(mqtt_port)
    pub = Publisher(mqtt_port)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(web_url + "/")
        page.wait_for_function("() => document.querySelector('#conn').textContent === 'live'")
        page.wait_for_function(
            "() => document.querySelector('#count-test-site-library').textContent === '0'"
        )
        page.evaluate(OBSERVE)
        sent: dict[int, float] = {}
        for n in range(1, crossings + 1):
            sent[n] = time.time() * 1000
            pub.send(CROSSING_TOPIC, crossing_batch("bench", [(n, "library-mall", "in")]))
            page.wait_for_function(
                "n => window.__changes.some(c => c[0] == n)", arg=n, timeout=10_000
            )
            time.sleep(0.25)
        changes: list[list[Any]] = page.evaluate("() => window.__changes")
        shown = {int(text): at for text, at in changes if text.isdigit()}
        web = [shown[n] - sent[n] for n in sent]
        base = [baseline.arrivals[n] - sent[n] for n in sent if n in baseline.arrivals]
        return web, base
    finally:
        context.close()
        pub.close()
        baseline.close()


def load_page(browser: Browser, url: str) -> tuple[float, int, int, list[str]]:
    """(first-contentful-paint ms, bytes of all response bodies, bytes transferred with
    headers and gzip, URLs) of one cold load."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="fi-FI")
    page: Page = context.new_page()
    responses: list[Any] = []
    page.on("response", lambda response: responses.append(response))
    try:
        page.goto(url, wait_until="networkidle")
        sizes: dict[str, tuple[int, int]] = {}
        for response in responses:
            wire = response.request.sizes()
            sizes[response.url] = (
                len(response.body()),
                wire["responseBodySize"] + wire["responseHeadersSize"],
            )
        fcp = page.evaluate(
            "() => new Promise(resolve => { const e = performance.getEntriesByName("
            "'first-contentful-paint'); if (e.length) return resolve(e[0].startTime); "
            "new PerformanceObserver(l => resolve(l.getEntries()[0].startTime))"
            ".observe({type: 'paint', buffered: true}); })"
        )
        return (
            float(fcp),
            sum(b for b, _ in sizes.values()),
            sum(w for _, w in sizes.values()),
            sorted(sizes),
        )
    finally:
        context.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crossings", type=int, default=60, help="crossings timed on the board")
    ap.add_argument("--loads", type=int, default=11, help="cold loads per page (median quoted)")
    args = ap.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit(f"{CHROMIUM} is not installed (apt-get install chromium)")

    with tempfile.TemporaryDirectory(prefix="footfall-web-bench-") as tmp:
        folder = Path(tmp)
        broker, influx = Mosquitto(folder / "mosquitto"), Influx(folder / "influxdb")
        broker.start()
        influx.start()
        site = site_with_hours(ALWAYS_OPEN)
        web_site = folder / "web-site.yaml"
        web_site.write_text(site.model_dump_json())  # JSON is YAML
        seed_typical(influx.url, site, "library")
        web_port = free_port()
        env = {
            "FOOTFALL_MQTT__HOST": "127.0.0.1",
            "FOOTFALL_MQTT__PORT": str(broker.port),
            "FOOTFALL_INFLUX__URL": influx.url,
            "FOOTFALL_HTTP__PORT": "0",
        }
        web_url = f"http://127.0.0.1:{web_port}"
        try:
            with (
                process(
                    [
                        sys.executable,
                        "-m",
                        "footfall_collector.cli",
                        "run",
                        "--site",
                        str(write_site(folder)),
                    ],
                    {**env, "FOOTFALL_INGEST__FLUSH_INTERVAL_S": "0.05"},
                    folder / "collector.log",
                ),
                process(
                    [sys.executable, "-m", "footfall_web.cli", "run", "--site", str(web_site)],
                    {**env, "FOOTFALL_HTTP__PORT": str(web_port)},
                    folder / "web.log",
                ),
                sync_playwright() as p,
            ):
                wait_http(web_url + "/healthz")
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    web, base = live_latency(browser, web_url, broker.port, args.crossings)
                    crowd, login = [], []
                    for _ in range(args.loads):  # interleaved: noise hits both alike
                        crowd.append(load_page(browser, web_url + "/crowding/test-site/library"))
                        login.append(load_page(browser, web_url + "/login"))
                finally:
                    browser.close()
        finally:
            broker.kill()
            influx.kill()

    web_p50, base_p50 = statistics.median(web), statistics.median(base)
    print(f"live board, crossing -> number on screen ({len(web)} crossings):")
    print(f"  board     p50 {web_p50:6.0f} ms   p99 {percentile(web, 99):6.0f} ms")
    print(
        f"  baseline  p50 {base_p50:6.0f} ms   p99 {percentile(base, 99):6.0f} ms"
        "   (collector's retained occupancy at a plain MQTT subscriber)"
    )
    print(
        f"  ratio     {web_p50 / base_p50:.2f}x (p50), board cost on top: "
        f"{web_p50 - base_p50:.0f} ms"
    )
    crowd_kb = statistics.median(c[1] for c in crowd) / 1024
    login_kb = statistics.median(c[1] for c in login) / 1024
    crowd_wire = statistics.median(c[2] for c in crowd) / 1024
    login_wire = statistics.median(c[2] for c in login) / 1024
    print(
        f"public display page weight: {crowd_kb:.1f} KB in {len(crowd[0][3])} resources, "
        f"{crowd_wire:.1f} KB transferred (gzip, headers); login page {login_kb:.1f} KB, "
        f"{login_wire:.1f} KB transferred; ratio {crowd_wire / login_wire:.1f}x transferred"
    )
    for url in crowd[0][3]:
        print(f"  {url}")
    crowd_fcp = statistics.median(c[0] for c in crowd)
    login_fcp = statistics.median(c[0] for c in login)
    print(
        f"first contentful paint (median of {args.loads} cold loads): crowding "
        f"{crowd_fcp:.0f} ms, login page {login_fcp:.0f} ms, ratio {crowd_fcp / login_fcp:.2f}x"
    )


if __name__ == "__main__":
    main()
