"""RFC 3339 UTC timestamps with milliseconds, the only time format on the wire."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_ts(epoch_ms: int) -> str:
    """Epoch milliseconds to `2026-11-23T10:15:02.120Z`."""
    seconds, ms = divmod(int(epoch_ms), 1000)
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


@lru_cache(maxsize=4096)
def parse_ts(text: str) -> int:
    """RFC 3339 (with a zone) to epoch milliseconds; ValueError names the bad text.
    Cached: a batch of events mostly shares a handful of timestamps."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ValueError(f"not an RFC 3339 timestamp with a time zone: {text!r}")
    head, dot, rest = text.partition(".")
    if dot:  # fromisoformat wants at most 6 fractional digits
        digits = re.match(r"\d+", rest)
        assert digits is not None
        text = f"{head}.{digits.group(0)[:6]}{rest[digits.end() :]}"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not a valid date/time: {text!r} ({exc})") from None
    return (dt - _EPOCH) // timedelta(milliseconds=1)
