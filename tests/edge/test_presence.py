from footfall_edge.detection import PresenceChange, PresenceTracker


def test_occupied_while_motion_and_for_the_hold_time() -> None:
    room = PresenceTracker("room", hold_ms=120_000)
    assert room.feed(1000, True) == [PresenceChange(1000, "room", True)]
    assert room.feed(5000, False) == []
    assert room.advance(124_999) == []
    assert room.advance(200_000) == [PresenceChange(125_000, "room", False)]
    assert room.advance(300_000) == []


def test_new_motion_within_the_hold_keeps_the_room_occupied() -> None:
    room = PresenceTracker("room", hold_ms=10_000)
    events = room.feed(0, True) + room.feed(1000, False) + room.feed(9000, True)
    events += room.feed(9500, False) + room.advance(19_000)
    assert events == [PresenceChange(0, "room", True)]
    assert room.advance(19_500) == [PresenceChange(19_500, "room", False)]


def test_zero_hold_clears_at_once() -> None:
    room = PresenceTracker("room", hold_ms=0)
    assert room.feed(0, True) + room.feed(10, False) == [
        PresenceChange(0, "room", True),
        PresenceChange(10, "room", False),
    ]
