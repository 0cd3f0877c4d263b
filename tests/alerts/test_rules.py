"""The rules file: defaults, the shipped files, and bad files stopping with file, line and
reason (through the library and the command line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from footfall_alerts.cli import main
from footfall_alerts.rules import (
    RulesError,
    default_rules,
    load_rules,
    parse_duration,
    parse_rules,
    rules_path_for,
)
from footfall_contract.site import load_site
from tests.support.collector import small_site, write_site

REPO = Path(__file__).resolve().parents[2]
SITES = REPO / "deploy" / "sites"


@pytest.mark.parametrize("name", ["iso-omena", "kalajarvi"])
def test_shipped_rules_files_are_valid_for_their_sites(name: str) -> None:
    site = load_site(SITES / f"{name}.yaml")
    path = rules_path_for(SITES / f"{name}.yaml")
    assert path == SITES / f"{name}.alerts.yaml"
    rules = load_rules(path, site)
    assert rules.site == name and rules.rules
    kinds = {r.kind for r in rules.rules}
    assert {"over_capacity", "agent_offline", "beam_blocked", "drift_after_close"} <= kinds
    assert all(r.clear_at < r.fire_at for r in rules.rules)
    assert main(["check-rules", str(path), "--site", str(SITES / f"{name}.yaml")]) == 0


def test_defaults_without_rules() -> None:
    site = small_site()
    rules = parse_rules("", site)
    kinds = [r.kind for r in rules.active_rules(site)]
    assert kinds == ["over_capacity", "agent_offline", "beam_blocked", "drift_after_close"]
    offline = default_rules(site)[1]
    assert (offline.for_s, offline.active_hours) == (300.0, "open")
    over = default_rules(site)[0]
    assert (over.fire_at, over.clear_at) == (1.0, 0.9)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("2d", 172800.0), ("0.5s", 0.5)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


GOOD = """\
receivers:
  mail: {type: email, to: [a@example.org]}
routes:
  - receivers: [mail]
rules:
  - name: full
    kind: over_capacity
    zones: [library]
"""

BAD = [
    (GOOD.replace("zones: [library]", "zones: [libary]"), 8, "zone 'libary' does not exist"),
    (GOOD.replace("receivers: [mail]", "receivers: [mial]"), 4, "receiver 'mial' is not defined"),
    (
        GOOD.replace("kind: over_capacity", "kind: over_capasity"),
        7,
        "rules[0].kind: Input should be",
    ),
    (GOOD + "    fire_at: 0.8\n    clear_at: 0.9\n", 10, "clear_at (0.9) must be below fire_at"),
    (GOOD + "    for: 5 minutes\n", 9, "bad duration '5 minutes'"),
    (GOOD + "    colour: red\n", 9, "rules[0].colour: Extra inputs are not permitted"),
    (GOOD + "  - {name: full, kind: beam_blocked}\n", 9, "rule 'full' is defined twice"),
    (GOOD + "  - {name: b, kind: beam_blocked, zones: [kela]}\n", 9, "use agents: not zones:"),
    (GOOD.replace("zones: [library]", "zones: [youth]"), 8, "zone 'youth' has no capacity"),
    (
        GOOD.replace("- receivers: [mail]", "- {receivers: [mail], quiet_hours: '25:00-07:00'}"),
        4,
        "quiet hours start must be a time",
    ),
    (GOOD.replace("to: [a@example.org]", "to: [nobody]"), 2, "not an e-mail address: 'nobody'"),
    (GOOD.replace("  mail: {type: email", "  mail: {type: pigeon"), 2, "does not match any of the"),
    (GOOD + "receivers: {}\n", 9, "duplicate key 'receivers'"),
    (GOOD.replace("rules:", "rules: [", 1), 6, "invalid YAML"),
    ("- just\n- a list\n", 1, "the top level must be a mapping"),
    (GOOD + "    summary: '{zone_name} full, {colour}'\n", 9, "unknown placeholder(s) colour"),
    ("site: other-site\n" + GOOD, 1, "this rules file is for site 'other-site'"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD, ids=[b[2][:30] for b in BAD])
def test_bad_rules_name_file_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(RulesError) as err:
        parse_rules(text, small_site(), "site.alerts.yaml")
    assert err.value.file == "site.alerts.yaml"
    assert reason in err.value.reason, err.value
    assert err.value.line == line, err.value


def test_cli_check_rules_and_run_stop_on_a_bad_file(tmp_path: Path) -> None:
    site = write_site(tmp_path)
    rules = tmp_path / "test-site.alerts.yaml"
    rules.write_text(GOOD.replace("zones: [library]", "zones: [libary]"))
    for argv in (
        ["check-rules", str(rules), "--site", str(site)],
        ["run", "--site", str(site)],  # finds test-site.alerts.yaml next to the site
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "footfall_alerts.cli", *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert f"{rules}:8: zone 'libary' does not exist in site 'test-site'" in proc.stderr
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "footfall_alerts.cli",
            "check-rules",
            "nope.yaml",
            "--site",
            str(site),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "nope.yaml: no such rules file" in missing.stderr


def test_email_receiver_without_smtp_server_stops_at_start(tmp_path: Path) -> None:
    site = write_site(tmp_path)
    (tmp_path / "test-site.alerts.yaml").write_text(GOOD)
    proc = subprocess.run(
        [sys.executable, "-m", "footfall_alerts.cli", "run", "--site", str(site)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "FOOTFALL_STATE_DIR": str(tmp_path / "state")},
    )
    assert proc.returncode == 2
    assert "receiver 'mail' sends e-mail but no SMTP server is set" in proc.stderr


def test_without_a_rules_file_default_to_gets_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    from footfall_alerts.config import AlertsSettings
    from footfall_alerts.service import with_defaults
    from footfall_runtime.settings import load_settings

    monkeypatch.setenv("FOOTFALL_SMTP__DEFAULT_TO", '["facilities@example.org"]')
    rules = with_defaults(None, load_settings(AlertsSettings))
    assert rules.receivers["default-email"].to == ["facilities@example.org"]  # type: ignore[union-attr]
    assert rules.routes[0].severities == ["warning", "critical"]
    assert rules.rules is None  # the defaults
    monkeypatch.delenv("FOOTFALL_SMTP__DEFAULT_TO")
    assert with_defaults(None, load_settings(AlertsSettings)).receivers == {}
