"""`footfall-collector check-site` (docs/collector.md): warnings with the file and line
and exit status 0, errors (a site that cannot work) exit status 1; `run` logs the same at
start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from footfall_sim.localservices import free_port
from tests.support.collector import wait_for

SITE = """\
site: odd
name: Odd Centre
timezone: Europe/Helsinki
zones:
  - {id: centre, capacity: 100}
  - {id: library, parent: centre, capacity: 150}
  - {id: archive, parent: centre}
  - {id: study, parent: centre}
doors:
  - {id: main, outside: null, inside: centre}
  - {id: library-door, outside: centre, inside: library}
presence:
  - {id: study-1, zone: study}
"""

ISLAND = """\
  - {id: lab-a, parent: centre}
  - {id: lab-b, parent: centre}
doors:
  - {id: lab-door, outside: lab-a, inside: lab-b}
"""


def check_site(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "footfall_collector.cli", "check-site", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_warnings_are_printed_with_their_line_and_leave_it_ok(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(SITE)
    proc = check_site(path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{path}:6: warning: zone 'library': capacity 150 is above the capacity 100 of "
        "'centre', which contains it: 'centre' is full first",
        f"{path}:7: warning: zone 'archive': no door leads into it, so its count stays 0",
        f"{path}:8: warning: zone 'study': no door leads into it, so its count stays 0; its "
        "presence sensor (study-1) shows only whether it is in use",
        f"{path}: site 'odd' (Odd Centre), 4 zones, 2 doors, 1 presence sensors: OK, 3 warnings",
    ]


def test_a_site_that_cannot_work_fails(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(SITE.replace("doors:\n", ISLAND, 1))
    proc = check_site(path)
    assert proc.returncode == 1
    out = proc.stdout.splitlines()
    assert out[0].startswith(
        f"{path}:9: error: zones 'lab-a', 'lab-b' are reached only through doors without counting"
    )
    assert out[-1] == (
        f"{path}: site 'odd' (Odd Centre), 6 zones, 3 doors, 1 presence sensors: 1 error: "
        "it cannot count as described"
    )
    assert len(out) == 5  # the error, the three warnings, the verdict


def test_run_logs_what_check_site_says(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(SITE)
    log = tmp_path / "collector.log"
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "footfall_collector.cli", "run", "--site", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={
                **os.environ,
                "FOOTFALL_INFLUX__URL": f"http://127.0.0.1:{free_port()}",
                "FOOTFALL_MQTT__PORT": str(free_port()),
            },
        )
    try:
        wait_for(lambda: "InfluxDB" in log.read_text(), 20, "the collector started")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    warnings = [line for line in log.read_text().splitlines() if f"site file {path}" in line]
    assert len(warnings) == 3 and all("WARNING" in line for line in warnings)
    assert f"site file {path}, zones[1].capacity: zone 'library': capacity 150" in warnings[0]


def test_run_refuses_a_folder_with_no_site_to_serve(tmp_path: Path) -> None:
    """As footfall-web and footfall-alerts do: a folder with no site file, or only broken
    ones, stops the start with exit status 2 and each file's reason (a collector that
    serves nothing would look healthy while no crossing is stored)."""

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "footfall_collector.cli", "run", "--sites-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "FOOTFALL_INFLUX__URL": f"http://127.0.0.1:{free_port()}"},
        )

    empty = run()
    assert empty.returncode == 2
    assert f"{tmp_path}: no site to serve: no site files (NAME.yaml) in it" in empty.stderr
    (tmp_path / "odd.yaml").write_text(SITE.replace("capacity: 100", "capacity: -1"))
    broken = run()
    assert broken.returncode == 2
    assert f"{tmp_path}: no site to serve: {tmp_path / 'odd.yaml'}:5: " in broken.stderr
    assert "zones[0].capacity" in broken.stderr
