"""Texts of the reports page, its printable page and the login page in Finnish, Swedish
and English (one dict per language, the same keys in each, as `i18n`), and how those
pages write periods, dates, times and percentages in each language."""

from __future__ import annotations

import datetime as dt
from typing import Final

from footfall_report.render.wording import ENGLISH_TEXTS

from .i18n import Lang

LOGIN_TEXTS: Final[dict[Lang, dict[str, str]]] = {
    "fi": {
        "title": "Kirjaudu sisään",
        "user": "Käyttäjätunnus",
        "password": "Salasana",
        "log_in": "Kirjaudu",
        "wrong": "Väärä käyttäjätunnus tai salasana.",
        "too_many": "Liian monta epäonnistunutta kirjautumista: yritä uudelleen {s} s kuluttua.",
    },
    "sv": {
        "title": "Logga in",
        "user": "Användarnamn",
        "password": "Lösenord",
        "log_in": "Logga in",
        "wrong": "Fel användarnamn eller lösenord.",
        "too_many": "För många misslyckade inloggningar: försök igen om {s} s.",
    },
    "en": {
        "title": "Log in",
        "user": "User",
        "password": "Password",
        "log_in": "Log in",
        "wrong": "Wrong user name or password.",
        "too_many": "Too many failed logins: try again in {s} s.",
    },
}

REPORT_TEXTS: Final[dict[Lang, dict[str, str]]] = {
    "fi": {
        "reports": "Raportit",
        "board": "Kävijätilanne",
        "period": "Ajanjakso",
        "zone": "Yksikkö",
        "all_zones": "Kaikki yksiköt",
        "show": "Näytä",
        "yesterday": "Eilen",
        "this_week": "Tämä viikko",
        "last_week": "Viime viikko",
        "this_month": "Tämä kuukausi",
        "last_month": "Viime kuukausi",
        "this_year": "Tämä vuosi",
        "last_year": "Viime vuosi",
        "hint": "Päivä 2026-11-23, ISO-viikko 2026-W47, kuukausi 2026-11 tai vuosi 2026.",
        "accepted": (
            "päivä 2026-11-23, ISO-viikko 2026-W47, kuukausi 2026-11, vuosi 2026 tai "
            "today, yesterday, this-week, last-week, this-month, last-month, this-year, last-year"
        ),
        "in_progress": "kesken",
        "download": "Lataa:",
        "printable": "Tulostettava sivu",
        "statistics": "Vuositilasto {year} (CSV)",
        "visits": "Käynnit",
        "exits": "Poistumiset",
        "peak": "Huippu",
        "peak_at": "Huipun aika",
        "days_open": "Aukiolopäivät",
        "days_closed": "Suljettu",
        "days_no_data": "Ei tietoa",
        "estimated_hours": "Arvioidut tunnit",
        "month_before": "Kuukautta aiemmin",
        "year_before": "Vuotta aiemmin",
        "change": "Muutos",
        "legend": (
            "* sisältää arvioituja tunteja (jokin yksikön ovien laskureista oli poissa verkosta "
            "tai viallinen: luku voi olla liian pieni). suljettu: suljettu aukioloaikojen "
            "mukaan. ei tietoa: avoin päivä, jolle ei ole laskettu käyntejä (ei nolla)."
        ),
        "per_day": "Käynnit päivittäin",
        "date": "Päivä",
        "closed": "suljettu",
        "no_data": "ei tietoa",
        "peak_when": "{date} klo {time}",
        "week_label": "Viikko {week}/{year} ({span})",
        "bad_period": "Virheellinen ajanjakso {raw}",
        "err_required": "Valitse ajanjakso: {accepted}",
        "err_form": "Ajanjaksoa {raw} ei tunnisteta. Kelpaavat muodot: {accepted}",
        "err_year": "{bad}: vuoden on oltava {min}–{max}.",
        "err_month": "{bad}: kuukauden on oltava 01–12.",
        "err_day": "{bad}: {month_in} {year} on päivät 1–{days}.",
        "err_week": "{bad}: ISO-vuodessa {year} on viikot 01–{weeks}.",
        "err_accepted": " Kelpaavat muodot: {accepted}",
        "err_zone": "Tuntematon yksikkö {zones} (yksiköt: {known})",
        "err_unavailable": "Raporttia ei voi tehdä juuri nyt: {error}",
    },
    "sv": {
        "reports": "Rapporter",
        "board": "Besökarläget",
        "period": "Period",
        "zone": "Enhet",
        "all_zones": "Alla enheter",
        "show": "Visa",
        "yesterday": "I går",
        "this_week": "Denna vecka",
        "last_week": "Förra veckan",
        "this_month": "Denna månad",
        "last_month": "Förra månaden",
        "this_year": "I år",
        "last_year": "Förra året",
        "hint": "En dag 2026-11-23, en ISO-vecka 2026-W47, en månad 2026-11 eller ett år 2026.",
        "accepted": (
            "en dag 2026-11-23, en ISO-vecka 2026-W47, en månad 2026-11, ett år 2026 eller "
            "today, yesterday, this-week, last-week, this-month, last-month, this-year, last-year"
        ),
        "in_progress": "pågår",
        "download": "Ladda ned:",
        "printable": "Utskriftsvänlig sida",
        "statistics": "Årsstatistik {year} (CSV)",
        "visits": "Besök",
        "exits": "Utpasseringar",
        "peak": "Topp",
        "peak_at": "Topptid",
        "days_open": "Öppna dagar",
        "days_closed": "Stängt",
        "days_no_data": "Inga uppgifter",
        "estimated_hours": "Uppskattade timmar",
        "month_before": "En månad tidigare",
        "year_before": "Ett år tidigare",
        "change": "Förändring",
        "legend": (
            "* innehåller uppskattade timmar (en räknare vid enhetens dörrar var frånkopplad "
            "eller trasig: siffran kan vara för låg). stängt: stängt enligt öppettiderna. "
            "inga uppgifter: en öppen dag utan beräknade besök (inte noll)."
        ),
        "per_day": "Besök per dag",
        "date": "Datum",
        "closed": "stängt",
        "no_data": "inga uppgifter",
        "peak_when": "{date} kl. {time}",
        "week_label": "Vecka {week}/{year} ({span})",
        "bad_period": "Ogiltig period {raw}",
        "err_required": "Välj en period: {accepted}",
        "err_form": "Perioden {raw} känns inte igen. Giltiga former: {accepted}",
        "err_year": "{bad}: året ska vara {min}–{max}.",
        "err_month": "{bad}: månaden ska vara 01–12.",
        "err_day": "{bad}: {month_in} {year} har dagarna 1–{days}.",
        "err_week": "{bad}: ISO-året {year} har veckorna 01–{weeks}.",
        "err_accepted": " Giltiga former: {accepted}",
        "err_zone": "Okänd enhet {zones} (enheter: {known})",
        "err_unavailable": "Rapporten kan inte göras just nu: {error}",
    },
    "en": {
        "reports": "Reports",
        "board": "Live board",
        "period": "Period",
        "zone": "Zone",
        "all_zones": "All zones",
        "show": "Show",
        "yesterday": "Yesterday",
        "this_week": "This week",
        "last_week": "Last week",
        "this_month": "This month",
        "last_month": "Last month",
        "this_year": "This year",
        "last_year": "Last year",
        "hint": "A day 2026-11-23, an ISO week 2026-W47, a month 2026-11 or a year 2026.",
        "accepted": (
            "a day 2026-11-23, an ISO week 2026-W47, a month 2026-11, a year 2026, "
            "or today, yesterday, this-week, last-week, this-month, last-month, this-year, "
            "last-year"
        ),
        "in_progress": "in progress",
        "download": "Download:",
        "printable": "Printable page",
        "statistics": "Annual statistics {year} (CSV)",
        "visits": "Visits",
        "exits": "Exits",
        "peak": "Peak",
        "peak_at": "Peak at",
        "days_open": "Open days",
        "days_closed": "Closed",
        "days_no_data": "No data",
        "estimated_hours": "Est. hours",
        "month_before": "Month before",
        "year_before": "Year before",
        "change": "Change",
        "legend": (
            "* includes estimated hours (an agent serving the zone's doors was offline or "
            "faulty: the count may be low). closed: closed by the site's opening hours. "
            "no data: an open day without computed visits (not zero)."
        ),
        "per_day": "Visits per day",
        "date": "Date",
        "closed": "closed",
        "no_data": "no data",
        "peak_when": "{date} {time}",
        "week_label": "Week {week} of {year} ({span})",
        "bad_period": "bad period {raw}",
        "err_required": "period is required: {accepted}",
        "err_form": "bad period {raw}: use {accepted}",
        "err_year": "{bad}: the year must be {min} to {max} (the latest InfluxDB can store)",
        "err_month": "{bad}: the month must be 01 to 12",
        "err_day": "{bad}: {month_in} {year} has days 1 to {days}",
        "err_week": "{bad}: ISO year {year} has weeks 01 to {weeks}",
        "err_accepted": " (accepted: {accepted})",
        "err_zone": "unknown zone {zones} (zones: {known})",
        "err_unavailable": "The report cannot be made right now: {error}",
    },
}
"""The reports page's texts; `err_*` word the period and zone errors as the page shows
them (the JSON API keeps `footfall_report`'s English)."""

PRINT_TEXTS: Final[dict[Lang, dict[str, str]]] = {
    "fi": {
        "title": "{site} · Käynnit · {period}",
        "period_line": "{label} ({span}, {timezone})",
        "in_progress": ", kesken: luvut {when} asti",
        "generated": "Luotu {when}.",
        "per_zone": "Käynnit yksiköittäin",
        "per_day": "Käynnit päivittäin",
        "per_month": "Käynnit kuukausittain",
        "doors": "Ovet (yksittäiset läpikulut)",
        "profile": "Tuntiprofiili: {zone} (käyntejä tunnissa keskimäärin)",
        "no_hourly": "Ei tuntitietoja.",
        "zone": "Yksikkö",
        "visits": "Käynnit",
        "exits": "Poistumiset",
        "peak": "Huippu",
        "peak_at": "Huipun aika",
        "days_open": "Auki",
        "days_closed": "Suljettu",
        "days_no_data": "Ei tietoa",
        "estimated_hours": "Arv. h",
        "change": "Muutos",
        "date": "Päivä",
        "month": "Kuukausi",
        "door": "Ovi",
        "between": "Välillä",
        "in": "Sisään",
        "out": "Ulos",
        "outside": "ulkoa",
        "not_in_site": "ei enää kohdetiedostossa",
        "closed": "suljettu",
        "no_data": "ei tietoa",
        "estimated": "arvioitu ({hours} h)",
        "with_no_data": "{days} ilman tietoja",
        "closed_visits_many": "käyntejä {count} suljettuna päivänä, {first}–{last}",
        "closed_visits": "käyntejä suljettuina päivinä: {dates}",
        "to_come": "{days} vielä tulematta",
        "one_day": "{count} päivä",
        "days": "{count} päivää",
        "doors_not_available": (
            "Ovikohtaisia lukuja ei ole tältä ajalta: yksittäiset läpikulut säilytetään "
            "{date} alkaen."
        ),
        "doors_partial": "Ovikohtaiset luvut kattavat vain ajan {date} alkaen.",
        "legend": (
            "{est} sisältää arvioituja tunteja (jokin yksikön ovien laskureista oli poissa "
            "verkosta tai viallinen: luku voi olla liian pieni). suljettu: suljettu "
            "aukioloaikojen mukaan. ei tietoa: avoin päivä, jolle ei ole laskettu käyntejä "
            "(ei nolla). {closed} käyntejä suljettuna päivänä. Muutoksissa verrataan samaan "
            "ajanjaksoon kuukausi ja vuosi aiemmin."
        ),
    },
    "sv": {
        "title": "{site} · Besök · {period}",
        "period_line": "{label} ({span}, {timezone})",
        "in_progress": ", pågår: siffror till {when}",
        "generated": "Skapad {when}.",
        "per_zone": "Besök per enhet",
        "per_day": "Besök per dag",
        "per_month": "Besök per månad",
        "doors": "Dörrar (enskilda passager)",
        "profile": "Timprofil: {zone} (besök per timme i medeltal)",
        "no_hourly": "Inga uppgifter per timme.",
        "zone": "Enhet",
        "visits": "Besök",
        "exits": "Utpasseringar",
        "peak": "Topp",
        "peak_at": "Topptid",
        "days_open": "Öppet",
        "days_closed": "Stängt",
        "days_no_data": "Inga uppg.",
        "estimated_hours": "Uppsk. h",
        "change": "Förändring",
        "date": "Datum",
        "month": "Månad",
        "door": "Dörr",
        "between": "Mellan",
        "in": "In",
        "out": "Ut",
        "outside": "utifrån",
        "not_in_site": "inte längre i platsfilen",
        "closed": "stängt",
        "no_data": "inga uppgifter",
        "estimated": "uppskattat ({hours} h)",
        "with_no_data": "{days} utan uppgifter",
        "closed_visits_many": "besök under {count} stängda dagar, {first}–{last}",
        "closed_visits": "besök på stängda dagar: {dates}",
        "to_come": "{days} återstår",
        "one_day": "{count} dag",
        "days": "{count} dagar",
        "doors_not_available": (
            "Siffror per dörr finns inte för den här perioden: enskilda passager sparas "
            "från {date}."
        ),
        "doors_partial": "Siffrorna per dörr gäller bara från {date}.",
        "legend": (
            "{est} innehåller uppskattade timmar (en räknare vid enhetens dörrar var "
            "frånkopplad eller trasig: siffran kan vara för låg). stängt: stängt enligt "
            "öppettiderna. inga uppgifter: en öppen dag utan beräknade besök (inte noll). "
            "{closed} besök räknade på en stängd dag. Förändringarna jämförs med samma "
            "period en månad och ett år tidigare."
        ),
    },
    "en": dict(ENGLISH_TEXTS),
}
"""The printable page's texts (`footfall_report`'s English, and Finnish and Swedish)."""

MONTHS: Final[dict[Lang, tuple[str, ...]]] = {
    "fi": tuple(
        f"{m}kuu"
        for m in (
            "tammi",
            "helmi",
            "maalis",
            "huhti",
            "touko",
            "kesä",
            "heinä",
            "elo",
            "syys",
            "loka",
            "marras",
            "joulu",
        )
    ),
    "sv": (
        "januari",
        "februari",
        "mars",
        "april",
        "maj",
        "juni",
        "juli",
        "augusti",
        "september",
        "oktober",
        "november",
        "december",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}


def month_in(month: int, lang: Lang) -> str:
    """A month as "in February" needs it: Finnish "helmikuussa", else the name."""
    name = MONTHS[lang][month - 1]
    return f"{name}ssa" if lang == "fi" else name


def date_text(day: dt.date, lang: Lang) -> str:
    """Finnish and Finland-Swedish write 1.11.2026; English keeps 2026-11-01."""
    return day.isoformat() if lang == "en" else f"{day.day}.{day.month}.{day.year}"


def pct_text(value: float | None, lang: Lang) -> str:
    """A change: "+5.2 %" in English, "+5,2 %" and "−5,2 %" (a minus sign) otherwise."""
    if value is None:
        return ""
    text = f"{value:+.1f} %"
    return text if lang == "en" else text.replace(".", ",").replace("-", "\u2212")
