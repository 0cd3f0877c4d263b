"""The rules file's `language:` end to end: real Mosquitto, InfluxDB, the real collector,
an SMTP server (aiosmtpd) and webhook receivers (http.server) on loopback. The expected
texts are written here from the known counts, names and the payloads' RFC 3339 times,
in each language's own words and time forms, not taken from footfall_alerts.wording."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from footfall_alerts.cli import start_with_api
from footfall_alerts.rules import parse_rules
from footfall_alerts.service import AlertsService
from footfall_collector.service import Collector
from footfall_contract.messages import Alert
from footfall_contract.site import parse_site
from footfall_contract.timefmt import format_ts, parse_ts
from footfall_contract.topics import agent_topic
from footfall_sim.localservices import Influx, Mosquitto
from tests.alerts.sinks import SmtpSink, WebhookSink
from tests.alerts.test_service import ALERTS, SITE, alerts_settings
from tests.support.broker_users import User
from tests.support.collector import (
    SITE_YAML,
    Publisher,
    collector_settings,
    crossing_batch,
    now_ms,
    small_site,
    wait_for,
)
from tests.support.mqtt import Recorder

pytestmark = pytest.mark.services

HELSINKI = ZoneInfo("Europe/Helsinki")
BOARD = "https://footfall.example.org/?site=test-site"
DASHBOARD = "https://grafana.example.org/d/footfall"
# The test site with its names in Finnish and Swedish (the alerts use them).
NAMED_SITE_YAML = SITE_YAML.replace(
    "name: Test Service Centre\n",
    "name: Test Service Centre\nnames: {fi: Testipalvelutori, sv: Testservicetorget}\n",
).replace(
    "{id: kela, name: Kela, parent: centre, capacity: 40}",
    "{id: kela, name: Kela, parent: centre, capacity: 40, "
    "names: {fi: Kelan palvelupiste, sv: FPA:s servicepunkt}}",
)


@dataclass(frozen=True)
class Words:
    """One language's texts as a Finnish or Swedish reader expects them."""

    site: str
    kela: str
    firing: str
    resolved: str
    warning: str
    weekdays: tuple[str, ...]
    at: str  # "klo" / "kl."
    hour_padded: bool

    def over(self, count: int, capacity: int, pct: int) -> str:
        if self.firing == "HÄLYTYS":
            return (
                f"{self.kela} yli kapasiteetin: {count} henkilöä, kapasiteetti {capacity} ({pct} %)"
            )
        return f"{self.kela} över kapaciteten: {count} personer, kapacitet {capacity} ({pct} %)"

    def offline(self, agent: str) -> str:
        if self.firing == "HÄLYTYS":
            return f"Anturi {agent} ei ole yhteydessä"
        return f"Sensorn {agent} har ingen förbindelse"

    def clock(self, t: dt.datetime) -> str:
        return f"{t.hour:02d}.{t.minute:02d}" if self.hour_padded else f"{t.hour}.{t.minute:02d}"

    def date(self, t: dt.datetime) -> str:
        return f"{self.weekdays[t.weekday()]} {t.day}.{t.month}.{t.year}"

    def since(self, ts: str) -> str:
        t = dt.datetime.fromtimestamp(parse_ts(ts) / 1000, HELSINKI)
        moment = f"{self.date(t)} {self.at} {self.clock(t)} (Europe/Helsinki)"
        return f"{moment} alkaen" if self.firing == "HÄLYTYS" else f"sedan {moment}"

    def lasted(self, started: str, ended: str) -> str:
        a = dt.datetime.fromtimestamp(parse_ts(started) / 1000, HELSINKI)
        b = dt.datetime.fromtimestamp(parse_ts(ended) / 1000, HELSINKI)
        seconds = (parse_ts(ended) - parse_ts(started)) // 1000
        assert a.date() == b.date() and seconds < 3600, "the test runs within minutes"
        span = f"{self.date(a)} {self.at} {self.clock(a)}–{self.clock(b)} (Europe/Helsinki)"
        verb = "kesti" if self.firing == "HÄLYTYS" else "varade"
        return f"{verb} {seconds // 60} min {seconds % 60} s, {span}"

    def footer(self, rule: str, ids: str) -> list[str]:
        if self.firing == "HÄLYTYS":
            return [
                f"Sääntö: {rule}. Hälytysten tunnisteet: {ids}",
                f"Kävijätilanne: {BOARD}",
                f"Kojelauta: {DASHBOARD}",
            ]
        return [
            f"Regel: {rule}. Larmens id: {ids}",
            f"Besökarläget: {BOARD}",
            f"Instrumentpanel: {DASHBOARD}",
        ]

    def acknowledge(self) -> str:
        if self.firing == "HÄLYTYS":
            return (
                "Kuittaa (toistot loppuvat) tai vaienna kävijätilanteessa; "
                "viesti tulee, kun hälytys päättyy."
            )
        return (
            "Kvittera (upprepningarna upphör) eller tysta larmet i besökarläget; "
            "ett meddelande följer när det är åtgärdat."
        )


WORDS = {
    "fi": Words(
        "Testipalvelutori",
        "Kelan palvelupiste",
        "HÄLYTYS",
        "PÄÄTTYNYT",
        "varoitus",
        ("ma", "ti", "ke", "to", "pe", "la", "su"),
        "klo",
        hour_padded=False,
    ),
    "sv": Words(
        "Testservicetorget",
        "FPA:s servicepunkt",
        "LARM",
        "ÅTGÄRDAT",
        "varning",
        ("mån", "tis", "ons", "tors", "fre", "lör", "sön"),
        "kl.",
        hour_padded=True,
    ),
}


def rules_yaml(lang: str, hook: WebhookSink) -> str:
    return f"""\
site: {SITE}
language: {lang}
group_wait: 0.5s
receivers:
  mail: {{type: email, to: [facilities@example.org]}}
  hook: {{type: webhook, url: "{hook.url("/json")}"}}
  chat: {{type: webhook, url: "{hook.url("/slack")}", format: slack}}
routes:
  - {{receivers: [mail, hook, chat]}}
rules:
  - {{name: kela-full, kind: over_capacity, zones: [kela], for: 0s}}
  - {{name: pi-offline, kind: agent_offline, for: 1s, clear_for: 0s, active_hours: always}}
"""


def body_lines(smtp: SmtpSink, index: int) -> list[str]:
    return smtp.bodies()[index].splitlines()  # CRLF in a non-ASCII (encoded) body


@pytest.mark.parametrize("lang", ["fi", "sv"])
def test_alerts_speak_the_rules_files_language(
    lang: str,
    mosquitto: Mosquitto,
    influx: Influx,
    smtp: SmtpSink,
    hook: WebhookSink,
    tmp_path: Path,
) -> None:
    w = WORDS[lang]
    site = parse_site(NAMED_SITE_YAML, "test-site.yaml")
    collector = Collector(collector_settings(mosquitto.port, influx.url), small_site())
    collector.start()
    assert collector.ready.wait(10)
    settings = alerts_settings(
        tmp_path, mosquitto.port, influx.url, smtp.port, board_url=BOARD, link=DASHBOARD
    )
    service = AlertsService(settings, site, parse_rules(rules_yaml(lang, hook), site, "t.yaml"))
    start_with_api(service)
    assert service.ready.wait(10), "alerts service did not connect"
    board = Recorder(mosquitto.port, ALERTS)
    pub = Publisher(mosquitto.port)
    status = agent_topic(SITE, "pi-7", "status")
    offline = json.dumps({"state": "offline", "epoch": "e7", "ts": format_ts(now_ms()), "sw": "1"})
    pi = User(mosquitto.port, client_id="pi-7", will=(status, offline))
    try:
        online = {"state": "online", "epoch": "e7", "ts": format_ts(now_ms()), "sw": "1"}
        pi.publish(status, json.dumps(online), retain=True)
        # 42 people into Kela (capacity 40): 105 %.
        crossing = agent_topic(SITE, "pi-1", "crossing")
        pub.send(crossing, crossing_batch("e1", [(s, "kela-door", "in") for s in range(42)]))
        wait_for(lambda: len(smtp.messages) == 1, 20, "the over-capacity mail")
        over = w.over(42, 40, 105)
        assert smtp.subjects() == [f"[{SITE}] {w.firing}: {over}"]
        wait_for(lambda: len(hook.bodies("/json")) == 1, 10, "the webhook")
        (alert,) = hook.bodies("/json")[0]["alerts"]
        assert alert["summary"] == over and alert["severity"] == "warning"  # machine part
        assert body_lines(smtp, 0) == [
            f"{w.site} ({SITE}): {w.firing.lower()}",
            "",
            f"- [{w.warning}] {over} — {w.since(alert['started'])}",
            "",
            *w.footer("kela-full", "kela-full-kela"),
            w.acknowledge(),
        ]
        generic = hook.bodies("/json")[0]
        assert generic["title"] == smtp.subjects()[0] and generic["event"] == "firing"
        wait_for(lambda: len(hook.bodies("/slack")) == 1, 10, "the slack message")
        slack = hook.bodies("/slack")[0]["blocks"][0]["text"]["text"]
        board_title = w.footer("r", "i")[1].split(":")[0]
        assert slack.split("\n")[:3] == [
            f"*{smtp.subjects()[0]}*",
            f"- [{w.warning}] {over} — {w.since(alert['started'])}",
            f"<{BOARD}|{board_title}>",
        ]

        pi.die()  # the broker publishes the Last Will
        wait_for(lambda: len(smtp.messages) == 2, 20, "the offline mail")
        assert smtp.subjects()[1] == f"[{SITE}] {w.firing}: {w.offline('pi-7')}"

        # 10 leave: 32 of 40 (80 %), below clear_at 90 %: resolved, with how long it lasted.
        pub.send(crossing, crossing_batch("e1", [(100 + i, "kela-door", "out") for i in range(10)]))
        wait_for(lambda: len(smtp.messages) == 3, 20, "the resolved mail")
        back = w.over(32, 40, 80)
        assert smtp.subjects()[2] == f"[{SITE}] {w.resolved}: {back}"
        wait_for(lambda: len(hook.bodies("/json")) == 3, 10, "the resolved webhook")
        (resolved,) = (b for b in hook.bodies("/json") if b["event"] == "resolved")
        (done,) = resolved["alerts"]
        assert done["state"] == "resolved" and resolved["title"] == smtp.subjects()[2]
        assert body_lines(smtp, 2) == [
            f"{w.site} ({SITE}): {w.resolved.lower()}",
            "",
            f"- [{w.warning}] {back} — {w.lasted(done['started'], done['ts'])}",
            "",
            *w.footer("kela-full", "kela-full-kela"),
        ]

        # The board's view: the retained payload's summary in the language, the rest as is.
        def latest() -> dict[str, Alert]:
            return {
                m.topic.rsplit("/", 1)[1]: Alert.model_validate_json(m.payload)
                for m in board.messages
            }

        board.wait_until(lambda: latest().get("kela-full-kela", None) is not None)
        board.wait_until(lambda: latest()["kela-full-kela"].state == "resolved")
        board.wait_until(lambda: "pi-offline-pi-7" in latest())
        assert latest()["kela-full-kela"].summary == back
        assert latest()["pi-offline-pi-7"].summary == w.offline("pi-7")
        assert latest()["pi-offline-pi-7"].kind == "agent_offline"
    finally:
        pi.die()
        pub.close()
        board.close()
        service.stop()
        collector.stop()
