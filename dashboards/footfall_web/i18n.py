"""Texts of the public display in Finnish, Swedish and English, and language choice
(an explicit choice, else the browser's Accept-Language, else Finnish)."""

from __future__ import annotations

from typing import Final, Literal

Lang = Literal["fi", "sv", "en"]
LANGS: Final[tuple[Lang, ...]] = ("fi", "sv", "en")
DEFAULT: Final[Lang] = "fi"

LANGUAGE_NAMES: Final[dict[Lang, str]] = {"fi": "Suomi", "sv": "Svenska", "en": "English"}

TEXTS: Final[dict[Lang, dict[str, str]]] = {
    "fi": {
        "quiet": "Rauhallista",
        "moderate": "Jonkin verran väkeä",
        "busy": "Vilkasta",
        "very_busy": "Ruuhkaista",
        "closed": "Suljettu",
        "no_data": "Ei tietoa",
        "no_data_hint": "Tietoja ei juuri nyt saada",
        "open_now": "Avoinna",
        "percent": "{pct} % kapasiteetista",
        "people": "{count} henkilöä",
        "peak": "Yleensä vilkkainta klo {time}",
        "later_today": "Tämän päivän ennuste",
        "typical": "tavallisesti",
        "hours_today": "Tänään avoinna {start}–{end}",
        "closed_today": "Tänään suljettu",
        "updated": "Päivitetty {time}",
        "now": "nyt",
        "language": "Kieli",
    },
    "sv": {
        "quiet": "Lugnt",
        "moderate": "Måttligt med folk",
        "busy": "Livligt",
        "very_busy": "Mycket folk",
        "closed": "Stängt",
        "no_data": "Inga uppgifter",
        "no_data_hint": "Uppgifter saknas för tillfället",
        "open_now": "Öppet",
        "percent": "{pct} % av kapaciteten",
        "people": "{count} personer",
        "peak": "Oftast mest folk kl. {time}",
        "later_today": "Prognos för i dag",
        "typical": "vanligtvis",
        "hours_today": "Öppet i dag {start}–{end}",
        "closed_today": "Stängt i dag",
        "updated": "Uppdaterat {time}",
        "now": "nu",
        "language": "Språk",
    },
    "en": {
        "quiet": "Quiet",
        "moderate": "Moderately busy",
        "busy": "Busy",
        "very_busy": "Very busy",
        "closed": "Closed",
        "no_data": "No data",
        "no_data_hint": "Figures are not available right now",
        "open_now": "Open",
        "percent": "{pct}% of capacity",
        "people": "{count} people",
        "peak": "Usually busiest at {time}",
        "later_today": "Forecast for today",
        "typical": "typically",
        "hours_today": "Open today {start}–{end}",
        "closed_today": "Closed today",
        "updated": "Updated {time}",
        "now": "now",
        "language": "Language",
    },
}


def is_lang(value: str | None) -> bool:
    return value in LANGS


def negotiate(accept_language: str | None, default: Lang = DEFAULT) -> Lang:
    """The supported language the browser prefers most (RFC 9110 q-values; "fi-FI"
    matches "fi"; "*" means the default)."""
    if not accept_language:
        return default
    best: tuple[float, int, Lang] | None = None
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0 or not 0 <= q <= 1:
            continue
        primary = tag.split("-")[0]
        lang: Lang | None = default if primary == "*" else None
        for candidate in LANGS:
            if primary == candidate:
                lang = candidate
        if lang is None:
            continue
        # higher q first, then earlier position
        if best is None or (q, -position) > (best[0], best[1]):
            best = (q, -position, lang)
    return best[2] if best else default


def choose(query_lang: str | None, cookie_lang: str | None, accept_language: str | None) -> Lang:
    for explicit in (query_lang, cookie_lang):
        if explicit in LANGS:
            return explicit
    return negotiate(accept_language)


def format_time(hhmm: str, lang: Lang) -> str:
    """Finnish and Finland-Swedish write 15.00, English 15:00."""
    return hhmm.replace(":", ".") if lang in ("fi", "sv") else hhmm


def text(lang: Lang, key: str, **values: object) -> str:
    return TEXTS[lang][key].format(**values)
