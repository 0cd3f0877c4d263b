"""deploy/edge/install.sh, the one way a Pi gets its configuration: every id checked
against the site file before anything is written, the doors, the broker's host:port and
TLS written as given, and the service enabled and started only once `footfall-edge
check` passes against a real broker (the repository's config and ACL). The script runs
on a fake Pi (tests/support/edge_install.py); the renderer it calls,
footfall_edge.install_config, is also driven directly for its error messages."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from footfall_contract.site import load_site
from footfall_edge import install_config
from footfall_edge.settings import load_config_here
from tests.support.broker_users import REPO, RepoBroker, add_users
from tests.support.edge_install import FakePi

SITES = REPO / "deploy" / "sites"
EXAMPLE = REPO / "deploy" / "edge" / "edge.example.toml"
ISO = load_site(SITES / "iso-omena.yaml")
STARTED = ["daemon-reload", "enable footfall-edge.service", "restart footfall-edge.service"]
NOT_STARTED = ["daemon-reload"]


def render(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = install_config.main(
        ["--example", str(EXAMPLE), "--sites-dir", str(SITES), "--agent", "library-pi-1", *args]
    )
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--site", "iso-omana", "--broker", "mqtt", "--door", "library-main=17,27"],
            f"--site 'iso-omana': no site file {SITES}/iso-omana.yaml "
            "(sites in " + str(SITES) + ": iso-omena, kalajarvi)",
        ),
        (
            ["--site", "iso-omena", "--broker", "mqtt", "--door", "library-man=17,27"],
            "--door library-man: site iso-omena has no door 'library-man' (its doors: "
            + ", ".join(d.id for d in ISO.doors)
            + ")",
        ),
        (
            ["--site", "iso-omena", "--broker", "mqtt", "--presence", "study-room-9=24"],
            "--presence study-room-9: site iso-omena has no presence sensor 'study-room-9' "
            "(its sensors: " + ", ".join(p.id for p in ISO.presence) + ")",
        ),
        (
            ["--site", "kalajarvi", "--broker", "mqtt", "--door", "library-main=17,27"],
            "--door library-main: site kalajarvi has no door 'library-main'",
        ),
        (
            ["--site", "iso-omena", "--broker", "mqtt", "--door", "library-main=17"],
            "--door library-main=17: expected ID=OUTER_PIN,INNER_PIN[,invert]",
        ),
        (
            ["--site", "iso-omena", "--broker", "mqtt", "--door", "library-main=17,2;7"],
            "--door library-main=17,2;7: pin '2;7' is not a BCM number",
        ),
        (
            ["--site", "iso-omena", "--broker", "mqtt"] + ["--door", "library-main=17,27"] * 2,
            "--door library-main is given twice",
        ),
        (
            [
                "--site",
                "iso-omena",
                "--broker",
                "mqtt",
                "--door",
                "library-main=17,27",
                "--door",
                "library-mall=27,22",
            ],
            "the configuration would not load",  # pin 27 twice: the agent's own check
        ),
        (["--site", "iso-omena", "--broker", "mqtt"], "give the doors (--door ID=OUTER,INNER)"),
        (
            ["--site", "iso-omena", "--broker", "mqtt:99999", "--door", "library-main=1,2"],
            "--broker 'mqtt:99999': the port must be 1..65535",
        ),
        (
            ["--site", "iso-omena", "--broker", "mq tt", "--door", "library-main=1,2"],
            "--broker 'mq tt': expected HOST or HOST:PORT",
        ),
        (
            [
                "--site",
                "iso-omena",
                "--broker",
                "mqtt:1883",
                "--ca-certs",
                "/etc/footfall/ca.crt",
                "--door",
                "library-main=1,2",
            ],
            "--ca-certs needs TLS",
        ),
    ],
)
def test_renderer_names_what_is_wrong(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = render(*args, capsys=capsys)
    assert (rc, out) == (2, "")
    assert err.startswith("install: " + error), err
    assert err.count("\n") == 1


def test_renderer_refuses_a_service_account_as_agent(capsys: pytest.CaptureFixture[str]) -> None:
    rc = install_config.main(
        ["--example", str(EXAMPLE), "--sites-dir", str(SITES), "--agent", "collector",
         "--site", "iso-omena", "--broker", "mqtt", "--door", "library-main=1,2"]
    )  # fmt: skip
    assert rc == 2 and "the broker user of a service" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("broker", "tls_flag", "port", "tls"),
    [
        ("mqtt.example.net", None, 8883, True),  # the default, as add-agent's
        ("mqtt.example.net:8883", None, 8883, True),
        ("mqtt.example.net:1883", None, 1883, False),
        ("mqtt.example.net:8883", "--no-tls", 8883, False),
        ("10.0.0.5:9000", "--tls", 9000, True),
        ("[fd00::5]:8883", None, 8883, True),
    ],
)
def test_renderer_writes_host_port_tls_and_doors(
    tmp_path: Path,
    broker: str,
    tls_flag: str | None,
    port: int,
    tls: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flags = [tls_flag] if tls_flag else []
    rc, out, err = render(
        "--site", "iso-omena", "--broker", broker, *flags,
        "--door", "library-main=17,27", "--door", "library-mall=GPIO22,23,invert",
        "--presence", "study-room-2=24", capsys=capsys,
    )  # fmt: skip
    assert rc == 0, err
    path = tmp_path / "edge.toml"
    path.write_text(out)
    config = load_config_here(path)
    host = broker.rsplit(":", 1)[0].strip("[]") if broker.count(":") != 0 else broker
    assert (config.site, config.agent, config.mqtt.username) == (
        "iso-omena",
        "library-pi-1",
        "library-pi-1",
    )
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls) == (host, port, tls)
    assert [(d.id, d.outer_pin, d.inner_pin, d.invert) for d in config.doors] == [
        ("library-main", 17, 27, False),
        ("library-mall", "GPIO22", 23, True),
    ]
    assert [(p.id, p.pin) for p in config.presence] == [("study-room-2", 24)]
    # Nothing of the example's own doors or sensors is left.
    assert re.findall(r'^id = "(.*)"$', out, re.M) == [
        "library-main",
        "library-mall",
        "study-room-2",
    ]
    # Every id written is the site's (the door algebra's doors, by hand from the file).
    assert {"library-main", "library-mall"} <= {d.id for d in ISO.doors}


# -- the script on a fake Pi -------------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RepoBroker]:
    passwd = tmp_path / "passwd"
    add_users(passwd, {"library-pi-1": "pw-library-pi-1"})
    server = RepoBroker(tmp_path / "mosquitto", passwd)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def bundle(folder: Path, port: int, password: str, tls: str = "false") -> Path:
    """What add-agent writes for the Pi (tests/deploy/test_add_agent.py checks that)."""
    folder.mkdir()
    (folder / "install.env").write_text(
        f"# made by add-agent\nSITE=iso-omena\nAGENT=library-pi-1\n"
        f"BROKER=127.0.0.1:{port}\nTLS={tls}\n"
    )
    (folder / "edge.env").write_text(f"FOOTFALL_MQTT__PASSWORD='{password}'\n")
    return folder


@pytest.mark.services
def test_a_new_pi_starts_only_after_the_check_passes(tmp_path: Path, broker: RepoBroker) -> None:
    pi = FakePi(tmp_path / "pi")
    wrong = bundle(tmp_path / "wrong", broker.port, "not-the-password")
    proc = pi.install("--from", wrong, "--door", "library-main=17,27")
    # Installed, but the broker refused the login: not enabled, not started.
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "refused the agent's credentials" in proc.stdout
    assert "NOT started" in proc.stdout and "--start" in proc.stdout
    assert pi.systemctl() == NOT_STARTED
    assert pi.files() == [
        "etc/footfall/edge.env",
        "etc/footfall/edge.toml",
        "etc/systemd/system/footfall-edge.service",
    ]
    assert stat.S_IMODE(pi.conf.stat().st_mode) == 0o640
    assert stat.S_IMODE(pi.env_file.stat().st_mode) == 0o600
    config = load_config_here(pi.conf)
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls) == (
        "127.0.0.1",
        broker.port,
        False,
    )
    assert [d.id for d in config.doors] == ["library-main"]

    # The right password in place; --start checks again and only then starts.
    pi.env_file.write_text("FOOTFALL_MQTT__PASSWORD='pw-library-pi-1'\n")
    proc = pi.install("--start")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reachable, credentials accepted" in proc.stdout
    assert pi.systemctl() == NOT_STARTED + STARTED[1:]

    # An upgrade (no options) keeps the configuration, checks, and restarts.
    before = pi.conf.read_text()
    proc = pi.install()
    assert proc.returncode == 0, proc.stderr
    assert pi.conf.read_text() == before and "left unchanged" in proc.stdout
    assert pi.systemctl() == NOT_STARTED + STARTED[1:] + STARTED


@pytest.mark.services
def test_reconfigure_keeps_the_old_file_and_agrees_with_add_agent(
    tmp_path: Path, broker: RepoBroker
) -> None:
    pi = FakePi(tmp_path / "pi")
    right = bundle(tmp_path / "right", broker.port, "pw-library-pi-1")
    assert pi.install("--from", right, "--door", "library-main=17,27").returncode == 0
    first = pi.conf.read_text()
    # Options over an existing configuration need --reconfigure; nothing changes without.
    again = ("--from", right, "--door", "library-mall=5,6", "--presence", "study-room-2=24")
    proc = pi.install(*again)
    assert proc.returncode == 1 and "exists: add --reconfigure" in proc.stderr
    assert pi.conf.read_text() == first and pi.systemctl() == STARTED
    proc = pi.install(*again, "--reconfigure")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (pi.conf_dir / "edge.toml.bak").read_text() == first
    config = load_config_here(pi.conf)
    assert [(d.id, d.outer_pin, d.inner_pin) for d in config.doors] == [("library-mall", 5, 6)]
    assert [(p.id, p.pin) for p in config.presence] == [("study-room-2", 24)]
    assert pi.systemctl() == STARTED + STARTED
    # A command line that contradicts install.env is refused.
    proc = pi.install("--from", right, "--site", "kalajarvi", "--door", "x=1,2", "--reconfigure")
    assert proc.returncode == 1
    assert "--site kalajarvi disagrees with" in proc.stderr and "(iso-omena)" in proc.stderr


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            [
                "--site",
                "iso-omana",
                "--agent",
                "pi-1",
                "--broker",
                "mqtt",
                "--door",
                "library-main=1,2",
            ],
            f"--site 'iso-omana': no site file {SITES}/iso-omana.yaml "
            "(sites: iso-omena, kalajarvi)",
        ),
        (
            ["--site", "iso-omena", "--agent", "Pi_1", "--broker", "mqtt", "--door", "a=1,2"],
            "--agent 'Pi_1': use lowercase letters",
        ),
        (
            ["--site", "iso-omena", "--agent", "web", "--broker", "mqtt", "--door", "a=1,2"],
            "--agent 'web' is the broker user of a service",
        ),
        (
            ["--site", "iso-omena", "--agent", "pi-1", "--broker", "mqtt"],
            "give the doors this Pi serves",
        ),
        (
            [
                "--site",
                "iso-omena",
                "--agent",
                "pi-1",
                "--broker",
                "mqtt",
                "--door",
                "library-main",
            ],
            "--door 'library-main': expected ID=OUTER_PIN,INNER_PIN[,invert]",
        ),
        (
            [
                "--site",
                "iso-omena",
                "--agent",
                "pi-1",
                "--broker",
                "mqtt:1883",
                "--ca-cert",
                "/etc/hostname",
                "--door",
                "library-main=1,2",
            ],
            "--ca-cert needs TLS",
        ),
        (
            ["--agent", "pi-1", "--broker", "mqtt", "--door", "library-main=1,2"],
            "--site is missing",
        ),
        ([], "no "),
        (
            ["--from", "/nonexistent", "--door", "library-main=1,2"],
            "--from /nonexistent: no such folder",
        ),
    ],
)
def test_bad_options_change_nothing_on_the_pi(tmp_path: Path, args: list[str], error: str) -> None:
    pi = FakePi(tmp_path / "pi")
    proc = pi.install(*args)
    assert proc.returncode == 1
    assert proc.stderr.startswith("install.sh: " + error), proc.stderr
    assert pi.files() == [] and pi.systemctl() == []


def test_a_door_of_another_site_writes_no_configuration(tmp_path: Path) -> None:
    """The door ids are checked by the renderer once the agent's package is in place:
    no edge.toml, no service started."""
    pi = FakePi(tmp_path / "pi")
    proc = pi.install(
        "--site", "kalajarvi", "--agent", "pi-1", "--broker", "127.0.0.1:1883",
        "--door", "library-main=17,27",
    )  # fmt: skip
    assert proc.returncode == 1
    assert "install: --door library-main: site kalajarvi has no door 'library-main'" in proc.stderr
    assert "no configuration written" in proc.stderr
    assert pi.files() == [] and pi.systemctl() == []


def test_dry_run_prints_and_changes_nothing(tmp_path: Path) -> None:
    pi = FakePi(tmp_path / "pi")
    proc = pi.install(
        "--dry-run", "--site", "iso-omena", "--agent", "pi-1", "--broker", "mqtt.example.net",
        "--door", "library-main=17,27",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "broker mqtt.example.net:8883 (tls = true)" in proc.stdout
    assert "+ systemctl enable footfall-edge.service" in proc.stdout
    assert pi.files() == [] and pi.systemctl() == []
