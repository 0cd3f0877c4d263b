"""Texts of the public display and the live board in Finnish, Swedish and English, and
language choice (an explicit choice, else the browser's Accept-Language, else Finnish)."""

from __future__ import annotations

from typing import Final

from footfall_contract.site import NAME_LANGS
from footfall_contract.site import Lang as Lang  # the contract's, re-exported

LANGS: Final = NAME_LANGS
DEFAULT: Final[Lang] = "fi"

LANGUAGE_NAMES: Final[dict[Lang, str]] = {"fi": "Suomi", "sv": "Svenska", "en": "English"}
LOCALES: Final[dict[Lang, str]] = {"fi": "fi-FI", "sv": "sv-FI", "en": "en-GB"}
"""BCP 47 locales for the browser's date and time formats (Finland's Swedish, British
English: 24-hour clock)."""

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
        "not_found_title": "Sivua ei löytynyt",
        "not_found_text": "Tällä osoitteella ei ole julkista näyttöä.",
        "public_displays": "Julkiset näytöt",
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
        "not_found_title": "Sidan hittades inte",
        "not_found_text": "Det finns ingen offentlig skärm på den här adressen.",
        "public_displays": "Offentliga skärmar",
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
        "not_found_title": "Page not found",
        "not_found_text": "There is no public display at this address.",
        "public_displays": "Public displays",
    },
}

BOARD_TEXTS: Final[dict[Lang, dict[str, str]]] = {
    "fi": {
        "title": "Kävijätilanne nyt",
        "reports": "Raportit",
        "log_out": "Kirjaudu ulos",
        "connecting": "yhdistetään…",
        "live": "ajantasalla",
        "reconnecting": "yhdistetään uudelleen…",
        "stale_since": "ei uutta tietoa {time} jälkeen",
        "connection": "reaaliaikainen yhteys",
        "times_in": "Ajat: {tz}",
        "in_parent": "osa: {parent}",
        "no_reading": "ei vielä lukemaa",
        "updated_s": "päivitetty {n} s sitten",
        "updated_min": "päivitetty {n} min sitten",
        "updated_at": "päivitetty {time}",
        "no_data": "ei tietoa",
        "no_agents": "yksikään laite ei ole ilmoittautunut",
        "online": "verkossa",
        "offline": "ei verkossa",
        "agent_since": "{state} {time} alkaen · ohjelmisto {sw}",
        "since": "{time} alkaen",
        "acknowledged_by": "kuitannut {who}",
        "silenced_until": "vaiennettu klo {time} asti",
        "acknowledge": "Kuittaa",
        "silence": "Vaienna {h} h",
        "ack_failed": "Kuittaus epäonnistui: {error}",
        "silence_failed": "Vaientaminen epäonnistui: {error}",
        "retire": "Poista käytöstä",
        "retire_agent": "Poista käytöstä: laite {agent}",
        "retire_confirm": "Poistetaanko laite {agent} käytöstä?",
        "retire_explain": (
            "Vain laitteelle, joka on poissa pysyvästi (vaihdettu tai viety pois): se poistuu "
            "näkymästä ja sen hälytykset päättyvät. Jos se vielä yhdistää, se palaa näkyviin."
        ),
        "cancel": "Peruuta",
        "retired": "Laite {agent} poistettu käytöstä",
        "retire_failed": "Laitteen {agent} poistaminen käytöstä epäonnistui: {error}",
        "critical": "kriittinen",
        "warning": "varoitus",
        "info": "tiedote",
    },
    "sv": {
        "title": "Besökarläget nu",
        "reports": "Rapporter",
        "log_out": "Logga ut",
        "connecting": "ansluter…",
        "live": "aktuellt",
        "reconnecting": "återansluter…",
        "stale_since": "inga nya uppgifter sedan {time}",
        "connection": "direktanslutning",
        "times_in": "Tider: {tz}",
        "in_parent": "i {parent}",
        "no_reading": "ingen avläsning ännu",
        "updated_s": "uppdaterat för {n} s sedan",
        "updated_min": "uppdaterat för {n} min sedan",
        "updated_at": "uppdaterat {time}",
        "no_data": "inga uppgifter",
        "no_agents": "inga enheter har rapporterat",
        "online": "ansluten",
        "offline": "frånkopplad",
        "agent_since": "{state} sedan {time} · programvara {sw}",
        "since": "sedan {time}",
        "acknowledged_by": "kvitterat av {who}",
        "silenced_until": "tystat till {time}",
        "acknowledge": "Kvittera",
        "silence": "Tysta {h} h",
        "ack_failed": "Kvitteringen misslyckades: {error}",
        "silence_failed": "Tystandet misslyckades: {error}",
        "retire": "Avveckla",
        "retire_agent": "Avveckla enheten {agent}",
        "retire_confirm": "Avveckla enheten {agent}?",
        "retire_explain": (
            "Bara för en enhet som är borta för gott (utbytt eller bortflyttad): den försvinner "
            "från tavlan och dess larm upphör. Ansluter den igen kommer den tillbaka."
        ),
        "cancel": "Avbryt",
        "retired": "Enheten {agent} avvecklad",
        "retire_failed": "Avvecklingen av {agent} misslyckades: {error}",
        "critical": "kritisk",
        "warning": "varning",
        "info": "info",
    },
    "en": {
        "title": "Live occupancy",
        "reports": "Reports",
        "log_out": "Log out",
        "connecting": "connecting…",
        "live": "live",
        "reconnecting": "reconnecting…",
        "stale_since": "stale since {time}",
        "connection": "live connection",
        "times_in": "Times: {tz}",
        "in_parent": "in {parent}",
        "no_reading": "no reading yet",
        "updated_s": "updated {n} s ago",
        "updated_min": "updated {n} min ago",
        "updated_at": "updated {time}",
        "no_data": "no data",
        "no_agents": "no agents reported",
        "online": "online",
        "offline": "offline",
        "agent_since": "{state} since {time} · sw {sw}",
        "since": "since {time}",
        "acknowledged_by": "acknowledged by {who}",
        "silenced_until": "silenced until {time}",
        "acknowledge": "Acknowledge",
        "silence": "Silence {h} h",
        "ack_failed": "Acknowledging failed: {error}",
        "silence_failed": "Silencing failed: {error}",
        "retire": "Retire",
        "retire_agent": "Retire agent {agent}",
        "retire_confirm": "Retire agent {agent}?",
        "retire_explain": (
            "Only for a Pi that is gone for good (replaced or taken away): it leaves the board "
            "and its alerts resolve. If it connects again, it is back."
        ),
        "cancel": "Cancel",
        "retired": "Agent {agent} retired",
        "retire_failed": "Retiring {agent} failed: {error}",
        "critical": "critical",
        "warning": "warning",
        "info": "info",
    },
}
"""The live board's texts; board.js and agents.js fill the {placeholders}."""


def is_lang(value: str | None) -> bool:
    return value in LANGS


def parse_lang(value: str | None) -> Lang | None:
    """A language code as given in `?lang=` or the cookie, in any case ("FI" is fi);
    None for anything else (then the next source decides)."""
    if value is None:
        return None
    wanted = value.strip().lower()
    for lang in LANGS:
        if wanted == lang:
            return lang
    return None


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
    """`?lang=`, then the switcher's cookie, then Accept-Language, then Finnish; a code
    that is none of fi, sv, en is passed over, so a page never fails on a language."""
    for explicit in (query_lang, cookie_lang):
        lang = parse_lang(explicit)
        if lang is not None:
            return lang
    return negotiate(accept_language)


def format_time(hhmm: str, lang: Lang) -> str:
    """Finnish and Finland-Swedish write 15.00, English 15:00."""
    return hhmm.replace(":", ".") if lang in ("fi", "sv") else hhmm


def text(lang: Lang, key: str, **values: object) -> str:
    return TEXTS[lang][key].format(**values)


ZONE_TEXTS: Final[dict[Lang, dict[str, str]]] = {
    "fi": {
        "skip": "Siirry sisältöön",
        "board": "Kävijätilanne",
        "now": "Nyt",
        "people_now": "{count} paikalla",
        "of_capacity": "{pct} % kapasiteetista ({capacity})",
        "no_data": "ei tietoa",
        "updated": "päivitetty {time}",
        "today": "Tänään",
        "visits_so_far": "Käyntejä tänään tähän mennessä",
        "peak_today": "Eniten paikalla tänään",
        "peak_at": "{count} klo {time}",
        "today_chart": (
            "Paikalla tunneittain tänään: eniten {peak} klo {time}, nyt {now}; käyntejä {visits}"
        ),
        "today_chart_empty": "Tältä päivältä ei ole vielä lukuja",
        "table": "Luvut taulukkona",
        "hour": "Tunti",
        "at_end": "Paikalla tunnin lopussa",
        "highest": "Eniten paikalla",
        "visits": "Käynnit",
        "this_week": "Tämä viikko",
        "day": "Päivä",
        "week_total": "Yhteensä",
        "links": "Katso myös",
        "public_display": "Julkinen näyttö",
        "report_week": "Raportti: tämä viikko",
        "report_month": "Raportti: tämä kuukausi",
        "csv_today": "Tämän päivän luvut (CSV)",
        "history_unavailable": "Historiatiedot eivät ole nyt saatavilla: {error}",
        "not_found": "Yksikköä ei löytynyt: {error}",
        "forecast_time": "Klo",
        "forecast_expected": "Tavallisesti",
        "displays_title": "Julkiset näytöt · {site}",
        "online": "verkossa",
        "offline": "ei verkossa",
        "chart_spark": (
            "{zone}: paikalla viimeiset {hours} h, vähiten {min}, eniten {max}, nyt {now}"
        ),
    },
    "sv": {
        "skip": "Hoppa till innehållet",
        "board": "Besökarläget",
        "now": "Nu",
        "people_now": "{count} på plats",
        "of_capacity": "{pct} % av kapaciteten ({capacity})",
        "no_data": "inga uppgifter",
        "updated": "uppdaterat {time}",
        "today": "I dag",
        "visits_so_far": "Besök hittills i dag",
        "peak_today": "Flest på plats i dag",
        "peak_at": "{count} kl. {time}",
        "today_chart": (
            "På plats per timme i dag: flest {peak} kl. {time}, nu {now}; besök {visits}"
        ),
        "today_chart_empty": "Inga siffror för i dag ännu",
        "table": "Siffrorna som tabell",
        "hour": "Timme",
        "at_end": "På plats vid timmens slut",
        "highest": "Flest på plats",
        "visits": "Besök",
        "this_week": "Denna vecka",
        "day": "Dag",
        "week_total": "Totalt",
        "links": "Se också",
        "public_display": "Offentlig skärm",
        "report_week": "Rapport: denna vecka",
        "report_month": "Rapport: denna månad",
        "csv_today": "Dagens siffror (CSV)",
        "history_unavailable": "Historiken är inte tillgänglig just nu: {error}",
        "not_found": "Enheten hittades inte: {error}",
        "forecast_time": "Kl.",
        "forecast_expected": "Vanligtvis",
        "displays_title": "Offentliga skärmar · {site}",
        "online": "ansluten",
        "offline": "frånkopplad",
        "chart_spark": "{zone}: på plats de senaste {hours} h, minst {min}, flest {max}, nu {now}",
    },
    "en": {
        "skip": "Skip to content",
        "board": "Live board",
        "now": "Now",
        "people_now": "{count} in",
        "of_capacity": "{pct}% of capacity ({capacity})",
        "no_data": "no data",
        "updated": "updated {time}",
        "today": "Today",
        "visits_so_far": "Visits so far today",
        "peak_today": "Most people in today",
        "peak_at": "{count} at {time}",
        "today_chart": (
            "People in per hour today: most {peak} at {time}, now {now}; {visits} visits"
        ),
        "today_chart_empty": "No figures for today yet",
        "table": "The figures as a table",
        "hour": "Hour",
        "at_end": "In at the hour's end",
        "highest": "Most in",
        "visits": "Visits",
        "this_week": "This week",
        "day": "Day",
        "week_total": "Total",
        "links": "See also",
        "public_display": "Public display",
        "report_week": "Report: this week",
        "report_month": "Report: this month",
        "csv_today": "Today's figures (CSV)",
        "history_unavailable": "History is not available right now: {error}",
        "not_found": "No such unit: {error}",
        "forecast_time": "Time",
        "forecast_expected": "Typically",
        "displays_title": "Public displays · {site}",
        "online": "online",
        "offline": "offline",
        "chart_spark": (
            "{zone}: people in over the last {hours} h, fewest {min}, most {max}, now {now}"
        ),
    },
}
"""The agency page's texts, and those that say in words what the board's colours and
the charts show (agent state, chart summaries, the forecast as a table)."""
