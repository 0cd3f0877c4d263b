"""Server-sent events, the wire format (pure): `event:`, `id:`, `data:` lines and a blank
line; comments (": ...") keep proxies from closing an idle stream."""

from __future__ import annotations

import json
from typing import Any


def format_event(event: str, data: Any, event_id: int | None = None) -> bytes:
    if not event or any(c in event for c in "\r\n:"):
        raise ValueError(f"bad SSE event name {event!r}")
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    # compact JSON holds no raw newline, but split anyway: each line needs its own field
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    lines += [f"data: {line}" for line in payload.split("\n")]
    return ("\n".join(lines) + "\n\n").encode()


def format_comment(text: str = "") -> bytes:
    return "".join(f": {line}\n" for line in (text or " ").split("\n")).encode() + b"\n"


def format_retry(ms: int) -> bytes:
    """How long a browser waits before reconnecting."""
    return f"retry: {int(ms)}\n\n".encode()
