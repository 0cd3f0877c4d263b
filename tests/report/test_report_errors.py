"""footfall-report's errors: bad input, a missing site file or folder and an unreachable
InfluxDB each end in exit code 2 and one line saying why, never a traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from footfall_report.cli import main
from footfall_sim.localservices import free_port
from tests.report.cli_world import World, run, script
from tests.report.data import ISO_OMENA

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("report_env")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2026-13"], "bad period '2026-13': the month must be 01 to 12"),
        (["--period", "soon"], "use a day 2026-11-23, an ISO week 2026-W47"),
        (["--period", "2026-11", "--zone", "cafe"], "unknown zone 'cafe' in site 'iso-omena'"),
    ],
)
def test_bad_input_exits_2_with_the_reason(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rc, out, err = run(capsys, *args)
    assert rc == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_bad_year_and_missing_site(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--site", str(ISO_OMENA), "--statistics", "26"])
    assert exit_.value.code == 2
    assert "bad year '26'" in capsys.readouterr().err
    rc = main(["--site", str(tmp_path / "nowhere.yaml"), "--period", "2026-11"])
    assert rc == 2 and "no such site file" in capsys.readouterr().err
    rc = main(
        [
            "--site",
            str(ISO_OMENA),
            "--period",
            "2026-11",
            "--format",
            "xlsx",
            "-o",
            str(tmp_path / "no" / "x.xlsx"),
        ]
    )
    assert rc == 2 and "no such folder" in capsys.readouterr().err


def test_unreachable_influxdb_is_a_message_not_a_traceback(world: World) -> None:
    env = {**os.environ, "FOOTFALL_INFLUX__URL": f"http://127.0.0.1:{free_port()}"}
    p = subprocess.run(
        [script(), "--site", str(ISO_OMENA), "--period", "2026-11"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert "footfall-report: cannot read from InfluxDB" in p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
    env["FOOTFALL_INFLUX__TIMEOUT_S"] = "-1"
    p = subprocess.run(
        [script(), "--site", str(ISO_OMENA), "--period", "2026-11"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "influx.timeout_s" in p.stderr and "Traceback" not in p.stderr
