"""Ids, names and times are checked in full: Python's `$` also matches before a final
newline, so "library\\n" used to pass, and a zone with it in its topic made the broker
drop the collector's connection every second (issue 11, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from footfall_contract.messages import Alert, Epoch, FaultEvent, Id, Status
from footfall_contract.site import SiteError, load_site, parse_site
from footfall_contract.timefmt import parse_ts
from footfall_contract.topics import check_id, parse_agent_topic, parse_zone_occupancy_topic

SITE = """\
site: s
name: S
timezone: Europe/Helsinki
reset_at: "03:00"
opening_hours: {mon-fri: "08:00-20:00"}
zones:
  - {id: centre, name: Centre}
  - {id: library, name: Library, parent: centre}
doors:
  - {id: library-main, outside: centre, inside: library}
presence:
  - {id: study-room-2, zone: library}
"""


@pytest.mark.parametrize("value", ["library\n", "library\n\n", "\nlibrary", "library\r", ""])
def test_check_id_needs_the_whole_value(value: str) -> None:
    with pytest.raises(ValueError, match=r"zone id .* must match \[a-z0-9-\]\+"):
        check_id(value, "zone id")
    assert check_id("library-2", "zone id") == "library-2"


@pytest.mark.parametrize(
    ("old", "new", "line", "reason"),
    [
        ("{id: library,", '{id: "library\\n",', 8, "zones[1].id: zone id 'library\\n' must match"),
        ("{id: centre,", '{id: "centre\\n",', 7, "zones[0].id: zone id 'centre\\n' must match"),
        (
            "{id: library-main,",
            '{id: "library-main\\n",',
            10,
            "doors[0].id: door id 'library-main\\n' must match",
        ),
        (
            "{id: study-room-2,",
            '{id: "study-room-2\\n",',
            12,
            "presence[0].id: presence sensor id 'study-room-2\\n' must match",
        ),
        ("site: s", 'site: "s\\n"', 1, "site: site id 's\\n' must match"),
        ('reset_at: "03:00"', 'reset_at: "03:00\\n"', 4, 'reset_at must be a time "HH:MM"'),
        (
            '"08:00-20:00"',
            '"08:00-20:00\\n"',
            5,
            'opening hours must be "HH:MM-HH:MM" or "closed", not \'08:00-20:00\\n\'',
        ),
    ],
)
def test_a_site_file_id_ending_in_a_newline_is_refused_with_file_and_line(
    tmp_path: Path, old: str, new: str, line: int, reason: str
) -> None:
    assert SITE.count(old) == 1
    path = tmp_path / "s.yaml"
    path.write_text(SITE.replace(old, new))
    with pytest.raises(SiteError) as info:
        load_site(path)
    assert (info.value.file, info.value.line) == (str(path), line)
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{path}:{line}: ")
    parse_site(SITE)  # and the file without the newline is fine


@pytest.mark.parametrize(
    "topic",
    [
        "footfall/v1/s/agent/pi-1\n/crossing",
        "footfall/v1/s\n/agent/pi-1/health",
        "footfall/v1/s/agent/pi-1/crossing\n",
    ],
)
def test_agent_topics_with_a_newline_are_refused(topic: str) -> None:
    with pytest.raises(ValueError, match=r"must match|unknown message kind"):
        parse_agent_topic(topic)


def test_zone_topics_with_a_newline_are_refused() -> None:
    with pytest.raises(ValueError, match=r"zone 'library\\n' must match"):
        parse_zone_occupancy_topic("footfall/v1/s/zone/library\n/occupancy")


@pytest.mark.parametrize("text", ["2026-11-23T10:15:02.120Z\n", "2026-11-23T10:15:02Z\n"])
def test_timestamps_are_matched_in_full(text: str) -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 timestamp"):
        parse_ts(text)


@pytest.mark.parametrize(
    ("adapter", "value"),
    [
        (TypeAdapter(Id), "library\n"),
        (TypeAdapter(Id), "library\n\n"),
        (TypeAdapter(Epoch), "e1\n"),
    ],
)
def test_payload_patterns_are_matched_in_full(adapter: TypeAdapter[str], value: str) -> None:
    """pydantic's patterns run on Rust's regex, where `$` is the end of the text: this
    keeps it so if that ever changes."""
    with pytest.raises(ValidationError, match="String should match pattern"):
        adapter.validate_python(value)
    assert adapter.validate_python(value.strip()) == value.strip()


def test_models_refuse_trailing_newlines() -> None:
    ts = "2026-11-23T10:15:02.120Z"
    with pytest.raises(ValidationError, match="source"):
        FaultEvent.model_validate(
            {"seq": 1, "ts": ts, "source": "d/outer\n", "fault": "beam_blocked", "active": True}
        )
    with pytest.raises(ValidationError, match="epoch"):
        Status.model_validate({"state": "online", "epoch": "e\n", "ts": ts, "sw": "1"})
    alert = {
        "id": "over-capacity-library\n",
        "rule": "over-capacity",
        "kind": "over_capacity",
        "severity": "warning",
        "state": "firing",
        "scope": {"zone": "library"},
        "summary": "full",
        "started": ts,
        "ts": ts,
    }
    with pytest.raises(ValidationError, match="id"):
        Alert.model_validate(alert)
    with pytest.raises(ValidationError, match="kind"):
        Alert.model_validate({**alert, "id": "x", "kind": "over_capacity\n"})
    assert Alert.model_validate({**alert, "id": "x"}).id == "x"
