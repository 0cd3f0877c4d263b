"""Human-readable subject and body of a notification, shared by every receiver."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from footfall_contract.timefmt import parse_ts

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
    """One line per alert: severity, summary, since when (and how long, once resolved)."""
    out = []
    for a in n["alerts"]:
        when = f"since {a['started']}"
        if a["state"] == "resolved":
            when = f"lasted {duration(a['started'], a['ts'])} (from {a['started']})"
        extra = ""
        if a.get("acknowledged_by"):
            extra = f"; acknowledged by {a['acknowledged_by']}"
        out.append(f"- [{a['severity']}] {a['summary']} — {when}{extra}")
    return out


def body(n: Mapping[str, Any]) -> str:
    parts = [f"{n['site_name']} ({n['site']}): {_EVENT[n['event']].lower()}", "", *lines(n), ""]
    parts.append(f"Rule: {n['rule']}. Alert ids: {', '.join(a['id'] for a in n['alerts'])}")
    if n.get("link"):
        parts.append(f"Dashboard: {n['link']}")
    if n["event"] != "resolved":
        parts.append(
            "Acknowledge (stops the repeats) or silence it through the footfall-alerts API; "
            "a message follows when it is resolved."
        )
    return "\n".join(parts) + "\n"
