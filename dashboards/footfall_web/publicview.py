"""The public display's figures (page and API alike): how busy a zone is now, today's
hours, and the rest of the day from its typical profile. Only aggregates, and never a
count that would give a zone's capacity away; never for a zone without a public display."""

from __future__ import annotations

import datetime as dt
import logging

from footfall_collector.influx import PermanentWriteError, RetryableWriteError
from footfall_contract.hours import clock_text
from footfall_contract.timefmt import format_ts

from . import i18n, levels, zonepage
from .models import ForecastPoint, PublicCrowding
from .state import TypicalLike, Web

log = logging.getLogger("footfall_web.app")
FORECAST_RETRY_S = 60.0


def typical_of(web: Web, site: str, zone: str, weekday: int | None) -> TypicalLike | None:
    """The typical day, or None while InfluxDB fails (asked again after a minute, so
    that the public page does not wait for a dead database on every refresh)."""
    forecaster = web.forecaster(site)
    if forecaster is None or web.forecast_down_until.get(site, 0.0) > web.now():
        return None
    try:
        return forecaster.typical(zone, weekday)
    except (RetryableWriteError, PermanentWriteError, OSError) as exc:
        log.warning("typical profile of %s/%s unavailable: %s", site, zone, exc)
        web.forecast_down_until[site] = web.now() + FORECAST_RETRY_S
        return None


def public_crowding(web: Web, site: str, zone: str, lang: i18n.Lang) -> PublicCrowding:
    s = web.public_zone(site, zone)  # never figures of a zone without a public display
    cfg = web.settings.crowding
    now_ms = web.now_ms()
    view = levels.crowding(
        s, zone, web.live.reading(site, zone), now_ms, cfg.thresholds(site, zone), cfg.stale_after_s
    )
    local = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC).astimezone(s.tz)
    hours = s.hours_on(local.date(), zone)
    label_key: str = view.level if view.state == "open" and view.level else view.state
    if view.state == "open" and view.level is None:
        label_key = "open_now"
    hours_today = None
    if hours is not None:
        hours_today = i18n.text(
            lang,
            "hours_today",
            start=i18n.format_time(clock_text(hours[0]), lang),
            end=i18n.format_time(clock_text(hours[1]), lang),
        )
    peak_time = peak_label = None
    forecast: list[ForecastPoint] = []
    typical = typical_of(web, site, zone, local.weekday())
    capacity = s.zone(zone).capacity
    if typical is not None and any(v is not None for v in typical.values):
        peak = levels.busiest_slot(typical.values, typical.step_min, hours)
        if peak is not None:
            peak_time = levels.slot_time(peak, typical.step_min)
            peak_label = i18n.text(lang, "peak", time=i18n.format_time(peak_time, lang))
        for slot, value in levels.rest_of_day(typical.values, typical.step_min, local, hours):
            forecast.append(
                ForecastPoint(
                    time=levels.slot_time(slot, typical.step_min),
                    # with a capacity the percent is the figure: a count beside it
                    # would give away the capacity, and so the live count
                    count=None if value is None or capacity else round(value, 1),
                    percent=None
                    if value is None or not capacity
                    else round(value / capacity * 100),
                )
            )
    return PublicCrowding(
        site=site,
        zone=zone,
        name=s.zone(zone).name_in(lang),
        lang=lang,
        state=view.state,
        level=view.level,
        label=i18n.text(lang, label_key),
        percent=view.percent,
        count=view.count,
        updated=None if view.updated_ms is None else format_ts(view.updated_ms),
        updated_time=None if view.updated_ms is None else zonepage.hhmm(s, view.updated_ms, lang),
        hours_today=hours_today if hours is not None else i18n.text(lang, "closed_today"),
        fresh_for_s=None
        if view.state != "open" or view.age_s is None
        else round(max(0.0, cfg.stale_after_s - view.age_s), 1),
        peak_time=peak_time,
        peak_label=peak_label,
        now_time=local.strftime("%H:%M"),
        forecast=forecast,
    )
