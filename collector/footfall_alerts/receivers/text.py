"""Human-readable subject and body of a notification, shared by every receiver."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from footfall_contract.timefmt import parse_ts

from ..localtime import local_span, local_ts

_EVENT = {"firing": "FIRING", "resolved": "RESOLVED", "repeat": "STILL FIRING"}


def subject(n: Mapping[str, Any]) -> str:
    alerts = n["alerts"]
    head = f"[{n['site']}] {_EVENT[n['event']]}"
    if len(alerts) == 1:
        return f"{head}: {alerts[0]['summary']}"
    kinds = {a["kind"] for a in alerts}
    what = kinds.pop().replace("_", " ") if len(kinds) == 1 else "alerts"
    return f"{head}: {len(alerts)} × {what} ({n['rule']})"


def duration(start: str, end: str) -> str:
    seconds = max(0, (parse_ts(end) - parse_ts(start)) // 1000)
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


def lines(n: Mapping[str, Any]) -> list[str]:
    """One line per alert: severity, summary, since when (and how long, once resolved), in
    the site's wall-clock time and zone (`timezone` of the notification)."""
    tz = n.get("timezone")
    out = []
    for a in n["alerts"]:
        when = f"since {local_ts(a['started'], tz)}"
        if a["state"] == "resolved":
            span = local_span(parse_ts(a["started"]), parse_ts(a["ts"]), tz)
            when = f"lasted {duration(a['started'], a['ts'])}, {span}"
        extra = ""
        if a.get("acknowledged_by"):
            extra = f"; acknowledged by {a['acknowledged_by']}"
        out.append(f"- [{a['severity']}] {a['summary']} — {when}{extra}")
    return out


def body(n: Mapping[str, Any]) -> str:
    parts = [f"{n['site_name']} ({n['site']}): {_EVENT[n['event']].lower()}", "", *lines(n), ""]
    parts.append(f"Rule: {n['rule']}. Alert ids: {', '.join(a['id'] for a in n['alerts'])}")
    if n.get("board_url"):
        parts.append(f"Live board: {n['board_url']}")
    if n.get("link"):
        parts.append(f"Dashboard: {n['link']}")
    if n["event"] != "resolved":
        where = "on the live board" if n.get("board_url") else "through the footfall-alerts API"
        parts.append(
            f"Acknowledge (stops the repeats) or silence it {where}; "
            "a message follows when it is resolved."
        )
    return "\n".join(parts) + "\n"
