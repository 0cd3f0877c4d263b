"""Edge settings: TOML + FOOTFALL_ environment, and clear errors naming the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from footfall_contract.config import ConfigError
from footfall_edge.settings import load_config, load_config_here

GOOD = """
site = "iso-omena"
agent = "library-pi-1"
state_dir = "{state}"

[mqtt]
host = "127.0.0.1"
port = {port}

[[doors]]
id = "library-main"
outer_pin = 17
inner_pin = 27

[[presence]]
id = "study-room-2"
pin = 22
hold_s = 60
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


def test_toml_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD.format(state=tmp_path, port=1883))
    s = load_config_here(path)
    assert s.mqtt.port == 1883 and s.doors[0].outer_pin == 17 and s.presence[0].hold_s == 60
    monkeypatch.setenv("FOOTFALL_MQTT__PORT", "8883")
    monkeypatch.setenv("FOOTFALL_MQTT__PASSWORD", "s3cret")
    s = load_config_here(path)
    assert s.mqtt.port == 8883
    assert s.mqtt.password == "s3cret"
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("port = {port}", 'port = "many"'), "mqtt.port: Input should be a valid integer"),
        (("port = {port}", "port = 70000"), "mqtt.port: Input should be less than or equal"),
        (('id = "library-main"', 'id = "Library Main"'), "door id 'Library Main' must match"),
        (("inner_pin = 27", "inner_pin = 22"), "pin 22 of 'study-room-2' is already used"),
        (('agent = "library-pi-1"', ""), "agent: Field required"),
        (("hold_s = 60", "hold_s = -1"), "presence.0.hold_s: Input should be greater"),
        (("hold_s = 60", 'colour = "red"'), "presence.0.colour: Unexpected keyword argument"),
        (("[mqtt]", "[mqtt"), "not valid TOML"),
    ],
)
def test_bad_config_names_field_and_reason(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    text = GOOD.replace(*change).format(state=tmp_path, port=1883)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config_here(path)
    proc = subprocess.run(
        [sys.executable, "-m", "footfall_edge.cli", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert message in proc.stderr and str(path) in proc.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config_here(tmp_path / "none.toml")


def test_a_config_needs_something_to_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least one door or presence sensor"):
        load_config_here(write(tmp_path, 'site = "s"\nagent = "a"\n'))


def test_pin_aliases_are_the_same_pin(tmp_path: Path) -> None:
    text = GOOD.format(state=tmp_path, port=1883).replace("inner_pin = 27", 'inner_pin = "BCM17"')
    with pytest.raises(ConfigError, match="pin BCM17 of 'library-main' is already used"):
        load_config_here(write(tmp_path, text))


def test_detector_limits_are_checked_at_load(tmp_path: Path) -> None:
    text = (
        GOOD.format(state=tmp_path, port=1883)
        + "\n[detector]\ndebounce_ms = 50\nblocked_s = 0.02\n"
    )
    with pytest.raises(ConfigError, match="door 'library-main': blocked_ms must be longer"):
        load_config_here(write(tmp_path, text))


def test_unknown_mqtt_key_is_refused(tmp_path: Path) -> None:
    text = GOOD.format(state=tmp_path, port=1883).replace('host = "127.0.0.1"', 'hostname = "x"')
    with pytest.raises(ConfigError, match=r"mqtt\.hostname: Unexpected keyword argument"):
        load_config_here(write(tmp_path, text))


def test_the_running_agent_gets_the_same_config_without_pydantic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run` validates in a child process; what comes back equals the in-process result,
    secrets included, and the agent's own process never imports pydantic."""
    path = write(tmp_path, GOOD.format(state=tmp_path, port=1883))
    monkeypatch.setenv("FOOTFALL_MQTT__PASSWORD", "s3cret")
    assert load_config(path) == load_config_here(path)
    probe = (
        "import sys; from pathlib import Path; from footfall_edge.settings import load_config;"
        "import footfall_edge.agent, footfall_edge.cli;"
        f"c = load_config(Path({str(path)!r})); print(c.mqtt.password, 'pydantic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["s3cret", "False"]
    bad = write(tmp_path, GOOD.format(state=tmp_path, port=99999))
    with pytest.raises(ConfigError, match=r"mqtt\.port: Input should be less than or equal"):
        load_config(bad)
