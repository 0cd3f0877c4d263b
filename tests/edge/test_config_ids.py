"""Edge configuration ids are checked in full: "library-main\\n" is refused, by file and
by environment (issue 11, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from footfall_edge.settings import load_config_here
from footfall_runtime.config import ConfigError
from tests.edge.test_config import GOOD, write


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('id = "library-main"', 'id = "library-main\\n"', "door id 'library-main\\n' must match"),
        ('id = "study-room-2"', 'id = "study-room-2\\n"', "sensor id 'study-room-2\\n' must match"),
        ('agent = "library-pi-1"', 'agent = "library-pi-1\\n"', "agent 'library-pi-1\\n' must"),
        ('site = "iso-omena"', 'site = "iso-omena\\n"', "site 'iso-omena\\n' must match"),
    ],
)
def test_an_id_ending_in_a_newline_is_refused(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    good = GOOD.format(state=tmp_path, port=1883)
    assert good.count(old) == 1
    assert load_config_here(write(tmp_path, good)).doors[0].id == "library-main"
    with pytest.raises(ConfigError, match=message.replace("\\", "\\\\")):
        load_config_here(write(tmp_path, good.replace(old, new)))


def test_an_agent_id_from_the_environment_is_checked_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, GOOD.format(state=tmp_path, port=1883))
    monkeypatch.setenv("FOOTFALL_AGENT", "library-pi-1\n")
    with pytest.raises(ConfigError, match="agent 'library-pi-1\\\\n' must match"):
        load_config_here(path)
