"""Collector settings and InfluxDB preparation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from footfall_collector.config import InfluxSettings
from footfall_collector.influx import InfluxV1, InfluxV2, RetryableWriteError, connect
from footfall_sim.localservices import Influx, free_port
from tests.support.collector import write_site


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "footfall_collector.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_bad_environment_value_names_the_field(tmp_path: Path) -> None:
    proc = run_cli("run", "--site", str(write_site(tmp_path)), env={"FOOTFALL_MQTT__PORT": "many"})
    assert proc.returncode == 2
    assert "environment: invalid configuration" in proc.stderr
    assert "mqtt.port: must be a whole number (got 'many')" in proc.stderr
    assert "FOOTFALL_MQTT__PORT" in proc.stderr


def test_bad_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text("[influx\nurl = 1\n")
    proc = run_cli("run", "--site", str(write_site(tmp_path)), "--config", str(config))
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr


def test_check_site_reports_ok(tmp_path: Path) -> None:
    proc = run_cli("check-site", str(write_site(tmp_path)))
    assert proc.returncode == 0 and "4 zones, 5 doors, 1 presence sensors: OK" in proc.stdout


@pytest.mark.services
def test_database_and_retention_policy_are_created(influx: Influx) -> None:
    settings = InfluxSettings(
        url=influx.url, database="footfall", retention_policy="two_years", retention_duration="730d"
    )
    db = InfluxV1(settings)
    db.ensure_database()
    db.ensure_database()  # again: nothing to do, no error
    policies = db.query('SHOW RETENTION POLICIES ON "footfall"')
    rows = {v[0]: v for v in policies[0]["values"]}
    assert rows["two_years"][1] == "17520h0m0s" and rows["two_years"][-1] is True  # default
    assert rows["rollups"][1] == "0s" and rows["rollups"][-1] is False  # kept for ever
    db.write(["crossing,site=s,door=d,dir=in,agent=a count=1i 1795428902120000000"])
    assert db.ping()


@pytest.mark.services
def test_default_retention_keeps_raw_events_400_days_and_rollups_for_ever(influx: Influx) -> None:
    db = InfluxV1(InfluxSettings(url=influx.url, database="footfall", rollup_retention="520w"))
    db.ensure_database()
    db.ensure_database()
    rows = {v[0]: v for v in db.query('SHOW RETENTION POLICIES ON "footfall"')[0]["values"]}
    assert rows["autogen"][1] == "9600h0m0s" and rows["autogen"][-1] is True
    assert rows["rollups"][1] == "87360h0m0s" and rows["rollups"][-1] is False
    db.write(["visits_daily,site=s,zone=z entries=1i 1795428902120000000"], rp="rollups")
    got = db.query('SELECT "entries" FROM "rollups"."visits_daily"')
    assert got[0]["values"] == [[1795428902120000000, 1]]


def test_retention_settings_refuse_what_influxdb_would() -> None:
    for bad in ("400", "400 d", "400d\n", "-1d", "400y"):
        with pytest.raises(ValueError, match="retention_duration"):
            InfluxSettings(retention_duration=bad)


def test_influx_away_is_retryable() -> None:
    db = InfluxV1(InfluxSettings(url=f"http://127.0.0.1:{free_port()}", timeout_s=1))
    with pytest.raises(RetryableWriteError, match="unreachable"):
        db.write(["m f=1i 1"])
    assert db.ping() is False


def test_v2_needs_token_org_and_bucket() -> None:
    with pytest.raises(ValueError, match=r"needs influx\.token, influx\.org and influx\.bucket"):
        connect(InfluxSettings(api="v2", url="http://127.0.0.1:1"))
    db = connect(InfluxSettings(api="v2", url="http://127.0.0.1:1", token="t", org="o", bucket="b"))
    assert isinstance(db, InfluxV2)
    db.close()
