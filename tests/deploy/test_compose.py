"""The server deployment files, checked without Docker (there is no engine on these
machines): deploy/server/docker-compose.yml parsed with PyYAML, Dockerfile.collector, the
systemd units, and how they fit the broker config, the collector's settings and its
command line."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from footfall_alerts.cli import main as alerts_main
from footfall_alerts.config import AlertsSettings
from footfall_collector.cli import main as collector_main
from footfall_collector.config import CollectorSettings
from footfall_contract.settings import load_settings
from tests.support.broker_users import MOSQUITTO_DIR, REPO

SERVER = REPO / "deploy" / "server"
COMPOSE = SERVER / "docker-compose.yml"
DOCKERFILE = SERVER / "Dockerfile.collector"
UNITS = SERVER / "systemd"

# Host paths the compose file mounts that are made at deploy time, not kept in the
# repository (deploy/server/.gitignore): the broker's password file and TLS key.
DEPLOY_TIME = {SERVER / "secrets" / "mosquitto"}
# Filled by the web-dashboards work (Grafana provisioning and dashboard JSON); Docker
# mounts an empty folder until then.
DASHBOARDS = {
    REPO / "dashboards" / "grafana" / "provisioning",
    REPO / "dashboards" / "grafana" / "dashboards",
}

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} (enough for ours)."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m[1], m[2] or "", m[3] or ""
        if name in env and (env[name] or not op.startswith(":")):
            return env[name]
        if op.endswith("?"):
            raise KeyError(f"{name} must be set: {arg}")
        return arg if op.endswith("-") else ""

    return _VAR.sub(sub, value)


def resolve(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve(v, env) for v in node]
    if isinstance(node, dict):
        return {k: resolve(v, env) for k, v in node.items()}
    return node


def env_example(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line.strip())
        if m:
            values[m[1]] = m[2]
    return values


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """The compose file as `docker compose` sees it with .env.example filled in."""
    env = {k: v or "secret" for k, v in env_example(SERVER / ".env.example").items()}
    resolved = resolve(raw, env)
    assert isinstance(resolved, dict)
    return resolved


def published(service: dict[str, Any]) -> dict[int, str]:
    """container port -> host address, from short-syntax "addr:host:container" ports."""
    out: dict[int, str] = {}
    for spec in service.get("ports", []):
        parts = str(spec).split(":")
        assert len(parts) == 3, f"give the host address explicitly: {spec!r}"
        addr, host_port, container_port = parts
        assert host_port == container_port, spec
        out[int(container_port)] = addr
    return out


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """container path -> (source, read-only), short syntax "source:target[:ro]"."""
    out: dict[str, tuple[str, bool]] = {}
    for spec in service.get("volumes", []):
        source, target, *opts = str(spec).split(":")
        out[target] = (source, "ro" in opts)
    return out


def host_path(source: str) -> Path | None:
    """A bind mount's host path (relative to the compose file), None for a named volume."""
    if source.startswith((".", "/")):
        return (SERVER / source).resolve()
    return None


# -- compose --------------------------------------------------------------------------------


def test_services_images_and_restart_policy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"mosquitto", "influxdb", "grafana", "collector", "alerts"}
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"
    assert services["influxdb"]["image"] == "influxdb:1.11"
    assert services["grafana"]["image"].startswith("grafana/grafana-oss:")
    assert "build" in services["collector"]
    assert services["alerts"]["build"] == services["collector"]["build"]  # the same image
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["logging"]["options"]["max-size"], name  # logs are rotated


def test_ports_plain_services_only_on_loopback(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert published(services["mosquitto"]) == {1883: "127.0.0.1", 8883: "0.0.0.0"}
    assert published(services["influxdb"]) == {8086: "127.0.0.1"}
    assert published(services["collector"]) == {9108: "127.0.0.1"}
    assert published(services["alerts"]) == {9110: "127.0.0.1"}  # its API has no login
    assert set(published(services["grafana"])) == {3000}


def test_named_volumes_hold_the_state(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(compose["volumes"]) == {
        "mosquitto-data",
        "influxdb-data",
        "grafana-data",
        "alerts-data",
    }
    assert mounts(services["mosquitto"])["/mosquitto/data"] == ("mosquitto-data", False)
    assert mounts(services["influxdb"])["/var/lib/influxdb"] == ("influxdb-data", False)
    assert mounts(services["grafana"])["/var/lib/grafana"] == ("grafana-data", False)
    assert mounts(services["alerts"])["/var/lib/footfall-alerts"] == ("alerts-data", False)
    used = {src for s in services.values() for src, _ in mounts(s).values() if not host_path(src)}
    assert used == set(compose["volumes"])


def test_every_mounted_host_path_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for target, (source, _) in mounts(service).items():
            path = host_path(source)
            if path is None:
                continue
            assert path.is_relative_to(REPO), (name, source)
            if path in DEPLOY_TIME:
                ignored = subprocess.run(
                    ["git", "-C", str(REPO), "check-ignore", "-q", str(path / "passwd")],
                    check=False,
                )
                assert ignored.returncode == 0, f"{path} holds secrets: git must ignore it"
            elif path in DASHBOARDS:
                assert name == "grafana"
            else:
                assert path.exists(), f"{name}: {source} -> {target} does not exist"


def test_broker_mounts_cover_every_path_in_its_config(compose: dict[str, Any]) -> None:
    service = compose["services"]["mosquitto"]
    volumes = mounts(service)
    assert volumes["/mosquitto/config"] == ("../mosquitto", True)
    assert host_path(volumes["/mosquitto/config"][0]) == MOSQUITTO_DIR
    assert host_path(volumes["/mosquitto/secrets"][0]) in DEPLOY_TIME
    config = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    paths = re.findall(r"^\w+ (/\S+)", config, flags=re.MULTILINE)
    assert len(paths) >= 6
    for path in paths:
        assert any(path.startswith(target + "/") for target in volumes), path
        if path.startswith("/mosquitto/config/"):
            assert (MOSQUITTO_DIR / path.removeprefix("/mosquitto/config/")).exists(), path


def test_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
    collector = " ".join(services["collector"]["healthcheck"]["test"])
    assert "9108/healthz" in collector
    assert "8086/ping" in " ".join(services["influxdb"]["healthcheck"]["test"])
    depends = services["collector"]["depends_on"]
    assert depends["influxdb"]["condition"] == "service_healthy"
    assert "mosquitto" in depends
    assert "9110/healthz" in " ".join(services["alerts"]["healthcheck"]["test"])
    assert "mosquitto" in services["alerts"]["depends_on"]


def test_every_variable_is_in_env_example(raw: dict[str, Any]) -> None:
    used = set(_VAR.findall(COMPOSE.read_text()))
    names = {name for name, _, _ in used}
    required = {name for name, op, _ in used if op.endswith("?")}
    example = env_example(SERVER / ".env.example")
    assert names == set(example), "document every compose variable, and only those"
    assert required <= names
    with pytest.raises(KeyError):  # passwords have no default: compose refuses to start
        resolve(raw, {})


def test_collector_service_configures_the_collector(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = compose["services"]["collector"]
    build = collector["build"]
    assert (SERVER / build["context"]).resolve() == REPO
    assert (REPO / build["dockerfile"]).resolve() == DOCKERFILE
    assert collector["env_file"] == ["collector.env"]
    assert (SERVER / "collector.env.example").is_file()
    # The environment the container gets, read by the collector's own settings loader.
    for key in list(os.environ):
        if key.startswith("FOOTFALL_"):
            monkeypatch.delenv(key)
    env = env_example(SERVER / "collector.env.example") | collector["environment"]
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    settings = load_settings(CollectorSettings)
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.username) == (
        "mosquitto",
        1883,
        "collector",
    )
    assert settings.influx.url == "http://influxdb:8086"
    assert settings.influx.database == "footfall"
    assert settings.influx.username == "collector" and settings.influx.password is not None
    assert not settings.influx.create_database
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 9108)
    # The site file it mounts is where the image's command reads it, and is a valid site.
    source, read_only = mounts(collector)["/etc/footfall/site.yaml"]
    assert read_only and _dockerfile_cmd()[-1] == "/etc/footfall/site.yaml"
    site = host_path(source)
    assert site is not None
    assert collector_main(["check-site", str(site)]) == 0


def test_alerts_service_configures_footfall_alerts(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    alerts = compose["services"]["alerts"]
    assert alerts["env_file"] == ["alerts.env"]
    assert (SERVER / "alerts.env.example").is_file()
    ignored = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "-q", str(SERVER / "alerts.env")], check=False
    )
    assert ignored.returncode == 0, "alerts.env holds secrets: git must ignore it"
    for key in list(os.environ):
        if key.startswith("FOOTFALL_"):
            monkeypatch.delenv(key)
    env = env_example(SERVER / "alerts.env.example") | alerts["environment"]
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    settings = load_settings(AlertsSettings)
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.username) == (
        "mosquitto",
        1883,
        "alerts",
    )
    assert settings.influx.url == "http://influxdb:8086" and not settings.influx.create_database
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 9110)
    assert str(settings.state_dir) == "/var/lib/footfall-alerts"
    assert settings.smtp.security == "starttls"
    # The command reads the mounted site and rules files, which are valid together.
    command = alerts["command"]
    assert command[:2] == ["footfall-alerts", "run"]
    volumes = mounts(alerts)
    site_src, site_ro = volumes[command[command.index("--site") + 1]]
    rules_src, rules_ro = volumes[command[command.index("--rules") + 1]]
    assert site_ro and rules_ro
    site, rules = host_path(site_src), host_path(rules_src)
    assert site is not None and rules is not None
    assert alerts_main(["check-rules", str(rules), "--site", str(site)]) == 0
    # The state volume is created by the image for its user.
    runs = " ".join(rest for word, rest in _instructions() if word == "RUN")
    assert "install -d -o footfall -g footfall -m 700 /var/lib/footfall-alerts" in runs


def test_grafana_gets_the_influx_read_user(compose: dict[str, Any]) -> None:
    env = compose["services"]["grafana"]["environment"]
    influx = compose["services"]["influxdb"]["environment"]
    assert env["FOOTFALL_INFLUX_URL"] == "http://influxdb:8086"
    assert env["FOOTFALL_INFLUX_USER"] == influx["INFLUXDB_READ_USER"]
    assert env["FOOTFALL_INFLUX_PASSWORD"] == influx["INFLUXDB_READ_USER_PASSWORD"]
    assert mounts(compose["services"]["grafana"])["/var/lib/grafana/dashboards"][1]


# -- Dockerfile -------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _dockerfile_cmd() -> list[str]:
    cmds = [rest for word, rest in _instructions() if word == "CMD"]
    assert len(cmds) == 1
    value = yaml.safe_load(cmds[0])  # exec form: a JSON array
    assert isinstance(value, list)
    return [str(v) for v in value]


def test_dockerfile_installs_the_collector_extra_only() -> None:
    instructions = _instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    installs = [i.split() for i in re.findall(r"pip install [^&;]*", runs)]
    assert installs == [["pip", "install", "'.[collector]'"]], installs
    assert "gpiozero" not in runs and "[edge" not in runs and "[all" not in runs
    assert any(word == "USER" and rest != "root" for word, rest in instructions)
    assert _dockerfile_cmd() == ["footfall-collector", "run", "--site", "/etc/footfall/site.yaml"]
    # What it copies exists, and the build context's ignore file lets it through.
    ignore = (SERVER / "Dockerfile.collector.dockerignore").read_text().splitlines()
    for word, rest in instructions:
        if word == "COPY":
            *sources, _dest = rest.split()
            for src in sources:
                assert (REPO / src).exists(), src
                assert f"!{src.rstrip('/')}/" in ignore or f"!{src}" in ignore, src


def test_collector_extra_and_code_need_no_gpio() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = " ".join(extras["dependencies"] + extras["optional-dependencies"]["collector"])
    assert "gpiozero" not in deps and "lgpio" not in deps
    pattern = re.compile(r"^\s*(from|import)\s+(gpiozero|footfall_edge)\b", re.MULTILINE)
    for package in ("collector", "contract"):
        for source in (REPO / package).rglob("*.py"):
            assert not pattern.search(source.read_text()), source


def test_command_lines_parse() -> None:
    """The image's and the units' command lines get past argument parsing: with a site file
    that does not exist they fail on the site (exit 2), not on an option (SystemExit)."""
    commands = [_dockerfile_cmd()] + [shlex.split(_unit(u)["Service"]["ExecStart"]) for u in _UNITS]
    for argv in commands:
        assert Path(argv[0]).name == "footfall-collector", argv
        args = [a if not a.endswith(".yaml") else "/nonexistent/site.yaml" for a in argv[1:]]
        assert collector_main(args) == 2, argv


# -- systemd ----------------------------------------------------------------------------------

_UNITS = ("footfall-collector.service", "footfall-collector@.service")


def _unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNITS / name).read_text())
    return parser


@pytest.mark.parametrize("name", _UNITS)
def test_systemd_unit(name: str) -> None:
    unit = _unit(name)
    service = unit["Service"]
    assert service["Restart"] == "always"
    assert "footfall-collector" in service["ExecStart"]
    assert " run --site /etc/footfall/" in service["ExecStart"]
    assert service["User"] not in ("", "root")
    assert service["EnvironmentFile"]
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    if name.endswith("@.service"):
        assert "--site /etc/footfall/sites/%i.yaml" in service["ExecStart"]


def test_alerts_systemd_unit() -> None:
    unit = _unit("footfall-alerts.service")
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "footfall-alerts"
    assert argv[-3:] == ["run", "--site", "/etc/footfall/site.yaml"]
    assert service["Restart"] == "always" and service["User"] not in ("", "root")
    assert service["EnvironmentFile"] == "/etc/footfall/alerts.env"
    # The state directory systemd makes writable is the one the service is told to use.
    assert service["StateDirectory"] == "footfall-alerts"
    assert "FOOTFALL_STATE_DIR=/var/lib/footfall-alerts" in unit.get("Service", "Environment")
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # Past argument parsing: it fails on the missing site file (exit 2), not on an option.
    assert alerts_main([*argv[1:-1], "/nonexistent/site.yaml"]) == 2


def test_systemd_units_verify(tmp_path: Path) -> None:
    """systemd's own parser knows every key; the only complaint allowed is that the
    collector is not installed on this machine."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    for name in (*_UNITS, "footfall-alerts.service"):
        shutil.copy(UNITS / name, tmp_path / name)
    targets = [
        tmp_path / "footfall-collector.service",
        tmp_path / "footfall-collector@x.service",
        tmp_path / "footfall-alerts.service",
    ]
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, targets)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if line.strip()
        and "footfall-collector is not executable" not in line
        and "footfall-alerts is not executable" not in line
    ]
    assert complaints == []
