"""Human-readable subject and body of a notification, shared by every receiver, in the
notification's `language` (the site's rules file's; English when it has none)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from footfall_contract.timefmt import parse_ts

from ..localtime import local_span, local_ts
from ..wording import Lang, lang_of, say


def language(n: Mapping[str, Any]) -> Lang:
    return lang_of(n.get("language"))


def _event(n: Mapping[str, Any]) -> str:
    return say(language(n), f"event.{n['event']}")


def subject(n: Mapping[str, Any]) -> str:
    lang = language(n)
    alerts = n["alerts"]
    head = f"[{n['site']}] {_event(n)}"
    if len(alerts) == 1:
        return f"{head}: {alerts[0]['summary']}"
    kinds = {a["kind"] for a in alerts}
    what = say(lang, f"kind.{kinds.pop()}") if len(kinds) == 1 else say(lang, "subject.alerts")
    return f"{head}: {len(alerts)} × {what} ({n['rule']})"


def duration(start: str, end: str, lang: Lang = "en") -> str:
    seconds = max(0, (parse_ts(end) - parse_ts(start)) // 1000)
    hours, rest = divmod(seconds, 3600)
    if hours:
        return say(lang, "duration.hours", hours=hours, minutes=rest // 60)
    return say(lang, "duration.minutes", minutes=rest // 60, seconds=rest % 60)


def lines(n: Mapping[str, Any]) -> list[str]:
    """One line per alert: severity, summary, since when (and how long, once resolved), in
    the site's wall-clock time and zone (`timezone` of the notification)."""
    tz = n.get("timezone")
    lang = language(n)
    out = []
    for a in n["alerts"]:
        when = say(lang, "line.since", time=local_ts(a["started"], tz, lang))
        if a["state"] == "resolved":
            span = local_span(parse_ts(a["started"]), parse_ts(a["ts"]), tz, lang)
            when = say(
                lang, "line.lasted", duration=duration(a["started"], a["ts"], lang), span=span
            )
        extra = ""
        if a.get("acknowledged_by"):
            extra = say(lang, "line.acknowledged", who=a["acknowledged_by"])
        severity = say(lang, f"severity.{a['severity']}")
        out.append(f"- [{severity}] {a['summary']} — {when}{extra}")
    return out


def links(n: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(title, URL) of the live board (`board_url`) and the dashboard (`link`), when set."""
    lang = language(n)
    named = (("link.board", n.get("board_url")), ("link.dashboard", n.get("link")))
    return [(say(lang, title), url) for title, url in named if url]


def body(n: Mapping[str, Any]) -> str:
    lang = language(n)
    parts = [f"{n['site_name']} ({n['site']}): {_event(n).lower()}", "", *lines(n), ""]
    ids = ", ".join(a["id"] for a in n["alerts"])
    parts.append(say(lang, "body.rule", rule=n["rule"], ids=ids))
    parts += [f"{title}: {url}" for title, url in links(n)]
    if n["event"] != "resolved":
        where = say(lang, "body.on_board" if n.get("board_url") else "body.through_api")
        parts.append(say(lang, "body.acknowledge", where=where))
    return "\n".join(parts) + "\n"
