"""`footfall-report mail-monthly` against a real InfluxDB and a real SMTP server: last
month's report goes out once per site and month, across reruns and restarts; a failed
delivery records nothing and the next run sends it."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from footfall_report.cli import main
from footfall_report.mail import LEDGER_FILE
from footfall_sim.localservices import Influx, free_port
from tests.alerts.sinks import SmtpSink
from tests.report.data import ISO_OMENA, Scenario, build_month, iso_omena, load

pytestmark = pytest.mark.services

NOW = "2026-12-01T06:30:00Z"  # 08:30 in Helsinki on the 1st: November is complete


@pytest.fixture
def november(influx: Influx) -> Scenario:
    sc = build_month(iso_omena(), 2026, 11, per_open_hour=2, seed=3)
    load(influx.url, sc)
    return sc


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def env(
    influx: Influx, sink: SmtpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    values = {
        "FOOTFALL_INFLUX__URL": influx.url,
        "FOOTFALL_SMTP__HOST": "127.0.0.1",
        "FOOTFALL_SMTP__PORT": str(sink.port),
        "FOOTFALL_SMTP__SECURITY": "none",
        "FOOTFALL_SMTP__SENDER": "reports@iso-omena.example",
        "FOOTFALL_STATE_DIR": str(tmp_path / "state"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def mail(*extra: str, now: str = NOW) -> int:
    return main(["mail-monthly", "--site", str(ISO_OMENA), "--now", now, *extra])


def ledger(tmp_path: Path) -> list[tuple[str, str]]:
    path = tmp_path / "state" / LEDGER_FILE
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return [(str(a), str(b)) for a, b in db.execute("SELECT site, month FROM sent")]


def _script() -> str:
    return str(Path(sys.executable).with_name("footfall-report"))


def test_sent_once_with_the_report_attached(
    november: Scenario,
    sink: SmtpSink,
    env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink.start()
    assert mail("--to", "manager@espoo.example") == 0
    assert "iso-omena 2026-11: sent (to manager@espoo.example)" in capsys.readouterr().out
    assert mail("--to", "manager@espoo.example") == 0
    assert "2026-11: already sent, nothing to do" in capsys.readouterr().out
    # a restart: a new process, the same ledger
    command = [_script(), "mail-monthly", "--site", str(ISO_OMENA)]
    command += ["--to", "manager@espoo.example", "--now", "2026-12-02T06:30:00Z"]
    p = subprocess.run(
        command,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0 and "already sent" in p.stdout, p.stderr
    assert len(sink.messages) == 1
    assert ledger(tmp_path) == [("iso-omena", "2026-11")]

    msg = sink.messages[0]
    assert sink.recipients == [["manager@espoo.example"]]
    assert msg["Subject"] == "Visits November 2026: Iso Omena Service Centre"
    assert msg["From"] == "reports@iso-omena.example"
    assert msg["Message-ID"] == "<footfall-report.iso-omena.2026-11@footfall>"
    html_part = msg.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert f"<td>{november.visits('library')}</td>" in html
    text_part = msg.get_body(("plain",))
    assert text_part is not None and "Visits per zone" in text_part.get_content()
    attachments = {a.get_filename(): a for a in msg.iter_attachments()}
    assert set(attachments) == {"visits-iso-omena-2026-11.xlsx", "visits-iso-omena-2026-11.csv"}
    xlsx = attachments["visits-iso-omena-2026-11.xlsx"].get_content()
    summary = load_workbook(io.BytesIO(xlsx))["Summary"]
    visits = {r[0]: r[3] for r in summary.iter_rows(min_row=6, values_only=True)}
    assert visits == {z.id: november.visits(z.id) for z in iso_omena().zones}
    text = attachments["visits-iso-omena-2026-11.csv"].get_content()
    if isinstance(text, bytes):
        text = text.decode()
    totals = {r["zone"]: r for r in csv.DictReader(io.StringIO(text)) if r["section"] == "total"}
    assert int(totals["kela"]["entries"]) == november.visits("kela")


def test_smtp_down_records_nothing_and_the_next_run_sends(
    november: Scenario,
    sink: SmtpSink,
    env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert mail("--to", "manager@espoo.example") == 1  # nothing listens on the port yet
    err = capsys.readouterr().err
    assert "iso-omena: not sent, the next run retries: SMTP server 127.0.0.1" in err
    assert "Traceback" not in err
    assert ledger(tmp_path) == []
    sink.start()
    assert mail("--to", "manager@espoo.example") == 0
    assert mail("--to", "manager@espoo.example") == 0
    assert len(sink.messages) == 1
    assert ledger(tmp_path) == [("iso-omena", "2026-11")]


def test_influxdb_down_records_nothing(
    november: Scenario,
    sink: SmtpSink,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink.start()
    monkeypatch.setenv("FOOTFALL_INFLUX__URL", f"http://127.0.0.1:{free_port()}")
    assert mail("--to", "manager@espoo.example") == 2
    assert "cannot read from InfluxDB" in capsys.readouterr().err
    assert ledger(tmp_path) == [] and sink.messages == []
    monkeypatch.setenv("FOOTFALL_INFLUX__URL", env["FOOTFALL_INFLUX__URL"])
    assert mail("--to", "manager@espoo.example") == 0
    assert len(sink.messages) == 1


def test_two_runs_at_once_send_one_mail(
    november: Scenario, sink: SmtpSink, env: dict[str, str], tmp_path: Path
) -> None:
    sink.start()
    command = [_script(), "mail-monthly", "--site", str(ISO_OMENA), "--now", NOW]
    command += ["--to", "manager@espoo.example"]
    procs = [
        subprocess.Popen(
            command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    outputs = sorted(out.decode() for out, _ in results)
    assert "already sent" in outputs[0] and ": sent (to" in outputs[1]
    assert len(sink.messages) == 1


def test_not_before_the_month_is_complete_and_recipients_from_settings(
    november: Scenario,
    sink: SmtpSink,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink.start()
    # 03:30 in Helsinki on the 1st: the last day's window closes at the 03:00 reset
    assert mail(now="2026-12-01T01:30:00Z") == 2  # no recipients anywhere
    assert "no recipients" in capsys.readouterr().err
    monkeypatch.setenv("FOOTFALL_MAIL__RECIPIENTS", '["a@espoo.example", "b@espoo.example"]')
    assert mail(now="2026-12-01T01:30:00Z") == 0
    assert "2026-11: not yet (the report of 2026-11 is complete from 2026-12-01 04:00)" in (
        capsys.readouterr().out
    )
    assert sink.messages == [] and ledger(tmp_path) == []
    assert mail(now="2026-12-01T02:00:00Z") == 0
    assert sink.recipients == [["a@espoo.example", "b@espoo.example"]]
    # an explicit month goes out once too; a month still running is refused
    assert mail("--month", "2026-10") == 0
    assert len(sink.messages) == 2
    assert mail("--month", "2026-12") == 0
    assert "not yet" in capsys.readouterr().out
    assert mail("--month", "2026-W40") == 2
    assert "--month '2026-W40': give a month such as 2026-11" in capsys.readouterr().err
    assert sorted(ledger(tmp_path)) == [("iso-omena", "2026-10"), ("iso-omena", "2026-11")]
