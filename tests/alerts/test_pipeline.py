"""A silent pipeline (`pipeline_silent`) and what alert texts say, in virtual time: the
built-in rule fires 180 s after the collector's last zone occupancy and resolves on the
next one; a restart neither fires on an old saved heartbeat nor resolves an open alert;
a firing alert's summary follows its value; mails and chat messages give the site's
local time with its zone and a link to the live board."""

from __future__ import annotations

from typing import Any

import pytest

from footfall_alerts.config import AlertsSettings
from footfall_alerts.engine import Engine, ZoneObs
from footfall_alerts.receivers import text
from footfall_alerts.receivers.webhook import payload
from footfall_alerts.rules import RulesError, parse_rules
from footfall_contract.timefmt import format_ts
from footfall_runtime.settings import ConfigError, load_settings
from tests.alerts.scenario import RECEIVERS, Scenario, local_ms
from tests.support.collector import small_site

PIPE = RECEIVERS + "group_wait: 0s\nroutes:\n  - {receivers: [mail]}\nrules: []\n"
"""No rule of its own: only the built-in pipeline-silent (and the limit rule)."""
ZONES = ("centre", "library", "kela", "youth")
ALERT = "pipeline-silent-collector"


def heartbeat(s: Scenario, ts_ms: int | None = None) -> None:
    """The collector's periodic publish: every zone, retained, stamped with its clock."""
    for zone in ZONES:
        s.observe(ZoneObs(zone, 0, s.now if ts_ms is None else ts_ms))


def pipeline_transitions(s: Scenario) -> list[str]:
    return [t.state for t in s.transitions() if t.alert["kind"] == "pipeline_silent"]


def test_built_in_rule_fires_180_s_after_the_last_heartbeat_and_resolves_on_the_next() -> None:
    s = Scenario(PIPE)  # Tuesday 24 Nov 2026 10:00 in Helsinki (EET, UTC+2)
    s.engine.watch(s.now)
    for _ in range(5):  # the collector publishes every minute, 10:00 to 10:05
        heartbeat(s)
        s.advance(60)
    heartbeat(s)
    last = s.now
    assert last == local_ms(2026, 11, 24, 10, 5)
    s.advance(179)  # paused: three heartbeats missed, not yet 180 s
    assert pipeline_transitions(s) == [] and s.notifications() == []
    s.advance(1)
    assert s.sent("mail") == [("firing", [ALERT])]
    (alert,) = s.notifications("mail")[0].alerts
    assert alert["kind"] == "pipeline_silent" and alert["severity"] == "critical"
    assert alert["scope"] == {} and alert["value"] == 180.0
    assert alert["started"] == format_ts(last + 180_000)
    assert alert["summary"].startswith(
        "No zone occupancy from the collector since Tue 24 Nov 2026 10:05 (Europe/Helsinki): "
    )
    s.advance(600, step_s=5)  # 13 minutes silent: no repeat before 4 h, no update
    assert len(s.notifications()) == 1 and s.transitions("updated") == []
    (listed,) = s.engine.active(s.now)
    assert listed["value"] == (s.now - last) // 1000 == 780
    assert listed["summary"] == alert["summary"]  # the incident's start, not "now"

    heartbeat(s)  # the collector is back
    assert s.sent("mail") == [("firing", [ALERT]), ("resolved", [ALERT])]
    resolved = s.notifications("mail")[1].alerts[0]
    assert resolved["summary"] == alert["summary"] and resolved["state"] == "resolved"
    for _ in range(10):
        s.advance(60)
        heartbeat(s)
    assert len(s.notifications()) == 2
    assert pipeline_transitions(s) == ["pending", "firing", "resolved"]


def test_a_restart_mid_incident_neither_resolves_nor_repeats_it() -> None:
    s = Scenario(PIPE)
    s.engine.watch(s.now)
    heartbeat(s)
    s.advance(200)
    assert s.sent("mail") == [("firing", [ALERT])]
    s.restart()  # the alerts service restarts; the collector is still stopped
    s.engine.watch(s.now)
    heartbeat(s, ts_ms=s.now - 200_000)  # the retained topics: the same old heartbeat
    s.advance(600, step_s=5)
    assert s.sent("mail") == [("firing", [ALERT])]
    assert s.alert_states() == {ALERT: "firing"}
    heartbeat(s)
    assert s.sent("mail") == [("firing", [ALERT]), ("resolved", [ALERT])]


def test_an_old_saved_heartbeat_gives_the_collector_the_threshold_after_a_restart() -> None:
    s = Scenario(PIPE)
    s.engine.watch(s.now)
    heartbeat(s)
    ten = s.now
    s.now += 3600 * 1000  # the alerts service was away an hour (no ticks)
    s.restart()
    s.engine.watch(s.now)
    s.advance(1)
    heartbeat(s, ts_ms=s.now - 30_000)  # the collector ran meanwhile: a fresh retained one
    for _ in range(10):
        s.advance(60)
        heartbeat(s)
    assert s.notifications() == [] and pipeline_transitions(s) == []

    dead = Scenario(PIPE)  # the same, but the collector died at 10:00
    dead.engine.watch(dead.now)
    heartbeat(dead)
    dead.now += 3600 * 1000
    dead.restart()
    dead.engine.watch(dead.now)
    watched = dead.now
    heartbeat(dead, ts_ms=ten)  # retained: the 10:00 one
    dead.advance(179)
    assert dead.notifications() == []
    dead.advance(1)
    assert dead.sent("mail") == [("firing", [ALERT])]
    (alert,) = dead.notifications()[0].alerts
    assert alert["value"] == (watched + 180_000 - ten) // 1000 == 3780
    assert "since Tue 24 Nov 2026 10:00 (Europe/Helsinki)" in alert["summary"]


def test_no_occupancy_ever_fires_from_when_the_service_started() -> None:
    s = Scenario(PIPE, start_ms=local_ms(2026, 7, 7, 9, 30))  # summer: EEST, UTC+3
    s.engine.watch(s.now)
    s.advance(180)
    (alert,) = s.notifications()[0].alerts
    assert alert["summary"].startswith(
        "No zone occupancy from the collector since footfall-alerts started at "
        "Tue 7 Jul 2026 09:30 (Europe/Helsinki)"
    )
    s.restart()  # open, never heard: counted from the alert's own start
    s.engine.watch(s.now)
    s.advance(300, step_s=5)
    assert s.alert_states() == {ALERT: "firing"} and len(s.notifications()) == 1


def test_a_rule_of_the_kind_replaces_the_built_in_one() -> None:
    rules = PIPE.replace(
        "rules: []",
        "rules:\n  - {name: collector-down, kind: pipeline_silent, fire_at: 600, "
        "clear_at: 120, severity: warning, repeat: 1h}",
    )
    s = Scenario(rules)
    assert [r.name for r in s.engine.all_rules] == ["collector-down", "too-many-alerts"]
    s.engine.watch(s.now)
    heartbeat(s)
    s.advance(599, step_s=5)
    assert s.notifications() == []
    s.advance(1)
    assert s.sent("mail") == [("firing", ["collector-down-collector"])]
    assert s.notifications()[0].alerts[0]["severity"] == "warning"
    default = Scenario(PIPE)
    assert [r.name for r in default.engine.all_rules] == ["pipeline-silent", "too-many-alerts"]


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (
            "{name: p, kind: pipeline_silent, zones: [kela]}",
            "t.alerts.yaml:6: rule 'p': pipeline_silent watches the collector's occupancy of "
            "the whole site: it takes neither zones: nor agents:",
        ),
        ("{name: p, kind: pipeline_silent, agents: [pi-1]}", "takes neither zones: nor agents:"),
        (
            "{name: p, kind: pipeline_silent, fire_at: 60}",
            "clear_at \\(60\\) must be below fire_at \\(60\\).*seconds since the newest zone "
            "occupancy from the collector",
        ),
        (
            "{name: pipeline-silent, kind: agent_offline}",
            "rule name 'pipeline-silent' is kept for the pipeline_silent rule",
        ),
    ],
)
def test_bad_pipeline_rules_are_refused_with_the_line(rule: str, reason: str) -> None:
    text_ = RECEIVERS.replace("receivers:\n", "site: test-site\nreceivers:\n", 1)
    with pytest.raises(RulesError, match=reason):
        parse_rules(text_ + f"rules:\n  - {rule}\n", small_site(), "t.alerts.yaml")


DRIFT = (
    RECEIVERS
    + """\
group_wait: 0s
routes:
  - {receivers: [mail]}
rules:
  - {name: drift, kind: drift_after_close, zones: [library], grace: 30m, repeat: 1h}
"""
)


def test_a_firing_summary_follows_the_value_without_a_mail_per_change() -> None:
    s = Scenario(DRIFT, start_ms=local_ms(2026, 11, 24, 19, 0))  # closes at 20:00
    s.observe(ZoneObs("library", 5, s.now))
    s.advance(91 * 60, step_s=60)  # 20:31: closed for 30 min
    assert s.sent("mail") == [("firing", ["drift-library"])]
    fired = s.notifications()[0].alerts[0]
    assert fired["summary"] == "Library: 5 people still counted after closing (count drift)"
    s.advance(30)
    s.observe(ZoneObs("library", 83, s.now))  # the count keeps drifting up
    # The API says it at once; the board's retained copy too (30 s since it fired)...
    (listed,) = s.engine.active(s.now)
    want = "Library: 83 people still counted after closing (count drift)"
    assert listed["value"] == 83 and listed["summary"] == want
    (update,) = s.transitions("updated")
    assert update.alert["summary"] == want and update.alert["state"] == "firing"
    assert update.alert["started"] == fired["started"]
    # ...but a change within 10 s of the last update waits for the tick after those 10 s.
    s.advance(2)
    s.observe(ZoneObs("library", 84, s.now))
    assert len(s.transitions("updated")) == 1
    assert s.engine.active(s.now)[0]["summary"].startswith("Library: 84 people")
    s.advance(8)
    assert [t.alert["summary"][:18] for t in s.transitions("updated")] == [
        "Library: 83 people",
        "Library: 84 people",
    ]
    assert s.transitions("updated")[1].ts_ms - update.ts_ms == 10_000
    s.advance(3600, step_s=60)  # the hourly repeat carries the current figure
    assert s.sent("mail") == [("firing", ["drift-library"]), ("repeat", ["drift-library"])]
    assert s.notifications()[1].alerts[0]["summary"] == want.replace("83", "84")
    assert len(s.transitions("updated")) == 2  # nothing changed since: nothing published


def test_a_state_saved_before_updates_existed_publishes_nothing_new() -> None:
    s = Scenario(DRIFT, start_ms=local_ms(2026, 11, 24, 19, 0))
    s.observe(ZoneObs("library", 7, s.now))
    s.advance(91 * 60, step_s=60)
    old = s.engine.snapshot()
    for alert in old["alerts"].values():
        del alert["shown"], alert["shown_at"]
    engine = Engine(s.site, s.rules, old)
    effects = engine.tick(s.now + 60_000)
    assert [e for e in effects if getattr(e, "state", None) == "updated"] == []
    assert engine.repairs == []


NOTIFICATION: dict[str, Any] = {
    "site": "test-site",
    "site_name": "Test Service Centre",
    "receiver": "r",
    "rule": "drift",
    "event": "firing",
    "ts_ms": 1_795_000_000_000,
    "timezone": "Europe/Helsinki",
    "link": "https://grafana.example.org/d/footfall",
    "board_url": "https://footfall.example.org/?site=test-site",
    "alerts": [
        {
            "id": "drift-library",
            "rule": "drift",
            "kind": "drift_after_close",
            "severity": "info",
            "state": "firing",
            "scope": {"zone": "library"},
            "summary": "Library: 83 people still counted after closing (count drift)",
            # 22:18 UTC is 00:18 the next day in Helsinki in winter (UTC+2)
            "started": "2026-11-30T22:18:59.447Z",
            "ts": "2026-11-30T22:20:00.000Z",
            "value": 83.0,
            "acknowledged_by": None,
            "silenced_until": None,
        }
    ],
}


def test_mail_text_uses_the_sites_local_time_and_links_the_board() -> None:
    body = text.body(NOTIFICATION)
    assert (
        "- [info] Library: 83 people still counted after closing (count drift) — since "
        "Tue 1 Dec 2026 00:18 (Europe/Helsinki)"
    ) in body
    assert "22:18" not in body and ".447Z" not in body  # no UTC times for people
    assert "Live board: https://footfall.example.org/?site=test-site\n" in body
    assert "Dashboard: https://grafana.example.org/d/footfall\n" in body
    assert "silence it on the live board" in body

    alert = {**NOTIFICATION["alerts"][0], "state": "resolved", "ts": "2026-11-30T23:02:10.000Z"}
    resolved = {**NOTIFICATION, "event": "resolved", "alerts": [alert]}
    assert text.lines(resolved) == [
        "- [info] Library: 83 people still counted after closing (count drift) — lasted "
        "43 min 10 s, Tue 1 Dec 2026 00:18–01:02 (Europe/Helsinki)"
    ]
    # over midnight, in summer time (UTC+3), both days are named
    summer = {**alert, "started": "2026-07-06T20:50:00.000Z", "ts": "2026-07-06T21:10:00.000Z"}
    assert text.lines({**resolved, "alerts": [summer]})[0].endswith(
        "lasted 20 min 0 s, Mon 6 Jul 2026 23:50 – Tue 7 Jul 2026 00:10 (Europe/Helsinki)"
    )
    # an outbox entry written before the zone was part of it: UTC, said so
    old = {k: v for k, v in NOTIFICATION.items() if k not in ("timezone", "board_url")}
    assert "since Mon 30 Nov 2026 22:18 (UTC)" in text.body(old)
    assert "Live board" not in text.body(old)


def test_chat_messages_link_the_board() -> None:
    assert payload("json", NOTIFICATION)["board_url"] == NOTIFICATION["board_url"]
    slack = payload("slack", NOTIFICATION)["blocks"][0]["text"]["text"]
    assert "<https://footfall.example.org/?site=test-site|Live board>" in slack
    assert "since Tue 1 Dec 2026 00:18 (Europe/Helsinki)" in slack
    card = payload("teams", NOTIFICATION)["attachments"][0]["content"]
    assert [(a["title"], a["url"]) for a in card["actions"]] == [
        ("Live board", NOTIFICATION["board_url"]),
        ("Dashboard", NOTIFICATION["link"]),
    ]


def test_board_url_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTFALL_BOARD_URL", "https://footfall.example.org/board")
    assert load_settings(AlertsSettings).board_url == "https://footfall.example.org/board"
    monkeypatch.setenv("FOOTFALL_BOARD_URL", "")
    assert load_settings(AlertsSettings).board_url is None
    monkeypatch.setenv("FOOTFALL_BOARD_URL", "footfall.example.org")
    with pytest.raises(ConfigError) as exc:
        load_settings(AlertsSettings)
    assert "board_url" in str(exc.value)
    assert "must be an http:// or https:// address" in str(exc.value)
    assert "'footfall.example.org'" in str(exc.value)
