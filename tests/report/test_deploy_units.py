"""The monthly mail's systemd service and timer and its settings example: they name the
program, the state directory and the settings footfall-report really reads."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from footfall_report.cli import main
from footfall_report.config import ReportSettings
from footfall_runtime.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "server" / "systemd"
SERVICE = "footfall-report-monthly.service"
TIMER = "footfall-report-monthly.timer"


def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNITS / name).read_text())
    return parser


def test_service_runs_mail_monthly_with_its_state_dir(capsys: pytest.CaptureFixture[str]) -> None:
    service = unit(SERVICE)["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "footfall-report"
    assert argv[1:] == ["mail-monthly", "--site", "/etc/footfall/site.yaml"]
    assert service["Type"] == "oneshot"
    assert service["User"] not in ("", "root")
    assert service["EnvironmentFile"] == "/etc/footfall/report.env"
    assert service["StateDirectory"] == "footfall-report"
    assert "FOOTFALL_STATE_DIR=/var/lib/footfall-report" in unit(SERVICE).get(
        "Service", "Environment"
    )
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    # past argument parsing: it fails on the missing site file (exit 2), not on an option
    assert main([*argv[1:-1], "/nonexistent/site.yaml", "--to", "a@example.org"]) == 2
    assert "/nonexistent/site.yaml: no such site file" in capsys.readouterr().err


def test_timer_runs_the_service_daily_and_catches_up() -> None:
    timer = unit(TIMER)
    assert timer["Timer"]["OnCalendar"] == "*-*-* 06:30:00"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["Unit"] == SERVICE
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_env_example_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {}
    for line in (ROOT / "deploy" / "server" / "report.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value.strip("'")
    assert set(values) >= {
        "FOOTFALL_INFLUX__URL",
        "FOOTFALL_SMTP__HOST",
        "FOOTFALL_MAIL__RECIPIENTS",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(ReportSettings)
    assert settings.mail.recipients == [
        "library.manager@example.org",
        "centre.manager@example.org",
    ]
    assert settings.smtp.security == "starttls" and settings.influx.database == "footfall"


def test_units_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    for name in (SERVICE, TIMER):
        shutil.copy(UNITS / name, tmp_path / name)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / SERVICE), str(tmp_path / TIMER)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if line.strip() and "footfall-report is not executable" not in line
    ]
    assert complaints == []
