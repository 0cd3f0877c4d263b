"""footfall-alerts over the two shipped site folders' files (deploy/sites/*.yaml with
their *.alerts.yaml, copied) and a third site added while running, against real
Mosquitto and InfluxDB, an SMTP server and a webhook receiver on loopback. Zone occupancy
comes as the collector publishes it (retained, `Occupancy`); the service runs on a clock
set by hand, on a Tuesday at 12:00 in Helsinki (every site open, no quiet hours), so no
rule depends on when the test runs and the shipped `group_wait: 30s` passes at once."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from footfall_alerts.cli import start_with_api
from footfall_alerts.config import AlertsSettings
from footfall_alerts.service import AlertsService
from footfall_alerts.sitewatch import SiteWatcher
from footfall_contract.messages import Alert, Occupancy
from footfall_contract.site import Site, load_site
from footfall_contract.sitefolder import SiteFolder
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import alert_subscription, alert_topic, zone_occupancy_topic
from footfall_sim.localservices import Influx, Mosquitto
from tests.alerts.sinks import SmtpSink, WebhookSink
from tests.support.collector import SITE_YAML, FakeClock, Publisher
from tests.support.mqtt import Recorder
from tests.support.waiting import eventually

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ["iso-omena", "kalajarvi"]
HELSINKI = ZoneInfo("Europe/Helsinki")
START_MS = int(datetime(2026, 11, 24, 12, 0, 0, tzinfo=HELSINKI).timestamp() * 1000)

THIRD_SITE = (
    SITE_YAML.replace("site: test-site", "site: third")
    .replace("timezone: Europe/Helsinki", "timezone: Europe/Stockholm")
    .replace('{mon-fri: "08:00-20:00", sat: "10:00-16:00"}', '{mon-sun: "08:00-20:00"}')
)


def third_rules(hook: WebhookSink) -> str:
    return f"""\
site: third
group_wait: 0s
receivers:
  mail: {{type: email, to: [third.kiinteisto@example.org]}}
  hook: {{type: webhook, url: "{hook.url("/third")}"}}
routes:
  - {{receivers: [mail, hook]}}
rules:
  - {{name: kela-full, kind: over_capacity, zones: [kela], fire_at: 1.0, clear_at: 0.9,
     for: 0s, severity: warning}}
"""


def settings_for(
    tmp_path: Path, mosquitto: Mosquitto, influx: Influx, smtp: SmtpSink
) -> AlertsSettings:
    return AlertsSettings(
        mqtt={"host": "127.0.0.1", "port": mosquitto.port, "reconnect_min_s": 1},
        influx={"url": influx.url, "database": "footfall"},
        http={"host": "127.0.0.1", "port": 0},
        smtp={"host": "127.0.0.1", "port": smtp.port, "security": "none"},
        delivery={"retry_min_s": 0.3, "retry_max_s": 1.0},
        state_dir=tmp_path / "state",
        tick_s=0.1,
    )


def publish_zones(pub: Publisher, site: Site, counts: dict[str, int], now_ms: int) -> None:
    """Every zone of the site, retained, as the collector's heartbeat publishes them."""
    for z in site.zones:
        count = counts.get(z.id, 0)
        ratio = None if not z.capacity else round(count / z.capacity, 4)
        payload = Occupancy(count=count, capacity=z.capacity, ratio=ratio, ts=format_ts(now_ms))
        pub.send(zone_occupancy_topic(site.site, z.id), payload.model_dump_json(), retain=True)


def zone_facts(service: AlertsService, site: str) -> dict[str, int]:
    with service._lock:
        return {z: f[0] for z, f in service.unit(site).engine.facts.zones.items()}


def firing(service: AlertsService, site: str) -> list[str]:
    return sorted(
        a["id"] for a in service.snapshot_alerts(site)["alerts"] if a["state"] == "firing"
    )


def retained_alerts(rec: Recorder) -> dict[str, Alert]:
    """topic -> the last alert payload seen on it."""
    return {m.topic: Alert.model_validate_json(m.payload) for m in rec.on("") if m.payload}


def test_shipped_sites_and_an_added_one_alert_each_on_its_own(
    mosquitto: Mosquitto,
    influx: Influx,
    hook: WebhookSink,
    smtp: SmtpSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the shipped rules name their chat webhooks by variable
    monkeypatch.setenv("FOOTFALL_ALERTS_TEAMS_URL", hook.url("/teams"))
    monkeypatch.setenv("FOOTFALL_ALERTS_SLACK_URL", hook.url("/slack"))
    folder = tmp_path / "sites"
    folder.mkdir()
    for name in SHIPPED:
        shutil.copy(ROOT / "deploy" / "sites" / f"{name}.yaml", folder)
        shutil.copy(ROOT / "deploy" / "sites" / f"{name}.alerts.yaml", folder)
    sites = {name: load_site(folder / f"{name}.yaml") for name in SHIPPED}
    clock = FakeClock(START_MS)
    service = AlertsService(settings_for(tmp_path, mosquitto, influx, smtp), clock=clock)
    watcher = SiteWatcher(SiteFolder(folder), service)
    watcher.scan()
    assert service.site_ids() == SHIPPED
    assert service.refused == {}
    start_with_api(service)
    pub = Publisher(mosquitto.port)
    rec = Recorder(mosquitto.port, alert_subscription("+"))
    api = f"http://127.0.0.1:{service.http.port}/api/v1/alerts"
    try:
        assert service.ready.wait(10), "footfall-alerts did not connect"
        # Iso Omena's whole centre over its 900 (every unit under its capacity);
        # Kalajärvi one short of capacity in every zone.
        omena = {z.id: (z.capacity or 0) // 2 for z in sites["iso-omena"].zones}
        omena["centre"] = 950
        kala = {z.id: (z.capacity or 1) - 1 for z in sites["kalajarvi"].zones}
        publish_zones(pub, sites["iso-omena"], omena, clock.now_ms())
        publish_zones(pub, sites["kalajarvi"], kala, clock.now_ms())
        eventually(lambda: firing(service, "iso-omena") == ["centre-over-capacity-centre"])
        eventually(lambda: zone_facts(service, "kalajarvi") == kala, what="kalajarvi's zones")
        eventually(lambda: zone_facts(service, "iso-omena") == omena, what="iso-omena's zones")
        # kalajarvi's over-capacity waits 1 min: past it, still nothing there
        clock.set(START_MS + 61_000)
        eventually(lambda: len(smtp.messages) == 1 and len(hook.bodies("/teams")) == 1)

        # the notification: iso-omena's facilities, in Helsinki time
        assert smtp.recipients == [["palvelukeskus.kiinteisto@example.org"]]
        # (stripped: the stdlib folds a long Subject right after the colon, and its parser
        # keeps the space of the fold)
        (subject,) = (s.strip() for s in smtp.subjects())
        assert (
            subject == "[iso-omena] FIRING: Service Centre over capacity: 950 of 900 people (106%)"
        )
        (body,) = smtp.bodies()
        assert "since Tue 24 Nov 2026 12:00 (Europe/Helsinki)" in body
        assert "Alert ids: centre-over-capacity-centre" in body
        (teams,) = hook.bodies("/teams")
        card = teams["attachments"][0]["content"]["body"]
        assert card[0]["text"] == subject
        assert "since Tue 24 Nov 2026 12:00 (Europe/Helsinki)" in card[1]["text"]
        stored = [
            e["body"]
            for channel in ("receiver:facilities-mail", "receiver:facilities-teams")
            for e in service.unit("iso-omena").store.entries(channel)
        ]
        assert [(b["site"], b["timezone"], b["event"]) for b in stored] == [
            ("iso-omena", "Europe/Helsinki", "firing")
        ] * 2

        # kalajarvi: no alert, no notification
        assert firing(service, "kalajarvi") == []
        rec.sync()
        topics = {alert_topic("iso-omena", "centre-over-capacity-centre")}
        assert set(retained_alerts(rec)) == topics
        alert = retained_alerts(rec).popitem()[1]
        assert (alert.id, alert.state, alert.severity, alert.scope) == (
            "centre-over-capacity-centre",
            "firing",
            "critical",
            {"zone": "centre"},
        )
        listing = httpx.get(api).json()
        assert listing["sites"] == SHIPPED
        assert [(a["site"], a["id"], a["state"]) for a in listing["alerts"]] == [
            ("iso-omena", "centre-over-capacity-centre", "firing")
        ]

        # a third site (Stockholm time) added while running: served and alerting alone
        (folder / "third.yaml").write_text(THIRD_SITE)
        (folder / "third.alerts.yaml").write_text(third_rules(hook))
        watcher.scan()
        assert service.site_ids() == ["iso-omena", "kalajarvi", "third"]
        assert service.refused == {}
        third = load_site(folder / "third.yaml")
        publish_zones(pub, third, {"centre": 50, "kela": 41}, clock.now_ms())
        eventually(lambda: firing(service, "third") == ["kela-full-kela"])
        eventually(lambda: len(smtp.messages) == 2 and len(hook.bodies("/third")) == 1)
        assert smtp.recipients[1] == ["third.kiinteisto@example.org"]
        assert (
            smtp.subjects()[1].strip()
            == "[third] FIRING: Kela over capacity: 41 of 40 people (102%)"
        )
        assert "since Tue 24 Nov 2026 11:01 (Europe/Stockholm)" in smtp.bodies()[1]
        (third_hook,) = hook.bodies("/third")
        assert (third_hook["site"], third_hook["event"]) == ("third", "firing")
        assert [a["id"] for a in third_hook["alerts"]] == ["kela-full-kela"]
        bodies = [e["body"] for e in service.unit("third").store.entries("receiver:mail")]
        assert [(b["site"], b["timezone"]) for b in bodies] == [("third", "Europe/Stockholm")]

        rec.sync()
        topics.add(alert_topic("third", "kela-full-kela"))
        assert set(retained_alerts(rec)) == topics
        listing = httpx.get(api).json()
        assert listing["sites"] == ["iso-omena", "kalajarvi", "third"]
        assert sorted((a["site"], a["id"], a["state"]) for a in listing["alerts"]) == [
            ("iso-omena", "centre-over-capacity-centre", "firing"),
            ("third", "kela-full-kela", "firing"),
        ]
        # nothing else was sent anywhere: no kalajarvi mail or Slack message
        assert firing(service, "kalajarvi") == []
        assert hook.bodies("/slack") == []
        assert len(hook.bodies()) == 2 and len(smtp.messages) == 2
    finally:
        rec.close()
        pub.close()
        service.stop()
