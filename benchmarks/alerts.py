"""footfall-alerts figures: notification latency, and notifications per real incident.

latency     from the MQTT publish of the triggering zone occupancy to the notification
            arriving at a real webhook receiver (http.server) and a real SMTP server
            (aiosmtpd), through a real Mosquitto and the `footfall-alerts run` process
            (its outbox in SQLite, InfluxDB recording); p50 and p99 per round, medians of
            the rounds quoted. Baseline, measured in the same run: a minimal relay process
            (paho subscriber that POSTs / mails on every over-capacity message, no state,
            no outbox): the floor of MQTT + HTTP/SMTP on this machine.
incidents   a simulated day at Iso Omena (the shipped rules file, virtual time) with
            injected faults: occupancy flapping around capacity, a power cut taking five
            Pis offline, a short Wi-Fi drop, Pis power-saving at night, a solid and a
            flapping beam, a growing backlog, people left counted after closing. Counts
            firing and resolved notifications per real incident (target: exactly one
            each) and pages outside any incident (target: none), against a naive alerter
            on the same events (one message per threshold crossing, no `for`, hysteresis,
            grouping or opening hours).

    .venv/bin/python -m benchmarks.alerts [--incidents 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import urllib3
from paho.mqtt.enums import CallbackAPIVersion

from footfall_alerts.engine import (
    Engine,
    FaultObs,
    HealthObs,
    Notification,
    Observation,
    StatusObs,
    ZoneObs,
    alert_id_for,
)
from footfall_alerts.rules import load_rules
from footfall_contract.site import Site, load_site
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import zone_occupancy_topic
from footfall_sim.localservices import Influx, Mosquitto
from tests.alerts.scenario import local_ms
from tests.alerts.sinks import SmtpSink, WebhookSink
from tests.support.collector import write_site

REPO = Path(__file__).resolve().parents[1]
ZONES = {"library": 250, "kela": 40, "centre": 600}  # the test site's capacities

RULES = """\
site: test-site
group_wait: 0s
receivers:
  mail: {{type: email, to: [facilities@example.org]}}
  hook: {{type: webhook, url: "{hook}"}}
routes:
  - {{receivers: [mail, hook]}}
rules:
  - {{name: full, kind: over_capacity, for: 0s, repeat: null}}
"""


# --- latency --------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def relay_process(mqtt_port: int, hook_url: str, smtp_port: int) -> None:
    """The baseline: every over-capacity (or back below 90%) message straight to the
    webhook and the mail server, nothing kept."""
    http = urllib3.PoolManager()
    state: dict[str, bool] = {}

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        ratio = body.get("ratio") or 0.0
        zone = msg.topic.split("/")[4]
        firing = ratio >= 1.0 or (state.get(zone, False) and ratio > 0.9)
        if firing == state.get(zone, False):
            return
        state[zone] = firing
        text = f"{zone} {'FIRING' if firing else 'RESOLVED'}"
        http.request("POST", hook_url, body=json.dumps({"text": text}).encode())
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = "a@example.org", "b@example.org", text
        mail.set_content(text)
        with smtplib.SMTP("127.0.0.1", smtp_port) as s:
            s.send_message(mail)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-relay")
    client.on_connect = lambda c, *_: c.subscribe("footfall/v1/test-site/zone/+/occupancy", 1)
    client.on_message = on_message
    client.connect("127.0.0.1", mqtt_port)
    client.loop_forever()


def occupancy(count: int, capacity: int) -> str:
    ts = format_ts(time.time_ns() // 1_000_000)
    return json.dumps({"count": count, "capacity": capacity, "ratio": count / capacity, "ts": ts})


def wait(cond: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("no notification within 30 s")
        time.sleep(0.002)


def latency_round(
    port: int, hook: WebhookSink, smtp: SmtpSink, incidents: int
) -> dict[str, list[float]]:
    """Fire and resolve `incidents` times; ms from publish to arrival, per receiver."""
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    out: dict[str, list[float]] = {"webhook": [], "mail": []}
    try:
        for i in range(incidents):
            zone = list(ZONES)[i % len(ZONES)]
            capacity = ZONES[zone]
            for count in (capacity + 5, capacity // 2):  # firing, then resolved
                n_hook, n_mail = len(hook.received_at), len(smtp.received_at)
                t0 = time.time()
                pub.publish(
                    zone_occupancy_topic("test-site", zone), occupancy(count, capacity), 1, True
                )
                wait(
                    lambda h=n_hook, m=n_mail: (
                        len(hook.received_at) > h  # type: ignore[misc]
                        and len(smtp.received_at) > m
                    )
                )
                out["webhook"].append((hook.received_at[n_hook] - t0) * 1000)
                out["mail"].append((smtp.received_at[n_mail] - t0) * 1000)
                time.sleep(0.02)
    finally:
        pub.disconnect()
        pub.loop_stop()
    return out


def latency(incidents: int, rounds: int) -> dict[str, dict[str, tuple[float, float]]]:
    work = Path(tempfile.mkdtemp(prefix="alerts-bench-"))
    broker, influx = Mosquitto(work / "mqtt"), Influx(work / "influx")
    broker.start()
    influx.start()
    results: dict[str, dict[str, list[tuple[float, float]]]] = {
        "alerts": {"webhook": [], "mail": []},
        "baseline": {"webhook": [], "mail": []},
    }
    try:
        for k in range(rounds):
            for who in ("baseline", "alerts"):
                hook, smtp = WebhookSink(), SmtpSink()
                smtp.start()
                proc: subprocess.Popen[bytes] | mp.Process
                if who == "alerts":
                    site = write_site(work)
                    rules = work / "test-site.alerts.yaml"
                    rules.write_text(RULES.format(hook=hook.url()))
                    env = {
                        **os.environ,
                        "FOOTFALL_MQTT__HOST": "127.0.0.1",
                        "FOOTFALL_MQTT__PORT": str(broker.port),
                        "FOOTFALL_INFLUX__URL": influx.url,
                        "FOOTFALL_HTTP__PORT": "0",
                        "FOOTFALL_SMTP__HOST": "127.0.0.1",
                        "FOOTFALL_SMTP__PORT": str(smtp.port),
                        "FOOTFALL_SMTP__SECURITY": "none",
                        "FOOTFALL_STATE_DIR": str(work / f"state-{k}"),
                        "FOOTFALL_CLIENT_ID": f"bench-alerts-{k}",
                    }
                    log = open(work / "alerts.log", "ab")  # noqa: SIM115
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "footfall_alerts.cli", "run", "--site", str(site)],
                        env=env,
                        stderr=log,
                    )
                    log.close()
                    wait(lambda: "connected to MQTT" in (work / "alerts.log").read_text())
                else:
                    proc = mp.Process(
                        target=relay_process, args=(broker.port, hook.url(), smtp.port), daemon=True
                    )
                    proc.start()
                time.sleep(1.0)  # subscribed, retained messages of earlier rounds handled
                try:
                    # Start from every zone below capacity (retained state of earlier rounds).
                    lat = latency_round(broker.port, hook, smtp, incidents)
                finally:
                    proc.terminate()
                    if isinstance(proc, mp.Process):
                        proc.join(10)
                    else:
                        proc.wait(30)
                    hook.close()
                    smtp.stop()
                for receiver, values in lat.items():
                    results[who][receiver].append(
                        (statistics.median(values), percentile(values, 99))
                    )
    finally:
        broker.kill()
        influx.kill()
    return {
        who: {
            r: (statistics.median(p[0] for p in v), statistics.median(p[1] for p in v))
            for r, v in by.items()
        }
        for who, by in results.items()
    }


# --- a simulated day ------------------------------------------------------------------


@dataclass
class Incident:
    name: str
    rule: str
    alert_ids: set[str]
    start: int
    end: int


@dataclass
class Day:
    events: list[tuple[int, Observation]] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)


def simulated_day(site: Site) -> Day:
    """Tuesday 24 Nov 2026 at Iso Omena, 00:00 to 04:00 the next night."""
    day = Day()
    t0 = local_ms(2026, 11, 24)

    def at(h: float) -> int:
        return t0 + round(h * 3_600_000)

    def add(t: int, obs: Observation) -> None:
        day.events.append((t, obs))

    cap = {z.id: z.capacity or 0 for z in site.zones}
    # Windows where a zone's count follows an incident instead of the ordinary day.
    special: dict[str, list[tuple[int, int]]] = {
        "library": [(at(9.5), at(9.5) + 60_000), (at(10.5), at(10.9)), (at(17.0), at(17.4))],
        "kela": [(at(13.0), at(13.55))],
        "centre": [(at(15.0), at(15.2))],
    }
    # Ordinary occupancy: every zone at 40% through opening hours, counts every minute;
    # after closing the library still counts 14 people (sensors missed them leaving)
    # until the 03:00 reset.
    for minute in range(28 * 60):
        t = t0 + minute * 60_000
        hour = minute / 60
        for zone, c in cap.items():
            if any(lo <= t < hi for lo, hi in special.get(zone, [])):
                continue
            count = round(0.4 * c) if 7 <= hour < 20 else 0
            if zone == "library" and 20 <= hour < 27:
                count = 14
            add(t, ZoneObs(zone, count, t))

    def flapping(zone: str, start_h: float, minutes: int, low: float, high: float) -> None:
        for s in range(0, minutes * 60, 10):
            frac = (s // 10 * 7919 % 100) / 100  # deterministic noise
            ratio = low + (high - low) * frac
            t = at(start_h) + s * 1000
            add(t, ZoneObs(zone, round(ratio * cap[zone]), t))
        t = at(start_h) + minutes * 60_000
        add(t, ZoneObs(zone, round(0.5 * cap[zone]), t))

    flapping("library", 10.5, 20, 0.96, 1.04)
    day.incidents.append(
        Incident(
            "library full (morning)",
            "unit-over-capacity",
            {"unit-over-capacity-library"},
            at(10.5),
            at(10.9),
        )
    )
    flapping("kela", 13.0, 30, 0.95, 1.06)
    day.incidents.append(
        Incident("kela full", "unit-over-capacity", {"unit-over-capacity-kela"}, at(13.0), at(13.6))
    )
    flapping("centre", 15.0, 10, 0.97, 1.02)
    day.incidents.append(
        Incident(
            "centre at its limit",
            "centre-over-capacity",
            {"centre-over-capacity-centre"},
            at(15.0),
            at(15.3),
        )
    )
    flapping("library", 17.0, 20, 0.97, 1.05)
    day.incidents.append(
        Incident(
            "library full (evening)",
            "unit-over-capacity",
            {"unit-over-capacity-library"},
            at(17.0),
            at(17.4),
        )
    )
    # Not an incident: a 30 s spike (the rule waits 2 minutes).
    add(at(9.5), ZoneObs("library", 352, at(9.5)))
    add(at(9.5) + 30_000, ZoneObs("library", 140, at(9.5) + 30_000))

    # Agents: health every 30 s while up.
    agents = [f"pi-{i}" for i in range(1, 11)]
    down: dict[str, list[tuple[float, float]]] = {
        **{a: [(12.0, 12.25)] for a in agents[:5]},  # power cut
        "pi-9": [(11.0, 11.0 + 2 / 60)],  # Wi-Fi drop, 2 minutes
        "pi-10": [(0.0, 6.8), (21.0, 28.0)],  # power-saving at night
    }
    for a in agents:
        add(t0, StatusObs(a, a != "pi-10", t0))
        for s in range(0, 28 * 3600, 30):
            h = s / 3600
            t = t0 + s * 1000
            spans = down.get(a, [])
            if any(lo <= h < hi for lo, hi in spans):
                if any(abs(h - lo) < 1e-9 for lo, _ in spans):
                    add(t, StatusObs(a, False, t))  # the Last Will
                continue
            if any(abs(h - hi) < 30 / 3600 and h >= hi for _, hi in spans):
                add(t, StatusObs(a, True, t))
            queue = 3000 if a == "pi-8" and 16.0 <= h < 16.67 else 0
            add(t, HealthObs(a, queue, t))
    day.incidents.append(
        Incident(
            "power cut, 5 Pis",
            "sensor-offline",
            {f"sensor-offline-{a}" for a in agents[:5]},
            at(12.0),
            at(12.5),
        )
    )
    day.incidents.append(
        Incident("backlog on pi-8", "sensor-backlog", {"sensor-backlog-pi-8"}, at(16.0), at(17.0))
    )

    # Beams: a solid block 20 minutes; a flapping one (blocked 60 s every 2 minutes).
    add(at(9.0), FaultObs("pi-6", "kela-door/outer", "beam_blocked", True, at(9.0)))
    add(at(9.33), FaultObs("pi-6", "kela-door/outer", "beam_blocked", False, at(9.33)))
    day.incidents.append(
        Incident(
            "beam blocked", "beam-blocked", {"beam-blocked-pi-6-kela-door-outer"}, at(9.0), at(9.5)
        )
    )
    for k in range(20):
        t = at(14.0) + k * 120_000
        add(t, FaultObs("pi-7", "library-main/inner", "beam_blocked", True, t))
        add(t + 60_000, FaultObs("pi-7", "library-main/inner", "beam_blocked", False, t + 60_000))
    flap = "library-main-inner"
    day.incidents.append(
        Incident(
            "flapping beam (blocked)",
            "beam-blocked",
            {f"beam-blocked-pi-7-{flap}"},
            at(14.0),
            at(14.8),
        )
    )
    day.incidents.append(
        Incident(
            "flapping beam (flapping)",
            "beam-flapping",
            {f"beam-flapping-pi-7-{flap}"},
            at(14.0),
            at(15.3),
        )
    )

    day.incidents.append(
        Incident(
            "count left after closing",
            "count-after-closing",
            {"count-after-closing-library"},
            at(20.0),
            at(27.2),
        )
    )
    day.events.sort(key=lambda e: e[0])
    return day


def run_engine(site: Site, day: Day, receiver: str) -> list[Notification]:
    rules = load_rules(REPO / "deploy" / "sites" / "iso-omena.alerts.yaml", site)
    engine = Engine(site, rules)
    out: list[Notification] = []
    end = day.events[-1][0] + 3_600_000
    now = day.events[0][0]
    i = 0
    while now <= end:
        while i < len(day.events) and day.events[i][0] <= now:
            t, obs = day.events[i]
            out += [e for e in engine.observe(obs, t) if isinstance(e, Notification)]
            i += 1
        out += [e for e in engine.tick(now) if isinstance(e, Notification)]
        now += 5_000
    return [n for n in out if n.receiver == receiver]


def run_naive(site: Site, day: Day) -> list[tuple[int, str, str]]:
    """(ts, event, key): a message whenever a raw condition changes."""
    state: dict[str, bool] = {}
    out: list[tuple[int, str, str]] = []
    cap = {z.id: z.capacity or 0 for z in site.zones}

    def change(t: int, key: str, bad: bool) -> None:
        if state.get(key, False) != bad:
            state[key] = bad
            out.append((t, "firing" if bad else "resolved", key))

    for t, obs in day.events:
        if isinstance(obs, ZoneObs) and cap.get(obs.zone):
            rule = "centre-over-capacity" if obs.zone == "centre" else "unit-over-capacity"
            change(t, alert_id_for(rule, obs.zone), obs.count >= cap[obs.zone])
        elif isinstance(obs, StatusObs):
            change(t, alert_id_for("sensor-offline", obs.agent), not obs.online)
        elif isinstance(obs, HealthObs):
            change(t, alert_id_for("sensor-offline", obs.agent), False)
            change(t, alert_id_for("sensor-backlog", obs.agent), obs.queue_depth >= 2000)
        elif isinstance(obs, FaultObs):
            change(t, alert_id_for("beam-blocked", f"{obs.agent}-{obs.source}"), obs.active)
    return out


def incident_figures(site: Site) -> dict[str, Any]:
    day = simulated_day(site)
    started = time.perf_counter()
    sent = run_engine(site, day, "facilities-mail")
    engine_s = time.perf_counter() - started
    rows = []
    claimed: set[int] = set()
    for inc in day.incidents:
        counts = {"firing": 0, "resolved": 0, "repeat": 0}
        for k, n in enumerate(sent):
            ids = {a["id"] for a in n.alerts}
            if (
                n.rule == inc.rule
                and ids & inc.alert_ids
                and inc.start <= n.ts_ms <= inc.end + 3_600_000
            ):
                if k in claimed:
                    continue
                counts[n.event] += 1
                claimed.add(k)
        rows.append((inc.name, counts))
    stray = [n for k, n in enumerate(sent) if k not in claimed]
    naive = run_naive(site, day)
    naive_offline_at_night = sum(1 for _, e, key in naive if key == "sensor-offline-pi-10")
    naive_stray = [
        (ts, key)
        for ts, _, key in naive
        if not any(
            key in inc.alert_ids and inc.start <= ts <= inc.end + 3_600_000 for inc in day.incidents
        )
    ]
    return {
        "rows": rows,
        "stray": stray,
        "sent": len(sent),
        "naive": len(naive),
        "naive_night": naive_offline_at_night,
        "naive_stray": naive_stray,
        "incidents": len(day.incidents),
        "events": len(day.events),
        "engine_s": engine_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=40, help="fire+resolve cycles per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-latency", action="store_true")
    args = ap.parse_args()

    site = load_site(REPO / "deploy" / "sites" / "iso-omena.yaml")
    fig = incident_figures(site)
    print(
        f"simulated day: {fig['events']} events, {fig['incidents']} real incidents, "
        f"engine {fig['engine_s']:.1f} s"
    )
    exact = 0
    for name, counts in fig["rows"]:
        ok = counts["firing"] == 1 and counts["resolved"] == 1
        exact += ok
        print(
            f"  {name:32s} firing {counts['firing']}  resolved {counts['resolved']}  "
            f"repeats {counts['repeat']}  {'OK' if ok else 'MISS'}"
        )
    print(f"  incidents with exactly one firing and one resolved: {exact} of {fig['incidents']}")
    print(
        f"  notifications outside any incident: {len(fig['stray'])} (naive baseline: "
        f"{len(fig['naive_stray'])}: {sorted({k for _, k in fig['naive_stray']})})"
    )
    for n in fig["stray"]:
        print(f"    {format_ts(n.ts_ms)} {n.event} {[a['id'] for a in n.alerts]}")
    per = fig["sent"] / fig["incidents"]
    naive_per = fig["naive"] / fig["incidents"]
    print(
        f"  notifications per incident: {per:.2f} (footfall-alerts) vs {naive_per:.2f} (naive "
        f"baseline), ratio {per / naive_per:.3f}; naive paged {fig['naive_night']} times for "
        "a Pi power-saving at night"
    )
    if args.skip_latency:
        return
    lat = latency(args.incidents, args.rounds)
    print(
        f"latency, publish -> arrival, {args.incidents * 2} notifications a round, "
        f"medians of {args.rounds} rounds:"
    )
    for receiver in ("webhook", "mail"):
        a50, a99 = lat["alerts"][receiver]
        b50, b99 = lat["baseline"][receiver]
        print(
            f"  {receiver:8s} footfall-alerts p50 {a50:.1f} ms p99 {a99:.1f} ms | baseline relay "
            f"p50 {b50:.1f} ms p99 {b99:.1f} ms | ratio p50 {a50 / b50:.2f}x p99 {a99 / b99:.2f}x"
        )


if __name__ == "__main__":
    main()
