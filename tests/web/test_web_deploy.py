"""footfall-web's systemd unit and example environment file."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from footfall_contract.shards import parse_shard
from footfall_contract.sitefolder import SiteFolder
from footfall_runtime.settings import ConfigError, load_settings
from footfall_web.auth import hash_password
from footfall_web.cli import main as web_main
from footfall_web.config import WebSettings
from footfall_web.sitesdir import first_scan

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy/server/systemd/footfall-web.service"
ENV_EXAMPLE = REPO / "deploy/server/web.env.example"


def test_systemd_unit() -> None:
    unit = configparser.RawConfigParser(strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "footfall-web"
    assert argv[1:] == ["run", "--sites-dir", "/etc/footfall/sites"]
    assert service["Restart"] == "always" and service["User"] not in ("", "root")
    assert service["EnvironmentFile"] == "/etc/footfall/web.env"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # past argument parsing: it fails on the missing folder (exit 2), not on an option
    assert web_main([*argv[1:-1], "/nonexistent/sites"]) == 2


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    shutil.copy(UNIT, tmp_path / UNIT.name)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / UNIT.name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if line.strip() and "footfall-web is not executable" not in line
    ]
    assert not complaints, complaints


def test_env_example_names_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variable in the example, commented out or not, is a setting footfall-web
    accepts (a typo would be refused at start)."""
    found = 0
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*(FOOTFALL_[A-Z0-9_]+)=(.*)$", line)
        if not match:
            continue
        name, value = match[1], match[2].strip("'")  # quotes go, as compose and systemd do
        if name == "FOOTFALL_AUTH__USERS":
            value = json.dumps({"manager": hash_password("example-pass", n=2**10)})
        elif name == "FOOTFALL_AUTH__TOKENS":
            value = '["a-long-random-token"]'
        elif value == "":
            value = "x" * 20
        monkeypatch.setenv(name, value)
        found += 1
    assert found >= 15
    settings = load_settings(WebSettings)
    assert settings.http.port == 8080 and settings.influx.create_database is False


def test_sites_dir_loads_site_files_only(tmp_path: Path) -> None:
    """The folder's first scan at start: site files only, and nothing to serve refused
    with the reason (a site id in two files names both files)."""
    sites = first_scan(SiteFolder(REPO / "deploy/sites"), None)  # *.alerts.yaml skipped
    assert [s.site for s in sites] == ["iso-omena", "kalajarvi"]
    with pytest.raises(ConfigError, match="no site to serve: no site files"):
        first_scan(SiteFolder(tmp_path), None)
    assert first_scan(SiteFolder(tmp_path), parse_shard("1/2")) == []  # an empty shard
    for name in ("a.yaml", "b.yaml"):
        shutil.copy(REPO / "deploy/sites/kalajarvi.yaml", tmp_path / name)
    with pytest.raises(ConfigError) as refused:
        first_scan(SiteFolder(tmp_path), None)
    assert (
        f"{tmp_path / 'a.yaml'}: site 'kalajarvi' is also in {tmp_path / 'b.yaml'} (both refused)"
        in str(refused.value)
    )
    assert web_main(["run", "--sites-dir", str(tmp_path / "nope")]) == 2


def test_pages_and_scripts_name_no_other_host() -> None:
    """Everything a page loads is served by footfall-web (the browser tests also watch
    the requests); the chart library is vendored with its licence."""
    package = REPO / "dashboards/footfall_web"
    vendor = package / "static/vendor/uplot"
    assert {"uPlot.iife.min.js", "uPlot.min.css", "LICENSE", "VERSION"} <= {
        p.name for p in vendor.iterdir()
    }
    assert "MIT" in (vendor / "LICENSE").read_text()
    for path in [*package.glob("templates/*.html"), *package.glob("static/*.*")]:
        text = path.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), path


def test_env_example_quotes_the_json_settings() -> None:
    """Password hashes contain "$": docker compose expands variables in unquoted and
    double-quoted env_file values, so the example shows them in single quotes (literal for
    compose, and systemd's EnvironmentFile= removes them too)."""
    values = {
        m[1]: m[2]
        for m in re.finditer(
            r"^#?\s*(FOOTFALL_AUTH__(?:USERS|TOKENS))=(.*)$", ENV_EXAMPLE.read_text(), re.M
        )
    }
    assert set(values) == {"FOOTFALL_AUTH__USERS", "FOOTFALL_AUTH__TOKENS"}
    for name, value in values.items():
        assert value.startswith("'") and value.endswith("'"), name
        json.loads(value[1:-1])  # JSON inside
    assert "$" in values["FOOTFALL_AUTH__USERS"]
