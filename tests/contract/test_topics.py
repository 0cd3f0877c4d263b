"""Topic names of docs/spec.md §2: built and split by one module, bad ones named."""

from __future__ import annotations

import pytest

from footfall_contract.topics import (
    agent_topic,
    parse_agent_topic,
    parse_zone_occupancy_topic,
    zone_occupancy_topic,
)


def test_zone_occupancy_topic_round_trip() -> None:
    zt = parse_zone_occupancy_topic(zone_occupancy_topic("iso-omena", "library"))
    assert (zt.site, zt.zone) == ("iso-omena", "library")


@pytest.mark.parametrize(
    "topic",
    [
        "footfall/v1/iso-omena/zone/library",
        "footfall/v1/iso-omena/zone/library/count",
        "footfall/v2/iso-omena/zone/library/occupancy",
        "footfall/v1/iso-omena/agent/zone/occupancy",
        "footfall/v1/Iso_Omena/zone/library/occupancy",
    ],
)
def test_bad_zone_topics_are_named(topic: str) -> None:
    with pytest.raises(ValueError, match=r"occupancy topic|must match"):
        parse_zone_occupancy_topic(topic)


def test_an_agent_called_zone_is_still_an_agent() -> None:
    at = parse_agent_topic(agent_topic("iso-omena", "zone", "status"))
    assert (at.agent, at.kind) == ("zone", "status")
    with pytest.raises(ValueError):
        parse_zone_occupancy_topic(agent_topic("iso-omena", "zone", "status"))
