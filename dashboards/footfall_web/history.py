"""History from InfluxDB: parameter checks and the InfluxQL (pure), and running it."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from footfall_contract.timefmt import format_ts, parse_ts

_DURATION = re.compile(r"^(\d{1,7})(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NICE_S = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


class BadParameter(ValueError):
    """A request parameter that cannot be used; the message says which and why."""


def parse_duration(text: str, what: str) -> int:
    """ "30s", "5m", "1h", "1d" -> seconds."""
    match = _DURATION.match(text.strip())
    if not match or int(match[1]) == 0:
        raise BadParameter(
            f"{what} must be a positive duration like 30s, 5m, 1h or 1d, not {text!r}"
        )
    return int(match[1]) * _UNIT_S[match[2]]


def parse_time(text: str, what: str, now_ms: int) -> int:
    """RFC 3339 with a zone ("2026-11-23T10:00:00Z") or relative to now ("-6h", "now")."""
    text = text.strip()
    if text == "now":
        return now_ms
    if text.startswith("-"):
        return now_ms - parse_duration(text[1:], what) * 1000
    try:
        return parse_ts(text)
    except ValueError:
        raise BadParameter(
            f"{what} must be an RFC 3339 time with a zone (2026-11-23T10:00:00Z), "
            f"'now' or relative like -6h, not {text!r}"
        ) from None


def auto_every(span_s: int, target_points: int = 300) -> int:
    for step in _NICE_S:
        if span_s / step <= target_points:
            return step
    return math.ceil(span_s / target_points / 86400) * 86400


@dataclass(frozen=True)
class HistoryRequest:
    site: str
    zone: str
    start_ms: int
    end_ms: int
    every_s: int

    @property
    def points(self) -> int:
        return math.ceil((self.end_ms - self.start_ms) / 1000 / self.every_s)


def history_request(
    site: str,
    zone: str,
    start: str | None,
    end: str | None,
    every: str | None,
    now_ms: int,
    max_points: int,
    default_span_s: int = 6 * 3600,
) -> HistoryRequest:
    end_ms = parse_time(end, "to", now_ms) if end else now_ms
    start_ms = parse_time(start, "from", now_ms) if start else end_ms - default_span_s * 1000
    if start_ms >= end_ms:
        raise BadParameter(f"from ({format_ts(start_ms)}) must be before to ({format_ts(end_ms)})")
    span_s = max(1, (end_ms - start_ms) // 1000)
    every_s = parse_duration(every, "every") if every else auto_every(span_s)
    req = HistoryRequest(site, zone, start_ms, end_ms, every_s)
    if req.points > max_points:
        raise BadParameter(
            f"{req.points} points asked (from {format_ts(start_ms)} to {format_ts(end_ms)} "
            f"every {every_s} s), at most {max_points}: use a larger every or a shorter range"
        )
    return req


def history_query(req: HistoryRequest) -> str:
    """Per interval the last count (the level at its end) and the highest. Ids are
    checked against the site file before they get here ([a-z0-9-] only)."""
    return (
        'SELECT last("count") AS "count", max("count") AS "max" FROM "occupancy" '
        f"WHERE \"site\" = '{req.site}' AND \"zone\" = '{req.zone}' "
        f"AND time >= {req.start_ms}ms AND time < {req.end_ms}ms "
        f"GROUP BY time({req.every_s}s) fill(none)"
    )


def history_points(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of an epoch=ms answer as [{"t": RFC 3339, "count": int, "max": int}]."""
    out: list[dict[str, Any]] = []
    for s in series:
        cols = s["columns"]
        for row in s["values"]:
            values = dict(zip(cols, row, strict=True))
            if values.get("count") is None:
                continue
            out.append(
                {
                    "t": format_ts(int(values["time"])),
                    "count": int(values["count"]),
                    "max": int(values["max"]) if values.get("max") is not None else None,
                }
            )
    return out
