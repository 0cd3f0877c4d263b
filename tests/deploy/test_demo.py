"""The README's first command, `deploy/dev/demo.sh`, from a clean clone: it sets up,
starts the whole system, data reaches InfluxDB, Ctrl-C stops everything it started; a
second run reuses what the first one made."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.collector import InfluxQuery, wait_for
from tests.support.services import free_port, port_open

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A clean clone of what is committed, as a newcomer gets it."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    target = tmp_path / "footfall"
    subprocess.run(["git", "clone", "-q", str(REPO), str(target)], check=True, timeout=120)
    return target


class Demo:
    """deploy/dev/demo.sh in its own session, as a terminal would run it."""

    def __init__(self, clone: Path, env: dict[str, str]) -> None:
        self.log = clone / "demo-test.out"
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        self.logs = clone / "var" / "demo"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["deploy/dev/demo.sh"],
                cwd=clone,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_bytes()[self.offset :].decode(errors="replace")

    def wait_running(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while "demo: running" not in self.output():
            assert self.proc.poll() is None, f"the demo exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"the demo did not start:\n{self.output()}"
            time.sleep(0.5)

    def ctrl_c(self, timeout_s: float = 60.0) -> None:
        """SIGINT to the whole process group: what Ctrl-C in a terminal does."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            ps = subprocess.run(
                ["ps", "-o", "pid,stat,wchan:20,args", "-g", str(self.proc.pid)],
                capture_output=True,
                text=True,
            ).stdout
            raise AssertionError(
                f"the demo did not stop within {timeout_s} s\n{ps}\n{self.output()}"
            ) from None
        logs = {p.name: p.read_text(errors="replace")[-3000:] for p in self.logs.glob("*.log")}
        assert "did not stop" not in self.output(), f"{self.output()}\n{logs}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture
def demo_env(clone: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOOTFALL_", "VIRTUAL_ENV"))}
    env.update(
        FOOTFALL_DEMO_MQTT_PORT=str(free_port()),
        FOOTFALL_DEMO_INFLUX_PORT=str(free_port()),
        FOOTFALL_DEMO_COLLECTOR_PORT=str(free_port()),
        FOOTFALL_DEMO_WEB_PORT=str(free_port()),
        FOOTFALL_DEMO_ALERTS_PORT=str(free_port()),
        FOOTFALL_DEMO_SMTP_PORT=str(free_port()),
        FOOTFALL_DEMO_WEBHOOK_PORT=str(free_port()),
        FOOTFALL_DEMO_BACKFILL_DAYS="2",
        FOOTFALL_DEMO_VISITS="60000",
    )
    yield env
    # Whatever happened, nothing the demo started outlives the test.
    subprocess.run(
        [
            str(clone / "deploy/dev/services.sh"),
            "stop",
            "--mqtt-port",
            env["FOOTFALL_DEMO_MQTT_PORT"],
            "--influx-port",
            env["FOOTFALL_DEMO_INFLUX_PORT"],
        ],
        cwd=clone,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.services
@pytest.mark.timeout(900)
def test_demo_from_a_clean_clone_runs_and_stops(clone: Path, demo_env: dict[str, str]) -> None:
    influx = InfluxQuery(f"http://127.0.0.1:{demo_env['FOOTFALL_DEMO_INFLUX_PORT']}")
    collector_port = int(demo_env["FOOTFALL_DEMO_COLLECTOR_PORT"])
    demo = Demo(clone, demo_env)
    try:
        demo.wait_running(timeout_s=600)  # the first run creates the virtual environment
        out = demo.output()
        assert "writing 2 days of simulated history" in out
        assert "http://127.0.0.1:" in out  # it says where to look
        # History from the backfill, live crossings from the simulated agents, occupancy
        # from the collector: the whole chain runs.
        wait_for(
            lambda: bool(influx.rows("SELECT count(*) FROM crossing WHERE time < now() - 1d")),
            timeout_s=30,
            what="backfilled crossings in InfluxDB",
        )
        wait_for(
            lambda: bool(
                influx.rows(
                    "SELECT count(*) FROM crossing WHERE time > now() - 10m AND agent =~ /^sim-/"
                )
            ),
            timeout_s=120,
            what="live crossings from the simulated agents in InfluxDB",
        )
        wait_for(
            lambda: bool(influx.rows("SELECT last(count) FROM occupancy WHERE time > now() - 10m")),
            timeout_s=60,
            what="occupancy written by the collector",
        )
        assert port_open(collector_port)
        # The web board serves the site's live occupancy; the alerts service answers.
        web = f"http://127.0.0.1:{demo_env['FOOTFALL_DEMO_WEB_PORT']}"
        wait_for(lambda: port_open(int(demo_env["FOOTFALL_DEMO_WEB_PORT"])), 60, "the web board")
        zones = http_json(f"{web}/api/v1/sites/iso-omena/occupancy")
        assert "library" in json.dumps(zones)
        alerts = f"http://127.0.0.1:{demo_env['FOOTFALL_DEMO_ALERTS_PORT']}/api/v1/alerts"
        wait_for(lambda: port_open(int(demo_env["FOOTFALL_DEMO_ALERTS_PORT"])), 60, "alerts")
        assert http_json(alerts)["site"] == "iso-omena"
        demo.ctrl_c()
        assert not group_alive(demo.proc.pid), "a process of the demo outlived Ctrl-C"
        assert not port_open(int(demo_env["FOOTFALL_DEMO_MQTT_PORT"]))
        assert not port_open(int(demo_env["FOOTFALL_DEMO_INFLUX_PORT"]))
        for name in ("COLLECTOR", "WEB", "ALERTS", "SMTP", "WEBHOOK"):
            assert not port_open(int(demo_env[f"FOOTFALL_DEMO_{name}_PORT"])), name
        assert "stopping" in demo.output()

        # A second run reuses the environment, the data and today's history.
        demo = Demo(clone, demo_env)
        demo.wait_running(timeout_s=120)
        second = demo.output()
        assert "history: already written today" in second
        assert "installing the project" not in second
        demo.ctrl_c()
        assert not group_alive(demo.proc.pid)
    finally:
        demo.kill()
