"""InfluxDB line protocol, and the point times that make re-writes idempotent.

A point is identified by measurement, tag set and time; writing it again overwrites it.
So an event's point time is derived from the event alone: its `ts` in milliseconds plus
`seq mod 10^6` nanoseconds. A re-delivered event lands on its own point again (no
duplicate); two distinct events of one agent in the same millisecond have different
seqs, so different times (no merge).

Points that are not events (status, rejections, reset marks) are stamped with the
processing time; `UniqueTimes` spreads those of one millisecond over its nanoseconds so
that two of them with the same tags do not overwrite each other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import count

FieldValue = int | float | bool | str


def event_time_ns(ts_ms: int, seq: int) -> int:
    return ts_ms * 1_000_000 + seq % 1_000_000


class UniqueTimes:
    """Distinct point times at one processing millisecond (see the module docstring)."""

    def __init__(self) -> None:
        self._next = count()

    def ns(self, now_ms: int) -> int:
        return now_ms * 1_000_000 + next(self._next) % 1_000_000


@lru_cache(maxsize=8192)
def _escape_key(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


@lru_cache(maxsize=64)
def _escape_measurement(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", r"\,").replace(" ", r"\ ")


def _field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@lru_cache(maxsize=4096)
def _head(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    """Measurement and sorted tags, cached: a site has a bounded set of tag sets
    (agents x doors x directions for crossings), and formatting them is most of the
    cost of a line."""
    head = _escape_measurement(measurement)
    for k, v in sorted(tags):
        if v != "":  # an empty tag value is not allowed in line protocol
            head += f",{_escape_key(k)}={_escape_key(v)}"
    return head


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ns: int

    def line(self) -> str:
        head = _head(self.measurement, tuple(self.tags.items()))
        body = ",".join(f"{_escape_key(k)}={_field(v)}" for k, v in self.fields.items())
        return f"{head} {body} {self.time_ns}"
