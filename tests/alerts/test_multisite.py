"""footfall-alerts over a site folder (`--sites-dir`): one process, one MQTT session, and
per site its own rules, time zone, opening hours and state. Real Mosquitto and InfluxDB, a
webhook receiver on loopback; each site's receiver posts to its own path, so what each
site sent is counted apart.

The sites' time zones are chosen from the clock when the test runs: "open" sites are at
about 12:00 local time and "closed" ones at about 23:00 (open 08:00-20:00 every day,
daily reset 03:00), so the closed-hours rules mean the same whenever the test runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from footfall_alerts.cli import start_with_api
from footfall_alerts.config import AlertsSettings
from footfall_alerts.service import AlertsService
from footfall_alerts.sitewatch import SiteWatcher
from footfall_contract.shards import client_id, parse_shard
from footfall_contract.sitefolder import SiteFolder
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import agent_topic, zone_occupancy_topic
from footfall_sim.localservices import Influx, Mosquitto, free_port
from tests.alerts.sinks import WebhookSink
from tests.support.collector import Publisher, now_ms
from tests.support.waiting import eventually

pytestmark = pytest.mark.services


def tz_at(local_hour: int) -> str:
    """A fixed-offset zone whose local time is now `local_hour`:mm (Etc/GMT-3 is UTC+3)."""
    offset = (local_hour - time.gmtime().tm_hour) % 24
    if offset > 14:
        offset -= 24
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


OPEN, CLOSED = 12, 23


def site_yaml(site: str, local_hour: int) -> str:
    return f"""\
site: {site}
name: {site.title()} Centre
timezone: {tz_at(local_hour)}
reset_at: "03:00"
opening_hours: {{mon-sun: "08:00-20:00"}}
zones:
  - {{id: hall, name: Hall, capacity: 10}}
doors:
  - {{id: main, outside: null, inside: hall}}
"""


def rules_yaml(site: str, hook: WebhookSink, fire_at: float) -> str:
    return f"""\
site: {site}
group_wait: 0.2s
receivers:
  hook: {{type: webhook, url: "{hook.url("/" + site)}"}}
routes:
  - {{receivers: [hook]}}
rules:
  - {{name: hall-full, kind: over_capacity, zones: [hall], fire_at: {fire_at}, clear_at: 0.1,
     for: 0s}}
  - {{name: pi-offline, kind: agent_offline, for: 0s, clear_for: 0s}}
  - {{name: after-close, kind: drift_after_close, zones: [hall], fire_at: 5, clear_at: 2,
     grace: 0s}}
"""


def write_site(folder: Path, site: str, local_hour: int, hook: WebhookSink, fire_at: float) -> None:
    (folder / f"{site}.yaml").write_text(site_yaml(site, local_hour))
    (folder / f"{site}.alerts.yaml").write_text(rules_yaml(site, hook, fire_at))


BROKEN = """\
site: broken
name: Broken
timezone: Europe/Helsinki
zones: nothing
"""


def occupancy(count: int) -> str:
    return json.dumps(
        {"count": count, "capacity": 10, "ratio": count / 10, "ts": format_ts(now_ms())}
    )


def status(state: str) -> str:
    return json.dumps({"state": state, "epoch": "e1", "ts": format_ts(now_ms()), "sw": "1"})


def settings_for(tmp_path: Path, mosquitto: Mosquitto, influx: Influx) -> AlertsSettings:
    return AlertsSettings(
        mqtt={"host": "127.0.0.1", "port": mosquitto.port, "reconnect_min_s": 1},
        influx={"url": influx.url, "database": "footfall"},
        http={"host": "127.0.0.1", "port": 0},
        delivery={"retry_min_s": 0.3, "retry_max_s": 1.0},
        state_dir=tmp_path / "state",
        tick_s=0.1,
    )


def firing(service: AlertsService, site: str) -> list[str]:
    return sorted(
        a["id"] for a in service.snapshot_alerts(site)["alerts"] if a["state"] == "firing"
    )


def events(hook: WebhookSink, site: str) -> list[tuple[str, str, list[str]]]:
    """(event, rule, alert ids) of every webhook POST of one site, in order."""
    return [
        (b["event"], b["rule"], [a["id"] for a in b["alerts"]]) for b in hook.bodies("/" + site)
    ]


def metric(service: AlertsService, name: str, **labels: str) -> float | None:
    return service.metrics.registry.get_sample_value(f"footfall_alerts_{name}", labels)


def test_one_service_many_sites_each_with_its_rules_hours_and_state(
    mosquitto: Mosquitto, influx: Influx, hook: WebhookSink, tmp_path: Path
) -> None:
    sites = tmp_path / "sites"
    sites.mkdir()
    write_site(sites, "north", OPEN, hook, fire_at=1.0)
    write_site(sites, "south", CLOSED, hook, fire_at=0.5)
    (sites / "broken.yaml").write_text(BROKEN)
    service = AlertsService(settings_for(tmp_path, mosquitto, influx))
    watcher = SiteWatcher(SiteFolder(sites), service)
    watcher.scan()  # the test scans by hand: each step is one reload (the CLI test: SIGHUP)
    assert service.site_ids() == ["north", "south"]
    assert list(service.refused) == [str(sites / "broken.yaml")]
    assert service.refused[str(sites / "broken.yaml")].startswith(f"{sites / 'broken.yaml'}:4: ")
    assert service.intake.client_id == "footfall-alerts-all"
    start_with_api(service)
    pub = Publisher(mosquitto.port)
    try:
        assert service.ready.wait(10), "footfall-alerts did not connect"
        # 6 people of 10 in each hall: over south's rule (50%), not north's (100%); south
        # is closed (23:xx local), so 6 people still counted there is drift after close.
        for site in ("north", "south"):
            pub.send(zone_occupancy_topic(site, "hall"), occupancy(6), retain=True)
        eventually(lambda: firing(service, "south") == ["after-close-hall", "hall-full-hall"])
        eventually(lambda: service.unit("north").engine.facts.zones.get("hall", (0,))[0] == 6)
        assert firing(service, "north") == []

        # A Pi goes offline at each site: north is open (fires), south closed (does not).
        pub.send(agent_topic("south", "pi-s", "status"), status("offline"), retain=True)
        pub.send(agent_topic("north", "pi-n", "status"), status("offline"), retain=True)
        eventually(lambda: firing(service, "north") == ["pi-offline-pi-n"])
        eventually(lambda: not service.unit("south").engine.facts.agents["pi-s"]["online"])
        assert firing(service, "south") == ["after-close-hall", "hall-full-hall"]
        eventually(lambda: len(hook.bodies()) == 3, what="three webhooks")
        assert events(hook, "north") == [("firing", "pi-offline", ["pi-offline-pi-n"])]
        assert sorted(events(hook, "south")) == [
            ("firing", "after-close", ["after-close-hall"]),
            ("firing", "hall-full", ["hall-full-hall"]),
        ]
        # Each notification carries its own site's time zone.
        for site, hour in (("north", OPEN), ("south", CLOSED)):
            bodies = [e["body"] for e in service.unit(site).store.entries("receiver:hook")]
            assert {(b["site"], b["timezone"]) for b in bodies} == {(site, tz_at(hour))}

        # The whole listing: every alert names its site. South's Pi is pending: its
        # rule waits for south's opening hours, not north's.
        listing = httpx.get(f"http://127.0.0.1:{service.http.port}/api/v1/alerts").json()
        assert listing["sites"] == ["north", "south"]
        assert sorted((a["site"], a["id"], a["state"]) for a in listing["alerts"]) == [
            ("north", "pi-offline-pi-n", "firing"),
            ("south", "after-close-hall", "firing"),
            ("south", "hall-full-hall", "firing"),
            ("south", "pi-offline-pi-s", "pending"),
        ]

        # A third site added while running: served on the next scan, subscribed.
        write_site(sites, "east", OPEN, hook, fire_at=1.0)
        watcher.scan()
        assert service.site_ids() == ["east", "north", "south"]
        pub.send(zone_occupancy_topic("east", "hall"), occupancy(12), retain=True)
        eventually(lambda: firing(service, "east") == ["hall-full-hall"])
        eventually(lambda: len(hook.bodies("/east")) == 1, what="east's webhook")
        assert events(hook, "east") == [("firing", "hall-full", ["hall-full-hall"])]
        # The metrics say which site alerts: per site, the alerts firing now and the
        # transitions so far (the ticker sets the gauges).
        eventually(
            lambda: (
                [metric(service, "firing", site=s) for s in ("east", "north", "south")] == [1, 1, 2]
            ),
            what="firing per site",
        )
        assert [
            metric(service, "transitions_total", site=s, state="firing")
            for s in ("east", "north", "south")
        ] == [1, 1, 2]

        # North's rules changed: reloaded from its saved state (pi-n stays firing, not
        # notified again, and the hall's count of 6 is kept), and its new threshold (50%)
        # applies at once to that count, at its next evaluation.
        write_site(sites, "north", OPEN, hook, fire_at=0.5)
        watcher.scan()
        assert "pi-offline-pi-n" in firing(service, "north")
        assert service.unit("north").engine.facts.zones["hall"][0] == 6
        eventually(lambda: firing(service, "north") == ["hall-full-hall", "pi-offline-pi-n"])
        pub.send(zone_occupancy_topic("north", "hall"), occupancy(7), retain=True)
        eventually(lambda: service.unit("north").engine.facts.zones["hall"][0] == 7)
        assert firing(service, "north") == ["hall-full-hall", "pi-offline-pi-n"]
        eventually(lambda: len(hook.bodies("/north")) == 2, what="north's second webhook")
        assert events(hook, "north") == [
            ("firing", "pi-offline", ["pi-offline-pi-n"]),
            ("firing", "hall-full", ["hall-full-hall"]),
        ]

        # South's site file broken: refused by name, south keeps its last good version.
        (sites / "south.yaml").write_text(site_yaml("south", CLOSED) + "  - {id: x\n")
        watcher.scan()
        watcher.scan()
        assert service.site_ids() == ["east", "north", "south"]
        assert sorted(service.refused) == [str(sites / "broken.yaml"), str(sites / "south.yaml")]
        pub.send(zone_occupancy_topic("south", "hall"), occupancy(1), retain=True)
        eventually(lambda: firing(service, "south") == [])
        eventually(lambda: len(hook.bodies("/south")) == 4, what="south's resolved webhooks")
        assert sorted(events(hook, "south")[2:]) == [
            ("resolved", "after-close", ["after-close-hall"]),
            ("resolved", "hall-full", ["hall-full-hall"]),
        ]

        # East removed: no longer served; its state file stays.
        (sites / "east.yaml").unlink()
        watcher.scan()
        assert service.site_ids() == ["north", "south"]
        assert (tmp_path / "state" / "east.sqlite3").is_file()
        with pytest.raises(KeyError):
            service.snapshot_alerts("east")
        eventually(lambda: metric(service, "open", site="east") is None, what="east's gauges gone")
        assert metric(service, "firing", site="east") is None
        assert metric(service, "firing", site="north") == 2
        # everything was delivered: no outbox entry open anywhere (0, or never shown)
        for s in ("north", "south"):
            assert metric(service, "outbox_open", site=s, channel="receiver:hook") in (None, 0)

        # Nothing else was sent anywhere: one notification per transition and site.
        assert [len(hook.bodies("/" + s)) for s in ("north", "south", "east")] == [2, 4, 1]
        assert len(hook.bodies()) == 7
    finally:
        pub.client.disconnect()
        service.stop()


def test_client_ids() -> None:
    assert client_id("footfall-alerts", "iso-omena", None) == "footfall-alerts-iso-omena"
    assert client_id("footfall-alerts", None, None) == "footfall-alerts-all"
    assert client_id("footfall-alerts", None, parse_shard("2/4")) == "footfall-alerts-shard-2-of-4"


def _env(tmp_path: Path, mosquitto: Mosquitto, influx: Influx, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "FOOTFALL_MQTT__HOST": "127.0.0.1",
        "FOOTFALL_MQTT__PORT": str(mosquitto.port),
        "FOOTFALL_INFLUX__URL": influx.url,
        "FOOTFALL_HTTP__HOST": "127.0.0.1",
        "FOOTFALL_HTTP__PORT": str(port),
        "FOOTFALL_STATE_DIR": str(tmp_path / "state"),
        "FOOTFALL_SITES__POLL_S": "600",
        "FOOTFALL_TICK_S": "0.1",
    }


def _get(url: str) -> Any:
    try:
        return httpx.get(url, timeout=2).json()
    except httpx.HTTPError:
        return None


def test_cli_sites_dir_reloads_on_sighup_and_serves_each_site_under_its_path(
    mosquitto: Mosquitto, influx: Influx, hook: WebhookSink, tmp_path: Path
) -> None:
    sites = tmp_path / "sites"
    sites.mkdir()
    write_site(sites, "north", OPEN, hook, fire_at=1.0)
    (sites / "broken.yaml").write_text(BROKEN)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "alerts.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "footfall_alerts.cli", "run", "--sites-dir", str(sites)],
            env=_env(tmp_path, mosquitto, influx, port),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    pub = Publisher(mosquitto.port)
    try:
        eventually(lambda: (_get(f"{base}/healthz") or {}).get("ready"), 20, "/healthz ready")
        health: dict[str, Any] = _get(f"{base}/healthz")
        assert list(health["sites"]) == ["north"]
        assert list(health["refused"]) == [str(sites / "broken.yaml")]
        assert health["shard"] is None

        write_site(sites, "south", CLOSED, hook, fire_at=0.5)
        proc.send_signal(signal.SIGHUP)
        eventually(
            lambda: list((_get(f"{base}/healthz") or {}).get("sites", {})) == ["north", "south"]
        )
        proc.send_signal(signal.SIGHUP)  # the broken file again: not logged again
        pub.send(zone_occupancy_topic("south", "hall"), occupancy(6), retain=True)
        eventually(
            lambda: (
                sorted(a["id"] for a in _get(f"{base}/sites/south/api/v1/alerts")["alerts"])
                == ["after-close-hall", "hall-full-hall"]
            ),
            what="south's alerts",
        )
        assert _get(f"{base}/sites/north/api/v1/alerts") == {
            "site": "north",
            "alerts": [],
            "silences": [],
        }
        assert httpx.get(f"{base}/sites/nowhere/api/v1/alerts").status_code == 404
        # The board's actions go to /sites/{site}/... (alerts.url with "{site}").
        silence = {"matchers": {"zone": "hall"}, "by": "ops", "reason": "test", "duration": "1h"}
        assert httpx.post(f"{base}/api/v1/silences", json=silence).status_code == 422
        made = httpx.post(f"{base}/sites/south/api/v1/silences", json=silence)
        assert made.status_code == 201
        assert [s["id"] for s in _get(f"{base}/sites/south/api/v1/silences")] == [made.json()["id"]]
        assert _get(f"{base}/sites/north/api/v1/silences") == []
        ack = httpx.post(
            f"{base}/api/v1/alerts/hall-full-hall/ack", json={"by": "ops", "reason": "seen"}
        )
        assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "ops"
    finally:
        pub.client.disconnect()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    text = log.read_text()
    assert "MQTT client id footfall-alerts-all" in text
    assert text.count(f"{sites / 'broken.yaml'}:4: ") == 1, text


def test_cli_refuses_a_folder_without_a_valid_site(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(BROKEN)
    done = subprocess.run(
        [sys.executable, "-m", "footfall_alerts.cli", "run", "--sites-dir", str(tmp_path)],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            "FOOTFALL_STATE_DIR": str(tmp_path / "s"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{tmp_path / 'broken.yaml'}:4: " in done.stderr
