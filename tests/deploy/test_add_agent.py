"""deploy/mosquitto/add-agent: broker accounts, and agent folders that deploy/edge/install.sh
turns into a working Pi. The script runs against temporary folders; a real Mosquitto with
the repository's broker config then takes the new accounts, and the agent's folder,
installed on a fake Pi (tests/support/edge_install.py), gives an edge.toml that logs in."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from footfall_contract.topics import agent_topic, zone_occupancy_topic
from footfall_edge.settings import load_config_here
from footfall_runtime.mqttclient import make_client
from tests.support.broker_users import MOSQUITTO_DIR, REPO, RepoBroker, User, UserRecorder
from tests.support.edge_install import FakePi
from tests.support.waiting import eventually

ADD_AGENT = MOSQUITTO_DIR / "add-agent"
SITE = "iso-omena"  # deploy/sites/iso-omena.yaml: add-agent checks the site exists
NOT_AUTHORIZED = 135  # MQTT v5 reason code


def run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(ADD_AGENT), *map(str, args)], capture_output=True, text=True, timeout=60
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"add-agent {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def env_file(path: Path) -> dict[str, str]:
    """KEY='value' lines as systemd's EnvironmentFile= and docker's env_file read them."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(.*)", line)
        if m:
            values[m[1]] = m[2].strip("'")
    return values


def test_help_and_script_hygiene() -> None:
    assert os.access(ADD_AGENT, os.X_OK)
    head = ADD_AGENT.read_text().splitlines()[:12]
    assert head[0] == "#!/usr/bin/env bash" and "set -euo pipefail" in head
    proc = run("--help")
    assert proc.stdout.startswith("Usage:") and "--passwd-file" in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--site", SITE, "--agent", "Library-Pi"],  # upper case
        ["--site", SITE, "--agent", "pi_1"],  # underscore
        ["--site", "bad site", "--agent", "pi-1"],
        ["--site", SITE, "--agent", "-pi"],
        ["--site", SITE, "--agent", "collector"],  # a service account's name
        ["--site", SITE, "--agent", "dashboard"],
        ["--site", SITE, "--agent", "alerts"],
        ["--site", SITE, "--agent", "web"],
        ["--site", SITE],  # no agent
        ["--role", "admin"],
        ["--role", "collector", "--agent", "pi-1"],
        ["--role", "web", "--site", SITE],
        ["--role", "alerts", "--ca-cert", "/etc/hostname"],
        ["--site", SITE, "--agent", "pi-1", "--port", "70000"],
        ["--site", SITE, "--agent", "pi-1", "--broker", "mqtt;rm -rf"],
        ["--site", "iso-omana", "--agent", "pi-1"],  # a typo: no deploy/sites/iso-omana.yaml
        ["--site", "iso-omena.alerts", "--agent", "pi-1"],  # not an id (nor a site file)
        ["--site", "kalajarvi", "--agent", "pi-1", "--sites-dir", "/nonexistent"],
    ],
)
def test_bad_arguments_change_nothing(tmp_path: Path, args: list[str]) -> None:
    proc = run(*args, "--passwd-file", tmp_path / "passwd", "--out", tmp_path / "out", check=False)
    assert proc.returncode != 0 and proc.stderr.startswith("add-agent: "), proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_site_typo_names_the_known_sites(tmp_path: Path) -> None:
    out = ("--passwd-file", tmp_path / "passwd", "--out", tmp_path / "out")
    proc = run("--site", "iso-omana", "--agent", "pi-1", *out, check=False)
    assert proc.returncode == 1
    assert proc.stderr == (
        f"add-agent: --site 'iso-omana': no site file {REPO}/deploy/sites/iso-omana.yaml "
        "(sites: iso-omena, kalajarvi)\n"
    )
    # A file under the site's name that is another site.
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "north.yaml").write_text((REPO / "deploy/sites/kalajarvi.yaml").read_text())
    proc = run("--site", "north", "--agent", "pi-1", "--sites-dir", sites, *out, check=False)
    assert proc.returncode == 1 and "does not say 'site: north'" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sites"]


@pytest.mark.services
def test_new_agent_logs_in_with_the_written_configuration(
    tmp_path: Path, tls_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passwd = tmp_path / "secrets" / "passwd"  # a folder that does not exist yet
    out = tmp_path / "agents"
    common = ("--passwd-file", passwd, "--out", out)
    proc = run(
        "--site", SITE, "--agent", "door-pi-1", "--broker", "localhost",
        "--ca-cert", tls_dir / "ca.crt", *common,
    )  # fmt: skip
    assert "kill -s SIGHUP mosquitto" in proc.stdout and "systemctl reload mosquitto" in proc.stdout
    run("--site", SITE, "--agent", "door-pi-2", "--broker", "10.0.0.5", "--port", "1883", *common)
    run("--role", "collector", *common)

    # Files and modes: secrets readable by their owner only.
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600
    assert sorted(line.split(":")[0] for line in passwd.read_text().splitlines()) == [
        "collector",
        "door-pi-1",
        "door-pi-2",
    ]
    agent_dir = out / "door-pi-1"
    assert sorted(p.name for p in agent_dir.iterdir()) == ["ca.crt", "edge.env", "install.env"]
    for secret in (agent_dir / "edge.env", out / "collector" / "mqtt.env"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(agent_dir.stat().st_mode) == 0o700
    password = env_file(agent_dir / "edge.env")["FOOTFALL_MQTT__PASSWORD"]
    assert re.fullmatch(r"[A-Za-z0-9]{32}", password)
    assert password not in proc.stdout + proc.stderr
    assert "install.sh --from /tmp/footfall-door-pi-1 --door" in proc.stdout
    collector_env = env_file(out / "collector" / "mqtt.env")
    assert collector_env["FOOTFALL_MQTT__USERNAME"] == "collector"
    # What the Pi's installer reads: the broker's host:port and TLS as given (8883 means
    # TLS unless told otherwise), nothing of the doors.
    assert env_file(agent_dir / "install.env") == {
        "SITE": SITE,
        "AGENT": "door-pi-1",
        "BROKER": "localhost:8883",
        "TLS": "true",
    }
    assert env_file(out / "door-pi-2" / "install.env") == {
        "SITE": SITE,
        "AGENT": "door-pi-2",
        "BROKER": "10.0.0.5:1883",
        "TLS": "false",
    }

    # On "the Pi": install.sh --from the agent's folder (copied over), the test broker's
    # TLS port in place of 8883; --tls agrees with install.env, so it is accepted.
    broker = RepoBroker(tmp_path / "mosquitto", passwd, tls_dir)
    broker.start()
    assert broker.tls_port is not None
    bundle = tmp_path / "copied-to-pi"
    bundle.mkdir()
    for f in agent_dir.iterdir():
        (bundle / f.name).write_bytes(f.read_bytes())
    (bundle / "install.env").write_text(
        (agent_dir / "install.env")
        .read_text()
        .replace("localhost:8883", f"localhost:{broker.tls_port}")
    )
    pi = FakePi(tmp_path / "pi")
    inst = pi.install("--from", bundle, "--door", "library-main=17,27", "--tls")
    assert inst.returncode == 0, inst.stdout + inst.stderr
    assert "reachable, credentials accepted" in inst.stdout
    assert pi.systemctl() == [
        "daemon-reload",
        "enable footfall-edge.service",
        "restart footfall-edge.service",
    ]
    config = load_config_here(pi.conf)
    assert (config.site, config.agent, config.mqtt.username) == (SITE, "door-pi-1", "door-pi-1")
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls) == (
        "localhost",
        broker.tls_port,
        True,
    )
    assert config.mqtt.ca_certs == pi.conf_dir / "ca.crt"
    assert [(d.id, d.outer_pin, d.inner_pin) for d in config.doors] == [("library-main", 17, 27)]
    assert config.presence == []
    assert (pi.conf_dir / "ca.crt").read_bytes() == (agent_dir / "ca.crt").read_bytes()
    assert pi.env_file.read_text() == (agent_dir / "edge.env").read_text()
    assert stat.S_IMODE(pi.env_file.stat().st_mode) == 0o600
    monkeypatch.setenv("FOOTFALL_MQTT__PASSWORD", password)
    pi_config = load_config_here(pi.conf)
    collector = UserRecorder(
        broker.port, "collector", collector_env["FOOTFALL_MQTT__PASSWORD"], "footfall/v1/+/agent/#"
    )
    client = make_client(pi_config.mqtt, f"footfall-{SITE}-door-pi-1")  # as the agent does
    try:
        assert client.connect(pi_config.mqtt.host, pi_config.mqtt.port) == 0
        client.loop_start()
        for kind in ("status", "crossing"):
            info = client.publish(agent_topic(SITE, "door-pi-1", kind), kind, qos=1)
            info.wait_for_publish(10)
        # It publishes as itself only.
        client.publish(agent_topic(SITE, "door-pi-2", "crossing"), "forged", qos=1)
        client.publish(zone_occupancy_topic(SITE, "hall"), "forged", qos=1)
        client.publish(agent_topic(SITE, "door-pi-1", "health"), "health", qos=1)
        collector.wait_until(lambda: len(collector.messages) >= 3, 10)
        assert [m.payload for m in collector.messages] == [b"status", b"crossing", b"health"]
    finally:
        client.disconnect()
        client.loop_stop()
        collector.close()
        broker.kill()


@pytest.mark.services
def test_service_roles_get_the_accounts_the_acl_names(tmp_path: Path) -> None:
    """--role collector, alerts, web and dashboard: fixed usernames whose mqtt.env logs in
    with the rights deploy/mosquitto/acl gives that user."""
    passwd = tmp_path / "passwd"
    out = tmp_path / "out"
    roles = ("collector", "alerts", "web", "dashboard")
    outputs = {role: run("--role", role, "--passwd-file", passwd, "--out", out) for role in roles}
    assert sorted(line.split(":")[0] for line in passwd.read_text().splitlines()) == sorted(roles)
    creds: dict[str, str] = {}
    for role in roles:
        env = out / role / "mqtt.env"
        assert sorted(p.name for p in (out / role).iterdir()) == ["mqtt.env"]
        assert stat.S_IMODE(env.stat().st_mode) == 0o600
        values = env_file(env)
        assert values["FOOTFALL_MQTT__USERNAME"] == role
        creds[role] = values["FOOTFALL_MQTT__PASSWORD"]
        assert re.fullmatch(r"[A-Za-z0-9]{32}", creds[role])
        assert creds[role] not in outputs[role].stdout + outputs[role].stderr
    # Where each service's two lines go (deploy/server/*.env.example name the same user).
    for role in ("collector", "alerts", "web"):
        assert f"deploy/server/{role}.env" in (out / role / "mqtt.env").read_text()
        assert f"/etc/footfall/{role}.env" in outputs[role].stdout
        example = env_file(REPO / "deploy" / "server" / f"{role}.env.example")
        assert example["FOOTFALL_MQTT__USERNAME"] == role
    assert len(set(creds.values())) == len(roles)

    broker = RepoBroker(tmp_path / "mosquitto", passwd)
    broker.start()
    users: dict[str, User] = {}
    readers: list[UserRecorder] = []
    try:
        web = UserRecorder(broker.port, "web", creds["web"], "footfall/v1/+/#")
        readers.append(web)
        for role in roles:
            users[role] = User(broker.port, role, creds[role], v5=True)
            assert users[role].accepted, role
        zone = zone_occupancy_topic(SITE, "hall")
        alert = f"footfall/v1/{SITE}/alert/over-capacity-hall"
        for role, topic, payload in (("collector", zone, "zone"), ("alerts", alert, "alert")):
            rc = users[role].publish(topic, payload, retain=True)
            assert rc is not None and not rc.is_failure, (role, rc)
        for role in ("web", "dashboard"):  # read-only accounts
            rc = users[role].publish(zone, "forged")
            assert rc is not None and rc.value == NOT_AUTHORIZED, (role, rc)
        web.wait_until(lambda: len(web.messages) >= 2, 10)
        web.sync()
        assert sorted(m.payload for m in web.messages) == [b"alert", b"zone"]
    finally:
        for user in users.values():
            user.close()
        for reader in readers:
            reader.close()
        broker.kill()


@pytest.mark.services
def test_accounts_added_later_work_after_a_reload(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    out = tmp_path / "out"
    common = ("--site", SITE, "--passwd-file", passwd, "--out", out, "--no-tls")
    run("--agent", "pi-1", *common)
    passwd.chmod(0o640)  # e.g. root:mosquitto on a distro install: kept as it is
    broker = RepoBroker(tmp_path / "mosquitto", passwd)
    broker.start()
    users: list[User] = []

    def login(agent: str) -> User:
        password = env_file(out / agent / "edge.env")["FOOTFALL_MQTT__PASSWORD"]
        user = User(broker.port, agent, password)
        users.append(user)
        return user

    try:
        assert login("pi-1").accepted
        run("--agent", "pi-2", *common)
        assert stat.S_IMODE(passwd.stat().st_mode) == 0o640
        assert not login("pi-2").accepted  # the broker has not read the file yet
        broker.reload()
        eventually(lambda: login("pi-2").accepted, 5, "pi-2's login after the reload")

        # An existing account is kept unless --force, which gives it a new password.
        old = env_file(out / "pi-1" / "edge.env")["FOOTFALL_MQTT__PASSWORD"]
        again = run("--agent", "pi-1", *common, check=False)
        assert again.returncode != 0 and "--force" in again.stderr
        assert env_file(out / "pi-1" / "edge.env")["FOOTFALL_MQTT__PASSWORD"] == old
        run("--agent", "pi-1", *common, "--force")
        assert env_file(out / "pi-1" / "edge.env")["FOOTFALL_MQTT__PASSWORD"] != old
        broker.reload()
        eventually(lambda: login("pi-1").accepted, 5, "pi-1's new login after the reload")
        stale = User(broker.port, "pi-1", old)
        users.append(stale)
        assert not stale.accepted
    finally:
        for user in users:
            user.close()
        broker.kill()
