"""Pure detection logic: no GPIO, no clock; time is whatever the caller feeds in."""

from .door import BEAMS, Beam, Crossing, DetectorConfig, Direction, DoorDetector, DoorEvent, Fault
from .presence import PresenceChange, PresenceTracker

__all__ = [
    "BEAMS",
    "Beam",
    "Crossing",
    "DetectorConfig",
    "Direction",
    "DoorDetector",
    "DoorEvent",
    "Fault",
    "PresenceChange",
    "PresenceTracker",
]
