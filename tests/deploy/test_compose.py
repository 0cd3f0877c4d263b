"""The server deployment files, checked without Docker (there is no engine on these
machines): deploy/server/docker-compose.yml parsed with PyYAML, Dockerfile.collector, the
systemd units, and how they fit the broker config, the collector's settings and its
command line."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from footfall_alerts.cli import main as alerts_main
from footfall_alerts.config import AlertsSettings
from footfall_collector.cli import main as collector_main
from footfall_collector.config import CollectorSettings
from footfall_collector.schema import occupancy_history_point
from footfall_contract.timefmt import format_ts
from footfall_runtime.settings import ConfigError, load_settings
from footfall_sim.localservices import Influx, free_port
from footfall_web.auth import check_bind_policy, hash_password
from footfall_web.cli import main as web_main
from footfall_web.config import WebSettings
from tests.deploy.conftest import USERS
from tests.support.broker_users import MOSQUITTO_DIR, REPO, RepoBroker, User
from tests.support.collector import now_ms

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
    assert set(services) == {"mosquitto", "influxdb", "grafana", "collector", "alerts", "web"}
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"
    assert services["influxdb"]["image"] == "influxdb:1.11"
    assert services["grafana"]["image"].startswith("grafana/grafana-oss:")
    assert "build" in services["collector"]
    assert services["alerts"]["build"] == services["collector"]["build"]  # the same image
    assert services["web"]["build"] == services["collector"]["build"]
    assert services["web"]["image"] == services["collector"]["image"]
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["logging"]["options"]["max-size"], name  # logs are rotated


def test_ports_plain_services_only_on_loopback(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert published(services["mosquitto"]) == {1883: "127.0.0.1", 8883: "0.0.0.0"}
    assert published(services["influxdb"]) == {8086: "127.0.0.1"}
    assert published(services["collector"]) == {9108: "127.0.0.1"}
    assert published(services["alerts"]) == {9110: "127.0.0.1"}  # its API has no login
    # Behind a reverse proxy with TLS on the host by default (WEB_BIND in .env.example).
    assert published(services["web"]) == {8080: "127.0.0.1"}
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
    # The web app keeps no state: only the site file, read-only.
    assert [ro for _src, ro in mounts(services["web"]).values()] == [True]
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
    assert "8080/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["web"]["depends_on"]["influxdb"]["condition"] == "service_healthy"
    assert "mosquitto" in services["web"]["depends_on"]


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


def _web_env(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The web container's environment: web.env (from its example; compose's `environment`
    wins over `env_file`), quotes removed as compose and systemd do."""
    web = compose["services"]["web"]
    assert web["env_file"] == ["web.env"]
    for key in list(os.environ):
        if key.startswith("FOOTFALL_"):
            monkeypatch.delenv(key)
    example = {k: v.strip("'") for k, v in env_example(SERVER / "web.env.example").items()}
    return example | {k: str(v) for k, v in web["environment"].items()}


def test_web_service_configures_footfall_web(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    web = compose["services"]["web"]
    assert (SERVER / "web.env.example").is_file()
    ignored = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "-q", str(SERVER / "web.env")], check=False
    )
    assert ignored.returncode == 0, "web.env holds secrets: git must ignore it"
    for key, value in _web_env(compose, monkeypatch).items():
        monkeypatch.setenv(key, value)
    settings = load_settings(WebSettings)
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.username) == (
        "mosquitto",
        1883,
        "web",  # deploy/mosquitto/acl: read-only, occupancy, alerts, agent status
    )
    assert settings.influx.url == "http://influxdb:8086" and not settings.influx.create_database
    assert settings.influx.username == "grafana" and settings.influx.password is not None
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 8080)
    # Beyond loopback: the example (no users, no tokens) is refused until some are added.
    assert check_bind_policy(settings.http.host, None, 0, 1) is True
    with pytest.raises(ConfigError, match="no users or tokens"):
        check_bind_policy(settings.http.host, settings.auth.require_login, 0, 0)
    # The command reads the folder the site file is mounted into; the file is a valid site
    # under a name footfall-web takes (NAME.yaml, no dot in NAME).
    command = web["command"]
    assert command == ["footfall-web", "run", "--sites-dir", "/etc/footfall/sites"]
    assert web_main(["run", "--sites-dir", "/nonexistent/sites"]) == 2  # parses
    [(target, (source, read_only))] = mounts(web).items()
    assert read_only and Path(target).parent == Path(command[-1])
    assert Path(target).suffix == ".yaml" and "." not in Path(target).stem
    site = host_path(source)
    assert site is not None and collector_main(["check-site", str(site)]) == 0
    assert source == mounts(compose["services"]["collector"])["/etc/footfall/site.yaml"][0]


def test_grafana_gets_the_influx_read_user(compose: dict[str, Any]) -> None:
    env = compose["services"]["grafana"]["environment"]
    influx = compose["services"]["influxdb"]["environment"]
    assert env["FOOTFALL_INFLUX_URL"] == "http://influxdb:8086"
    assert env["FOOTFALL_INFLUX_USER"] == influx["INFLUXDB_READ_USER"]
    assert env["FOOTFALL_INFLUX_PASSWORD"] == influx["INFLUXDB_READ_USER_PASSWORD"]
    assert mounts(compose["services"]["grafana"])["/var/lib/grafana/dashboards"][1]
    web = compose["services"]["web"]["environment"]  # footfall-web reads with the same user
    assert web["FOOTFALL_INFLUX__USERNAME"] == influx["INFLUXDB_READ_USER"]
    assert web["FOOTFALL_INFLUX__PASSWORD"] == influx["INFLUXDB_READ_USER_PASSWORD"]


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


def test_image_holds_the_web_app_and_its_package_data() -> None:
    """The image installs footfall_web from dashboards/footfall_web, and every template,
    script, style and vendored file is package data (else the installed app has no pages)."""
    copies = [rest.split() for word, rest in _instructions() if word == "COPY"]
    assert ["dashboards/footfall_web", "./dashboards/footfall_web"] in copies
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "dashboards" in pyproject["packages"]["find"]["where"]
    package = REPO / "dashboards" / "footfall_web"
    data = {
        f for pattern in pyproject["package-data"]["footfall_web"] for f in package.glob(pattern)
    }
    files = {
        f
        for folder in ("templates", "static")
        for f in (package / folder).rglob("*")
        if f.is_file() and "__pycache__" not in f.parts
    }
    assert files and files == data, sorted(str(f.relative_to(package)) for f in files ^ data)


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


# -- the web service, run ---------------------------------------------------------------------


class AuthInflux(Influx):
    """InfluxDB 1.x with authentication on, as the compose file runs it
    (INFLUXDB_HTTP_AUTH_ENABLED)."""

    def command(self) -> list[str]:
        argv = super().command()
        conf = self.workdir / "influxdb.conf"
        conf.write_text(conf.read_text().replace("[http]\n", "[http]\n  auth-enabled = true\n"))
        return argv


def influx_call(url: str, path: str, data: str, user: str = "", password: str = "") -> int:
    """POST to InfluxDB's /query (q=...) or /write (line protocol): the HTTP status."""
    params: dict[str, str] = {"db": "footfall"}
    if user:
        params |= {"u": user, "p": password}
    body = ({"q": data} if path == "/query" else None, data if path == "/write" else None)
    r = httpx.post(f"{url}{path}", params=params, data=body[0], content=body[1], timeout=10)
    return r.status_code


@pytest.mark.services
def test_web_service_runs_with_its_compose_environment(
    compose: dict[str, Any],
    broker: RepoBroker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`footfall-web run --sites-dir` with the web container's environment (web.env from
    its example, then compose's values; only the host names and ports point at local
    services): the repository's broker with the `web` account, InfluxDB with
    authentication and the read-only user the InfluxDB image creates, the mounted site."""
    env = _web_env(compose, monkeypatch)
    web = compose["services"]["web"]
    influx = AuthInflux(tmp_path / "influx")
    influx.start()
    proc: subprocess.Popen[str] | None = None
    try:
        # What the influxdb image does at its first start (INFLUXDB_* in the compose file).
        admin = ("admin", "admin-pw")
        reader = (env["FOOTFALL_INFLUX__USERNAME"], env["FOOTFALL_INFLUX__PASSWORD"])
        for q in (
            f"CREATE USER {admin[0]} WITH PASSWORD '{admin[1]}' WITH ALL PRIVILEGES",
            "CREATE DATABASE footfall",
            f"CREATE USER {reader[0]} WITH PASSWORD '{reader[1]}'",
            f"GRANT READ ON footfall TO {reader[0]}",
        ):
            assert influx_call(influx.url, "/query", q, *admin) == 200, q
        ts_ns = (now_ms() - 600_000) * 1_000_000
        # the history the board charts: what the collector's history worker writes
        point = occupancy_history_point("iso-omena", "library", 77, 0, ts_ns).line()
        assert influx_call(influx.url, "/write", point, *admin) == 204
        assert influx_call(influx.url, "/write", point, *reader) == 403  # read-only indeed

        # The site file, where the compose file mounts it.
        [(target, (source, _ro))] = mounts(web).items()
        site_src = host_path(source)
        assert site_src is not None
        sites = tmp_path / "etc" / Path(target).parent.relative_to("/etc")
        sites.mkdir(parents=True)
        shutil.copy(site_src, sites / Path(target).name)

        port = free_port()
        env |= {
            "FOOTFALL_MQTT__HOST": "127.0.0.1",
            "FOOTFALL_MQTT__PORT": str(broker.port),
            "FOOTFALL_MQTT__PASSWORD": USERS["web"],  # the line add-agent --role web writes
            "FOOTFALL_INFLUX__URL": influx.url,
            "FOOTFALL_HTTP__PORT": str(port),
        }
        argv = [str(Path(sys.executable).parent / web["command"][0]), *web["command"][1:-1]]
        argv.append(str(sites))
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}

        # As the example comes (no users, no tokens): refused, it would be open.
        refused = subprocess.run(
            argv, env=base_env | env, capture_output=True, text=True, timeout=60
        )
        assert refused.returncode == 2 and "no users or tokens" in refused.stderr

        token = "a-long-random-token-0123"
        env |= {
            "FOOTFALL_AUTH__USERS": json.dumps({"manager": hash_password("pw-manager", n=2**10)}),
            "FOOTFALL_AUTH__TOKENS": json.dumps([token]),
        }
        proc = subprocess.Popen(
            argv, env=base_env | env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[0]
        # The container's healthcheck command, on this port.
        check = [a.replace(":8080/", f":{port}/") for a in web["healthcheck"]["test"][1:]]
        check[0] = sys.executable
        assert subprocess.run(check, capture_output=True, timeout=30).returncode == 0

        occupancy = {"count": 123, "capacity": 350, "ratio": 0.3514, "ts": format_ts(now_ms())}
        status = {"state": "online", "epoch": "e1", "ts": format_ts(now_ms()), "sw": "0.1.0"}
        collector = User(broker.port, "collector", USERS["collector"], v5=True)
        agent = User(broker.port, "agent-a", USERS["agent-a"])
        try:
            topic = "footfall/v1/iso-omena"
            collector.publish(f"{topic}/zone/library/occupancy", json.dumps(occupancy), retain=True)
            agent.publish(f"{topic}/agent/agent-a/status", json.dumps(status), retain=True)
        finally:
            collector.close()
            agent.close()

        bearer = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/api/v1/sites").status_code == 401  # beyond loopback: login
            board = http.get("/", follow_redirects=False)
            assert board.status_code == 303 and "/login" in board.headers["location"]
            assert http.get("/crowding/iso-omena/library").status_code == 200  # public
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                occ = http.get("/api/v1/sites/iso-omena/occupancy", headers=bearer).json()
                zones = {z["zone"]: z["count"] for z in occ["zones"]}
                if zones["library"] == 123 and occ["agents"]:
                    break
                time.sleep(0.1)
            assert zones["library"] == 123
            assert [(a["agent"], a["online"]) for a in occ["agents"]] == [("agent-a", True)]
            history = http.get(
                "/api/v1/sites/iso-omena/zones/library/history?from=-1h", headers=bearer
            )
            assert history.status_code == 200, history.text
            assert 77 in [p["count"] for p in history.json()["points"]], history.json()
            login = http.post(
                "/login",
                data={"user": "manager", "password": "pw-manager", "next": "/"},
                follow_redirects=False,
            )
            assert login.status_code == 303 and login.headers["location"] == "/"
            assert http.get("/").status_code == 200
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        influx.kill()
