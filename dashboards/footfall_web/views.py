"""What the manager's pages and the API read from InfluxDB, as one call each: a zone's
history intervals, the agency page's figures (from those same intervals, so the page and
the API never disagree) and a report. Database failures become 503 answers here."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import HTTPException

from footfall_collector.influx import PermanentWriteError, RetryableWriteError
from footfall_contract.hours import last_reset_before
from footfall_contract.site import Site
from footfall_contract.timefmt import format_ts
from footfall_report import Period, Report, SourceError, UnknownZoneError, load_report

from . import i18n, levels, zonepage
from .history import (
    HistoryRequest,
    buckets,
    history_query,
    merge_history,
    seed_level,
    seed_query,
    visits_query,
    window_starts,
)
from .state import Web


def history_points(web: Web, s: Site, req: HistoryRequest, now_ms: int) -> list[dict[str, Any]]:
    """The intervals of a history request (the API's figures, and the zone page's)."""
    spans = buckets(req, now_ms)
    resets = window_starts(s, spans[0][0], spans[-1][1]) if spans else []
    seed_q = seed_query(req, last_reset_before(s, req.start_ms))
    try:
        seed = seed_level(web.influx.query(seed_q, epoch="ms")) if seed_q else None
        levels = web.influx.query(history_query(req), epoch="ms")
        visits = web.influx.query(visits_query(req), epoch="ms")
    except (RetryableWriteError, PermanentWriteError) as exc:
        raise HTTPException(503, f"InfluxDB unavailable: {exc}") from None
    return merge_history(req, spans, levels, visits, seed, resets)


def report_of(web: Web, site: Site, period: Period, zones: list[str] | None) -> Report:
    try:
        return load_report(web.influx, site, period, zones, now=web.now_datetime())
    except UnknownZoneError as exc:
        raise HTTPException(400, str(exc)) from None
    except (SourceError, RetryableWriteError, PermanentWriteError) as exc:
        raise HTTPException(503, f"InfluxDB unavailable: {exc}") from None


def _now(web: Web, s: Site, zone: str, lang: i18n.Lang, now_ms: int) -> dict[str, Any]:
    """The live reading as the agency page shows it."""
    cfg = web.settings.crowding
    reading = web.live.reading(s.site, zone)
    stale = levels.is_stale(reading, now_ms, cfg.stale_after_s)
    now: dict[str, Any] = {"count": None, "pct": None, "level": None, "stale": stale}
    if reading is not None:
        now["updated"] = zonepage.hhmm(s, reading.ts_ms, lang)
    capacity = s.zone(zone).capacity
    if reading is not None and not stale:
        now["count"] = reading.count
        if capacity:
            ratio = reading.count / capacity
            now["pct"] = round(ratio * 100)
            now["level"] = levels.level_of(ratio, cfg.thresholds(s.site, zone))
    return now


def zone_view(web: Web, s: Site, zone: str, lang: i18n.Lang, base: str) -> dict[str, Any]:
    """What the agency page shows: the live reading, today by hour and this week by day
    (the history API's intervals, so the page and the API never disagree), and links."""
    texts = i18n.ZONE_TEXTS[lang]
    z = s.zone(zone)
    now_ms = web.now_ms()
    now = _now(web, s, zone, lang, now_ms)
    error = None
    hours: list[dict[str, Any]] = []
    week_points: list[dict[str, Any]] = []
    today_ms = zonepage.today_start_ms(s, now_ms)
    monday_ms = zonepage.week_start_ms(s, now_ms)
    try:
        hours = zonepage.hour_rows(
            s,
            history_points(
                web,
                s,
                HistoryRequest(s.site, zone, today_ms, max(now_ms, today_ms + 1), 3600, s.timezone),
                now_ms,
            ),
            lang,
        )
        week_points = history_points(
            web,
            s,
            HistoryRequest(s.site, zone, monday_ms, max(now_ms, monday_ms + 1), 86400, s.timezone),
            now_ms,
        )
    except HTTPException as exc:
        error = texts["history_unavailable"].format(error=exc.detail)
    summary = zonepage.today_summary(hours)
    week = zonepage.week_rows(s, week_points, now_ms, lang)
    week_values = [d["visits"] for d in week]
    for d in week:
        d["bar"] = zonepage.bar_width(d["visits"], week_values)
    if summary["peak"] is not None:
        last = hours[-1]["count"] if hours else None
        chart_label = texts["today_chart"].format(
            peak=summary["peak"],
            time=summary["peak_time"],
            now="–" if last is None else last,
            visits=summary["visits"],
        )
    else:
        chart_label = texts["today_chart_empty"]
    parent = s.zone(z.parent).name_in(lang) if z.parent else None
    reports = f"{base}/reports/{s.site}?"
    return {
        "site": s,
        "site_name": s.name_in(lang),
        "zone_id": zone,
        "name": z.name_in(lang),
        "parent": None
        if parent is None
        else i18n.BOARD_TEXTS[lang]["in_parent"].format(parent=parent),
        "capacity": z.capacity,
        "now": now,
        "level_names": {k: i18n.TEXTS[lang][k] for k in levels.LEVELS},
        "hours": hours,
        "summary": summary,
        "chart_label": chart_label,
        "week": week,
        "week_total": sum(v for v in week_values if v is not None),
        "error": error,
        "public_href": f"{base}/crowding/{s.site}/{zone}" if web.is_public(s.site, zone) else None,
        "report_week": reports + urlencode([("period", "this-week"), ("zone", zone)]),
        "report_month": reports + urlencode([("period", "this-month"), ("zone", zone)]),
        "csv_today": f"{base}/api/v1/sites/{s.site}/zones/{zone}/history?"
        + urlencode([("from", format_ts(today_ms)), ("every", "1h"), ("format", "csv")]),
        "chart": {
            "start": today_ms // 1000,
            "end": zonepage.today_end_ms(s, now_ms) // 1000,
            "xs": [r["ms"] // 1000 for r in hours],
            "max": [r["max"] for r in hours],
            "visits": [r["visits"] for r in hours],
            "timezone": s.timezone,
            "locale": i18n.LOCALES[lang],
            "labels": {"highest": texts["highest"], "visits": texts["visits"]},
        },
    }
