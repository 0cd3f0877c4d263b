"""Edge settings: TOML + FOOTFALL_ environment, and clear errors naming the field."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from footfall_edge.settings import load_config, load_config_here
from footfall_runtime.config import ConfigError

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
        (("port = {port}", 'port = "many"'), "mqtt.port: must be a whole number (got 'many')"),
        (
            ("port = {port}", "port = 70000"),
            "mqtt.port: must be less than or equal to 65535 (got 70000)",
        ),
        (
            ('id = "library-main"', 'id = "Library Main"'),
            "doors[0] (Library Main): door id 'Library Main' must match [a-z0-9-]+",
        ),
        (
            ("inner_pin = 27", "inner_pin = 22"),
            "presence[0] (study-room-2).pin: pin 22 (GPIO22) is already used by "
            "doors[0] (library-main).inner_pin",
        ),
        (('agent = "library-pi-1"', ""), "agent: missing: this setting is required"),
        (
            ("hold_s = 60", "hold_s = -1"),
            "presence[0] (study-room-2).hold_s: must be greater than or equal to 0 (got -1)",
        ),
        (
            ("hold_s = 60", 'colour = "red"'),
            "presence[0] (study-room-2).colour: unknown setting; the settings here are: id, "
            "pin, hold_s, pull_up, active_when",
        ),
        (
            ("outer_pin = 17", "outer_pin = 99"),
            "doors[0] (library-main): outer_pin = 99: there is no GPIO99 on the Raspberry Pi's "
            "40-pin header; a pin is a BCM GPIO number 2..27 (17), GPIO17, BOARD11 or J8:11",
        ),
        (
            ("outer_pin = 17", "outer_pin = 1"),
            "doors[0] (library-main): outer_pin = 1: GPIO1 is reserved for the ID EEPROM of a "
            "HAT; use GPIO2..GPIO27",
        ),
        (
            ("outer_pin = 17", 'outer_pin = "BOARD6"'),
            "doors[0] (library-main): outer_pin = 'BOARD6': header pin 6 is ground, not a GPIO",
        ),
        (
            ("outer_pin = 17", 'outer_pin = "BOARD1"'),
            "doors[0] (library-main): outer_pin = 'BOARD1': header pin 1 is 3.3 V power",
        ),
        (
            ("outer_pin = 17", 'outer_pin = "GPIO 17"'),
            "doors[0] (library-main): outer_pin = 'GPIO 17': not a pin name",
        ),
        (("[mqtt]", "[mqtt"), "not valid TOML"),
    ],
)
def test_bad_config_names_field_and_reason(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    text = GOOD.replace(*change).format(state=tmp_path, port=1883)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config_here(path)
    proc = subprocess.run(
        [sys.executable, "-m", "footfall_edge.cli", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert message in proc.stderr and str(path) in proc.stderr
    assert "configuration OK" not in proc.stdout
    for jargon in ("Value error", "(top level)", "Unexpected keyword", "Input should", "Field"):
        assert jargon not in proc.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config_here(tmp_path / "none.toml")


def test_a_config_needs_something_to_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("at least one door ([[doors]]) or presence")):
        load_config_here(write(tmp_path, 'site = "s"\nagent = "a"\n'))


def test_pin_aliases_are_the_same_pin(tmp_path: Path) -> None:
    text = GOOD.format(state=tmp_path, port=1883).replace("inner_pin = 27", 'inner_pin = "BCM17"')
    with pytest.raises(ConfigError) as err:
        load_config_here(write(tmp_path, text))
    assert (
        "doors[0] (library-main): outer_pin = 17 and inner_pin = 'BCM17' are the same pin "
        "(GPIO17): each beam needs a pin of its own"
    ) in str(err.value)
    # the header's pin 15 is GPIO22, the presence sensor's
    text = GOOD.format(state=tmp_path, port=1883).replace("inner_pin = 27", 'inner_pin = "J8:15"')
    with pytest.raises(ConfigError, match=r"pin 22 \(GPIO22\) is already used by doors\[0\]"):
        load_config_here(write(tmp_path, text))


@pytest.mark.parametrize(
    ("written", "bcm"),
    [(17, 17), ("17", 17), ("GPIO17", 17), ("bcm17", 17), ("board11", 17), ("J8:11", 17),
     (2, 2), (27, 27), ("BOARD40", 21)],
)  # fmt: skip
def test_every_pin_form_names_the_gpio_gpiozero_opens(
    tmp_path: Path, written: object, bcm: int
) -> None:
    """Each form a header GPIO may be written in is kept so that gpiozero itself opens
    that GPIO (its own pin table is the truth here, not ours)."""
    value = f'"{written}"' if isinstance(written, str) else str(written)
    text = GOOD.format(state=tmp_path, port=1883).replace("outer_pin = 17", f"outer_pin = {value}")
    text = text.replace("inner_pin = 27", "inner_pin = 3" if bcm != 3 else "inner_pin = 4")
    stored = load_config_here(write(tmp_path, text)).doors[0].outer_pin
    factory = MockFactory()
    try:
        assert factory.pin(stored).info.name == f"GPIO{bcm}"
    finally:
        factory.close()


def test_the_same_key_from_the_environment_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOOTFALL_MQTT__KEEPALIVE_S", "2")
    with pytest.raises(ConfigError) as err:
        load_config_here(write(tmp_path, GOOD.format(state=tmp_path, port=1883)))
    assert (
        "mqtt.keepalive_s: must be greater than or equal to 5 (got '2') (from the environment "
        "variable FOOTFALL_MQTT__KEEPALIVE_S)"
    ) in str(err.value)


def test_a_password_is_never_echoed(tmp_path: Path) -> None:
    text = GOOD.format(state=tmp_path, port=1883).replace('host = "127.0.0.1"', "password = 7")
    with pytest.raises(ConfigError) as err:
        load_config_here(write(tmp_path, text))
    assert "mqtt.password: must be text (in quotes)" in str(err.value)
    assert "got" not in str(err.value)


def test_detector_limits_are_checked_at_load(tmp_path: Path) -> None:
    text = (
        GOOD.format(state=tmp_path, port=1883)
        + "\n[detector]\ndebounce_ms = 50\nblocked_s = 0.02\n"
    )
    with pytest.raises(ConfigError, match="door 'library-main': blocked_ms must be longer"):
        load_config_here(write(tmp_path, text))


def test_unknown_mqtt_key_is_refused(tmp_path: Path) -> None:
    text = GOOD.format(state=tmp_path, port=1883).replace('host = "127.0.0.1"', 'hostname = "x"')
    with pytest.raises(ConfigError, match=r"mqtt\.hostname: unknown setting; the settings here"):
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
    with pytest.raises(ConfigError, match=r"mqtt\.port: must be less than or equal to 65535"):
        load_config(bad)
