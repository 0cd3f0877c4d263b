"""The reports page and its printable page in the visitor's language: the report's
figures (`footfall_report`'s, unchanged) as the page's cells, period labels, dates, times
and percentages written as the language writes them, and the request's errors in words a
manager reads. Pure, so that every text is checked without a browser."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from footfall_contract.site import Site
from footfall_report import Period, Report
from footfall_report.render.wording import ENGLISH, Wording
from footfall_report.render.words import figure_text, when_text

from . import i18n, zonepage
from .i18n_reports import MONTHS, PRINT_TEXTS, REPORT_TEXTS, date_text, month_in, pct_text
from .reports import QUICK_PERIODS, BadReportRequest


def period_label(p: Period, lang: i18n.Lang) -> str:
    """For people: "Marraskuu 2026", "Viikko 47/2026 (16.–22.11.)", "Ma 23.11.2026" (the
    English ones are `footfall_report`'s: "November 2026", "Week 47 of 2026 (16–22 Nov)")."""
    if lang == "en":
        return p.label
    first, last = p.first, p.last
    if p.kind == "day":
        weekday = zonepage.WEEKDAYS[lang][first.weekday()].capitalize()
        return f"{weekday} {date_text(first, lang)}"
    if p.kind == "week":
        year, week, _ = first.isocalendar()
        start = f"{first.day}." if first.month == last.month else f"{first.day}.{first.month}."
        span = f"{start}–{last.day}.{last.month}."
        return REPORT_TEXTS[lang]["week_label"].format(week=week, year=year, span=span)
    if p.kind == "month":
        return f"{MONTHS[lang][first.month - 1].capitalize()} {first.year}"
    return str(first.year)


def when_in(value: dt.datetime | None, lang: i18n.Lang) -> str:
    """A site-local instant: "23.11.2026 klo 14.05", "… kl. 14.05", "2026-11-23 14:05"."""
    if value is None:
        return ""
    if lang == "en":
        return when_text(value)
    time = i18n.format_time(f"{value:%H:%M}", lang)
    return REPORT_TEXTS[lang]["peak_when"].format(date=date_text(value.date(), lang), time=time)


def wording(lang: i18n.Lang, site: Site) -> Wording:
    """The printable page's words in `lang`, with the site file's names in it."""
    names = {z.id: z.name_in(lang) for z in site.zones}
    if lang == "en":
        return replace(ENGLISH, names=names, site_name=site.name_in(lang))
    return Wording(
        lang=lang,
        texts=PRINT_TEXTS[lang],
        weekdays=zonepage.WEEKDAYS[lang],
        period_label=lambda p: period_label(p, lang),
        date=lambda d: date_text(d, lang),
        day=lambda d: zonepage.day_label(d, lang),
        when=lambda t: when_in(t, lang),
        pct=lambda v: pct_text(v, lang),
        names=names,
        site_name=site.name_in(lang),
    )


def quick_periods(lang: i18n.Lang) -> list[tuple[str, str]]:
    """The quick links: (period, its name in `lang`)."""
    return [(key, REPORT_TEXTS[lang][key.replace("-", "_")]) for key in QUICK_PERIODS]


def error_text(exc: BadReportRequest, lang: i18n.Lang) -> str:
    """A period or zone the page cannot use, in `lang` (the API keeps the English)."""
    texts = REPORT_TEXTS[lang]
    d = exc.details
    raw = str(d.get("raw", ""))
    quoted = f"'{raw}'" if lang == "en" else f"”{raw}”"
    accepted = texts["accepted"]
    if exc.reason == "required":
        return texts["err_required"].format(accepted=accepted)
    if exc.reason == "zone":
        unknown = ", ".join(f"'{z}'" if lang == "en" else f"”{z}”" for z in _names(d["zones"]))
        return texts["err_zone"].format(zones=unknown, known=", ".join(_names(d["known"])))
    if exc.reason in ("year", "month", "day", "week"):
        bad = texts["bad_period"].format(raw=quoted)
        values = {k: v for k, v in d.items() if k != "raw"}
        if exc.reason == "day":
            values["month_in"] = month_in(int(str(d["month"])), lang)
        text = texts[f"err_{exc.reason}"].format(bad=bad, **values)
        return text + texts["err_accepted"].format(accepted=accepted)
    return texts["err_form"].format(raw=quoted, accepted=accepted)


def _names(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def unavailable_text(error: str, lang: i18n.Lang) -> str:
    return REPORT_TEXTS[lang]["err_unavailable"].format(error=error)


def _figure(value: int | None, estimated: bool, status: str, lang: i18n.Lang) -> str:
    if value is not None:
        return figure_text(value, estimated)
    if status == "not_yet":
        return "–"
    return "" if status == "counted" else REPORT_TEXTS[lang].get(status, status)


def _when(iso: str | None, lang: i18n.Lang) -> str:
    return "" if not iso else when_in(dt.datetime.fromisoformat(iso), lang)


def page_view(report: Report, site: Site, lang: i18n.Lang) -> dict[str, Any]:
    """The report as the page's cells (text, already marked: * estimated) in `lang`,
    the period's label and span, and each zone's name in `lang`."""
    data = report.as_dict()
    p = report.period
    span = f"{date_text(p.first, lang)} – {date_text(p.last, lang)}"
    names = {z.id: z.name_in(lang) for z in site.zones}
    zones: list[dict[str, Any]] = []
    raw_zones: list[dict[str, Any]] = data["zones"]
    for z in raw_zones:
        compared = []
        for key in ("month_before", "year_before"):
            c = z[key]
            compared.append(
                None
                if c is None
                else {
                    "period": c["period"],
                    "visits": _figure(c["entries"], c["estimated"], "no_data", lang),
                    "change": pct_text(c["change_pct"], lang),
                }
            )
        zones.append(
            {
                "zone": z["zone"],
                "name": names.get(z["zone"], z["name"]),
                "depth": z["depth"],
                "status": z["status"],
                "visits": _figure(z["entries"], z["estimated"], z["status"], lang),
                "exits": "" if z["exits"] is None else str(z["exits"]),
                "peak": "" if z["peak"] is None else figure_text(z["peak"], z["peak_estimated"]),
                "peak_at": _when(z["peak_at"], lang),
                "days_open": z["days_open"],
                "days_closed": z["days_closed"],
                "days_no_data": z["days_no_data"],
                "estimated_hours": z["estimated_hours"],
                "month_before": compared[0],
                "year_before": compared[1],
            }
        )
    days: list[dict[str, Any]] = []
    if raw_zones and len(raw_zones[0]["days"]) <= 31:
        for i, d in enumerate(raw_zones[0]["days"]):
            cells = []
            for z in raw_zones:
                day = z["days"][i]
                status = day["status"]
                counted = status in ("open", "closed_with_visits")
                # the cell's status class marks visits on a closed day, not a "!"
                text = _figure(day["entries"] if counted else None, day["estimated"], status, lang)
                cells.append({"zone": z["zone"], "text": text, "status": status})
            label = zonepage.day_label(dt.date.fromisoformat(d["date"]), lang)
            days.append({"date": d["date"], "label": label, "cells": cells})
    return {
        "label": period_label(p, lang),
        "span": span,
        "year": p.first.year,
        "zones": zones,
        "days": days,
    }
