"""Pure logic of the board's alert actions (Acknowledge, Silence): the request to make of
a site's footfall-alerts API, and what its answers mean for the person at the board.
The HTTP call itself is in app.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

DEFAULT_REASON = "from the live board"
MAX_DETAIL = 300


@dataclass(frozen=True)
class Upstream:
    """One request to footfall-alerts: method, path under its base URL, JSON body."""

    method: str
    path: str
    body: dict[str, Any] = field(default_factory=dict)


class ActionError(Exception):
    """What the board's endpoint answers instead: an HTTP status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def reason_or_default(reason: str | None) -> str:
    text = (reason or "").strip()
    return text or DEFAULT_REASON


def ack_request(alert_id: str, by: str, reason: str | None) -> Upstream:
    return Upstream(
        "POST",
        f"/api/v1/alerts/{quote(alert_id, safe='')}/ack",
        {"by": by, "reason": reason_or_default(reason)},
    )


def silence_request(alert_id: str, by: str, reason: str | None, hours: float) -> Upstream:
    """A silence of exactly this alert (matcher `alert`), `hours` long (whole minutes)."""
    minutes = max(1, round(hours * 60))
    return Upstream(
        "POST",
        "/api/v1/silences",
        {
            "matchers": {"alert": alert_id},
            "by": by,
            "reason": reason_or_default(reason),
            "duration": f"{minutes}m",
        },
    )


def not_configured(site: str) -> ActionError:
    return ActionError(
        404,
        f"alert actions are not configured for site {site!r}: set alerts.url "
        "(FOOTFALL_ALERTS__URL) or alerts.sites to its footfall-alerts API",
    )


def detail_of(body: bytes) -> str:
    """The `detail` of a FastAPI error answer, else the start of the body as text."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        text: str = data["detail"]
    else:
        text = body.decode(errors="replace").strip()
    text = " ".join(text.split())
    return text[:MAX_DETAIL] + ("…" if len(text) > MAX_DETAIL else "")


def upstream_error(status: int, body: bytes) -> ActionError:
    """footfall-alerts said no: its 404 and 422 are the user's (an alert that is no
    longer firing, a bad duration), passed on with its message; a refused token or a
    failure of the service is the server's problem (502)."""
    detail = detail_of(body) or f"HTTP {status}"
    if status in (401, 403):
        return ActionError(
            502,
            f"footfall-alerts refused the board's token ({detail}): set alerts.token "
            "(FOOTFALL_ALERTS__TOKEN) to one of its http.tokens",
        )
    if status in (400, 404, 409, 422):
        return ActionError(status, f"footfall-alerts: {detail}")
    return ActionError(502, f"footfall-alerts answered HTTP {status}: {detail}")


def unreachable(url: str, problem: str) -> ActionError:
    return ActionError(502, f"footfall-alerts at {url} is not reachable: {problem}")


def parse_answer(body: bytes) -> dict[str, Any]:
    """A successful answer: a JSON object, else ActionError 502."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ActionError(502, "footfall-alerts answered something other than a JSON object")
    return data
