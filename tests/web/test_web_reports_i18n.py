"""The reports page, its printable page and the login page in Finnish, Swedish and
English: the same language choice as the board (`?lang=` over the switcher's cookie over
Accept-Language, else Finnish), the texts a manager reads word for word (written out here,
not read from the code), numbers, dates and times as each language writes them, and the
CSV and XLSX column headers unchanged in every language (a machine-readable interface).
Against a real InfluxDB with the rollups of tests/web/test_web_reports.py, the real
server and Debian's Chromium."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser, expect

from footfall_report.periods import ACCEPTED, parse_period
from footfall_report.render import CSV_COLUMNS
from footfall_report.render.wording import ENGLISH_TEXTS
from footfall_sim.localservices import Influx, Mosquitto
from footfall_web import i18n, i18n_reports, reportpage, reports
from footfall_web.auth import hash_password
from footfall_web.state import LANG_COOKIE
from tests.support.web import web_server, web_settings
from tests.web.test_web_reports import (
    NOVEMBER,
    NOVEMBER_2025,
    SITE,
    TZ,
    Truth,
    hourly,
    write_rollups,
)

pytestmark = pytest.mark.services

PAGE = "/reports/test-site"
API = "/api/v1/sites/test-site/reports/visits"
PASSWORD = "s3cret-pass"

ACCEPTED_IN = {
    "fi": (
        "päivä 2026-11-23, ISO-viikko 2026-W47, kuukausi 2026-11, vuosi 2026 tai today, "
        "yesterday, this-week, last-week, this-month, last-month, this-year, last-year"
    ),
    "sv": (
        "en dag 2026-11-23, en ISO-vecka 2026-W47, en månad 2026-11, ett år 2026 eller today, "
        "yesterday, this-week, last-week, this-month, last-month, this-year, last-year"
    ),
    "en": ACCEPTED,
}
PAGE_TEXTS: dict[str, dict[str, object]] = {
    "fi": {
        "h1": "Raportit · Test Service Centre",
        "heads": [
            "Yksikkö",
            "Käynnit",
            "Poistumiset",
            "Huippu",
            "Huipun aika",
            "Aukiolopäivät",
            "Suljettu",
            "Ei tietoa",
            "Arvioidut tunnit",
            "Kuukautta aiemmin",
            "Muutos",
            "Vuotta aiemmin",
            "Muutos",
        ],
        "label": "Marraskuu 2026 1.11.2026 – 30.11.2026, Europe/Helsinki",
        "monday": "ma 2.11.",
        "no_data": "ei tietoa",
        "quick": [
            "Eilen",
            "Tämä viikko",
            "Viime viikko",
            "Tämä kuukausi",
            "Viime kuukausi",
            "Tämä vuosi",
            "Viime vuosi",
        ],
        "hint": "Päivä 2026-11-23, ISO-viikko 2026-W47, kuukausi 2026-11 tai vuosi 2026.",
        "board": "Kävijätilanne",
        "show": "Näytä",
        "printable": "Tulostettava sivu",
        "error": "Virheellinen ajanjakso ”2026-02-30”: helmikuussa 2026 on päivät 1–28. "
        f"Kelpaavat muodot: {ACCEPTED_IN['fi']}",
        "print_h1": "Test Service Centre · Käynnit · Marraskuu 2026",
    },
    "sv": {
        "h1": "Rapporter · Test Service Centre",
        "heads": [
            "Enhet",
            "Besök",
            "Utpasseringar",
            "Topp",
            "Topptid",
            "Öppna dagar",
            "Stängt",
            "Inga uppgifter",
            "Uppskattade timmar",
            "En månad tidigare",
            "Förändring",
            "Ett år tidigare",
            "Förändring",
        ],
        "label": "November 2026 1.11.2026 – 30.11.2026, Europe/Helsinki",
        "monday": "mån 2.11.",
        "no_data": "inga uppgifter",
        "quick": [
            "I går",
            "Denna vecka",
            "Förra veckan",
            "Denna månad",
            "Förra månaden",
            "I år",
            "Förra året",
        ],
        "hint": "En dag 2026-11-23, en ISO-vecka 2026-W47, en månad 2026-11 eller ett år 2026.",
        "board": "Besökarläget",
        "show": "Visa",
        "printable": "Utskriftsvänlig sida",
        "error": "Ogiltig period ”2026-02-30”: februari 2026 har dagarna 1–28. "
        f"Giltiga former: {ACCEPTED_IN['sv']}",
        "print_h1": "Test Service Centre · Besök · November 2026",
    },
    "en": {
        "h1": "Reports · Test Service Centre",
        "heads": [
            "Zone",
            "Visits",
            "Exits",
            "Peak",
            "Peak at",
            "Open days",
            "Closed",
            "No data",
            "Est. hours",
            "Month before",
            "Change",
            "Year before",
            "Change",
        ],
        "label": "November 2026 2026-11-01 – 2026-11-30, Europe/Helsinki",
        "monday": "Mon 2/11",
        "no_data": "no data",
        "quick": [
            "Yesterday",
            "This week",
            "Last week",
            "This month",
            "Last month",
            "This year",
            "Last year",
        ],
        "hint": "A day 2026-11-23, an ISO week 2026-W47, a month 2026-11 or a year 2026.",
        "board": "Live board",
        "show": "Show",
        "printable": "Printable page",
        "error": f"bad period '2026-02-30': February 2026 has days 1 to 28 (accepted: {ACCEPTED})",
        "print_h1": "Test Service Centre: visits, November 2026",
    },
}
LOGIN_TEXTS = {
    "fi": (
        "Kirjaudu sisään",
        "Käyttäjätunnus",
        "Salasana",
        "Kirjaudu",
        "Väärä käyttäjätunnus tai salasana.",
    ),
    "sv": ("Logga in", "Användarnamn", "Lösenord", "Logga in", "Fel användarnamn eller lösenord."),
    "en": ("Log in", "User", "Password", "Log in", "Wrong user name or password."),
}


def december_clock() -> Callable[[], float]:
    """15 December 2026, 12:00 in Helsinki and on from there: November is over."""
    start, t0 = dt.datetime(2026, 12, 15, 12, tzinfo=TZ).timestamp(), time.time()
    return lambda: start + (time.time() - t0)


def change_text(now: int, before: int, lang: str) -> str:
    """A change as a person reads it: +12.3 % in English, +12,3 % (−: a minus sign)."""
    text = f"{round((now - before) / before * 100, 1):+.1f} %"
    return text if lang == "en" else text.replace(".", ",").replace("-", "\u2212")


def html_lang(body: str) -> str:
    found = re.search(r'<html lang="(\w+)"', body)
    assert found, body[:200]
    return found[1]


def h1(body: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", body)
    assert found, body[:400]
    return found[1]


@pytest.fixture
def served(mosquitto: Mosquitto, influx: Influx) -> Iterator[tuple[str, Truth]]:
    truth = write_rollups(influx.url)
    settings = web_settings(mosquitto.port, influx.url)
    with web_server(settings, [SITE], now=december_clock()) as server:
        yield server.url, truth


# -- the texts themselves -------------------------------------------------------------


def test_every_language_has_every_text_with_the_same_placeholders() -> None:
    def placeholders(text: str) -> set[str]:
        return set(re.findall(r"\{(\w+)\}", text))

    for table in (i18n_reports.LOGIN_TEXTS, i18n_reports.REPORT_TEXTS, i18n_reports.PRINT_TEXTS):
        assert set(table) == set(i18n.LANGS)
        for lang in i18n.LANGS:
            assert table[lang].keys() == table["en"].keys(), lang
            for key, text in table[lang].items():
                assert placeholders(text) == placeholders(table["en"][key]), (lang, key)
    # the printable page's English is footfall_report's (the CLI's and the mail's)
    assert i18n_reports.PRINT_TEXTS["en"] == ENGLISH_TEXTS
    assert i18n_reports.REPORT_TEXTS["en"]["accepted"] == ACCEPTED
    for lang in i18n.LANGS:
        assert i18n_reports.REPORT_TEXTS[lang]["accepted"] == ACCEPTED_IN[lang]


def test_periods_times_and_changes_as_each_language_writes_them() -> None:
    now = dt.datetime(2026, 12, 15, 12, tzinfo=TZ)
    expected = {
        "2026-11": ("Marraskuu 2026", "November 2026", "November 2026"),
        "2026-W47": (
            "Viikko 47/2026 (16.–22.11.)",
            "Vecka 47/2026 (16.–22.11.)",
            "Week 47 of 2026 (16–22 Nov)",
        ),
        "2026-W49": (
            "Viikko 49/2026 (30.11.–6.12.)",
            "Vecka 49/2026 (30.11.–6.12.)",
            "Week 49 of 2026 (30 Nov – 6 Dec)",
        ),
        "2026-11-23": ("Ma 23.11.2026", "Mån 23.11.2026", "Mon 23 Nov 2026"),
        "2026": ("2026", "2026", "2026"),
    }
    for text, labels in expected.items():
        period = parse_period(text, SITE, now)
        got = tuple(reportpage.period_label(period, lang) for lang in ("fi", "sv", "en"))
        assert got == labels, text
    at = dt.datetime(2026, 11, 3, 9, 5, tzinfo=TZ)
    assert [reportpage.when_in(at, lang) for lang in ("fi", "sv", "en")] == [
        "3.11.2026 klo 09.05",
        "3.11.2026 kl. 09.05",
        "2026-11-03 09:05",
    ]
    assert [i18n_reports.pct_text(-3.44, lang) for lang in ("fi", "sv", "en")] == [
        "\u22123,4 %",
        "\u22123,4 %",
        "-3.4 %",
    ]
    assert i18n_reports.pct_text(12.0, "fi") == "+12,0 %"
    # the errors of the page, every reason, in Finnish; the API's English stays as it was
    for text, fi in [
        ("soon", f"Ajanjaksoa ”soon” ei tunnisteta. Kelpaavat muodot: {ACCEPTED_IN['fi']}"),
        ("2026-13", "Virheellinen ajanjakso ”2026-13”: kuukauden on oltava 01–12."),
        ("1999", "Virheellinen ajanjakso ”1999”: vuoden on oltava 2000–2261."),
        ("2026-W54", "Virheellinen ajanjakso ”2026-W54”: ISO-vuodessa 2026 on viikot 01–53."),
        ("", f"Valitse ajanjakso: {ACCEPTED_IN['fi']}"),
    ]:
        with pytest.raises(reports.BadReportRequest) as caught:
            reports.choose_period(text, SITE, now)
        assert reportpage.error_text(caught.value, "fi").startswith(fi), text
        assert reportpage.error_text(caught.value, "en") == str(caught.value), text
    with pytest.raises(reports.BadReportRequest) as caught:
        reports.choose_zones(["nope"], SITE)
    assert reportpage.error_text(caught.value, "sv") == (
        "Okänd enhet ”nope” (enheter: centre, library, kela, youth)"
    )


# -- the pages ----------------------------------------------------------------------------


def test_reports_page_and_printable_page_in_each_language(
    browser: Browser, served: tuple[str, Truth]
) -> None:
    url, truth = served
    library = truth.month("library")
    year_before = truth.visits("library", NOVEMBER_2025)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-GB")
    try:
        page = context.new_page()
        for lang, t in PAGE_TEXTS.items():
            page.goto(f"{url}{PAGE}?period=2026-11&lang={lang}")
            expect(page.locator("html")).to_have_attribute("lang", lang)
            expect(page.locator("h1")).to_have_text(str(t["h1"]))
            expect(page.locator("#zones thead th")).to_have_text(t["heads"])  # type: ignore[arg-type]
            expect(page.locator("#period-label")).to_have_text(str(t["label"]))
            expect(page.locator("#days tr[data-date='2026-11-02'] td").first).to_have_text(
                str(t["monday"])
            )
            expect(
                page.locator("#days tr[data-date='2026-11-12'] td[data-zone=kela]")
            ).to_have_text(str(t["no_data"]))
            expect(page.locator("#zones tr[data-zone=library] .visits")).to_have_text(f"{library}*")
            expect(page.locator("#zones tr[data-zone=library] td.change").nth(1)).to_have_text(
                change_text(library, year_before, lang)
            )
            expect(page.locator(".quick a")).to_have_text(t["quick"])  # type: ignore[arg-type]
            expect(page.locator("#hint")).to_have_text(str(t["hint"]))
            expect(page.locator(".toplink")).to_have_text(str(t["board"]))
            expect(page.locator("#picker button[type=submit]")).to_have_text(str(t["show"]))
            expect(page.locator("#download-html")).to_have_text(str(t["printable"]))
            # the printable page in the same language
            href = page.locator("#download-html").get_attribute("href")
            assert href is not None and f"lang={lang}" in href
            printable = page.request.get(url + href).text()
            assert html_lang(printable) == lang
            assert h1(printable) == t["print_h1"]
            assert f'<td class="est">{library}*</td>' in printable
            # an invalid period: the page says so in the language
            page.goto(f"{url}{PAGE}?period=2026-02-30&lang={lang}")
            expect(page.locator("#report-error")).to_have_text(str(t["error"]))
        # the switcher keeps the period and the zone, and its choice stays (the cookie)
        page.goto(f"{url}{PAGE}?period=2026-11&zone=kela&lang=en")
        page.locator(".langs a[data-lang=sv]").click()
        expect(page.locator("h1")).to_have_text("Rapporter · Test Service Centre")
        expect(page.locator("#report")).to_have_attribute("data-period", "2026-11")
        expect(page.locator("#zones tbody tr")).to_have_count(1)
        expect(page.locator(".langs a[aria-current]")).to_have_text("Svenska")
        page.goto(f"{url}{PAGE}?period=2026-11")
        expect(page.locator("html")).to_have_attribute("lang", "sv")
        expect(page.locator("#days tr[data-date='2026-11-12'] td[data-zone=kela]")).to_have_text(
            "inga uppgifter"
        )
        page.goto(f"{url}/login")
        expect(page.locator("button[type=submit]")).to_have_text("Logga in")
    finally:
        context.close()


def test_downloads_keep_their_column_headers_in_every_language(served: tuple[str, Truth]) -> None:
    url, truth = served
    with httpx.Client(base_url=url, timeout=30) as http:
        for lang in i18n.LANGS:
            headers = {"Cookie": f"{LANG_COOKIE}={lang}", "Accept-Language": lang}
            r = http.get(API, params={"period": "2026-11", "format": "csv"}, headers=headers)
            assert r.status_code == 200
            assert next(csv.reader(io.StringIO(r.text))) == list(CSV_COLUMNS), lang
            r = http.get(API, params={"period": "2026-11", "format": "xlsx"}, headers=headers)
            sheet = load_workbook(io.BytesIO(r.content)).worksheets[0]
            rows = list(sheet.iter_rows(values_only=True))
            header = next(row for row in rows if "Visits" in row)
            col = header.index("Visits")
            assert {row[0]: row[col] for row in rows if row and row[0] == "kela"} == {
                "kela": truth.month("kela")
            }
            # the JSON API's errors stay English
            bad = http.get(API, params={"period": "2026-02-30"}, headers=headers)
            assert bad.status_code == 400
            assert "February 2026 has days 1 to 28" in bad.json()["detail"]


def test_lang_beats_the_cookie_which_beats_accept_language(served: tuple[str, Truth]) -> None:
    url, _ = served
    cases = [
        ({}, {}, "fi"),  # nothing said: Finnish
        ({}, {"Accept-Language": "de-DE,sv-FI;q=0.8,en;q=0.5"}, "sv"),
        ({}, {"Accept-Language": "en-GB", "Cookie": f"{LANG_COOKIE}=sv"}, "sv"),
        ({"lang": "en"}, {"Accept-Language": "fi", "Cookie": f"{LANG_COOKIE}=sv"}, "en"),
        ({"lang": "xx"}, {"Accept-Language": "fi", "Cookie": f"{LANG_COOKIE}=sv"}, "sv"),
    ]
    heading = {"fi": "Raportit", "sv": "Rapporter", "en": "Reports"}
    login = {lang: texts[0] for lang, texts in LOGIN_TEXTS.items()}
    with httpx.Client(base_url=url, timeout=30) as http:
        for params, headers, lang in cases:
            page = http.get(PAGE, params={"period": "2026-11", **params}, headers=headers)
            assert page.status_code == 200
            assert html_lang(page.text) == lang, (params, headers)
            assert h1(page.text) == f"{heading[lang]} · Test Service Centre"
            form = http.get("/login", params=params, headers=headers)
            assert html_lang(form.text) == lang, (params, headers)
            assert f"<title>{login[lang]} · footfall</title>" in form.text
            printable = http.get(
                API, params={"period": "2026-11", "format": "html", **params}, headers=headers
            )
            assert html_lang(printable.text) == lang, (params, headers)
            http.cookies.clear()
        # ?lang= is remembered in the switcher's cookie
        picked = http.get(PAGE, params={"period": "2026-11", "lang": "SV"})
        assert picked.cookies.get(LANG_COOKIE) == "sv"
        assert html_lang(http.get("/login").text) == "sv"


def test_login_page_and_its_wrong_password_message_per_language(
    mosquitto: Mosquitto, influx: Influx
) -> None:
    settings = web_settings(
        mosquitto.port,
        influx.url,
        http={"host": "0.0.0.0"},
        auth={"users": {"anna": hash_password(PASSWORD, n=2**12)}},
    )
    with web_server(settings, [SITE]) as server:
        for lang, (title, user, password, button, wrong) in LOGIN_TEXTS.items():
            with httpx.Client(base_url=server.url, timeout=30) as http:
                form = http.get("/login", params={"lang": lang, "next": "/reports/test-site"})
                assert form.status_code == 200 and html_lang(form.text) == lang
                body = form.text
                assert f"<title>{title} · footfall</title>" in body
                assert f"<label>{user} <input" in body and f"<label>{password} <input" in body
                assert f'<button type="submit">{button}</button>' in body
                assert 'name="next" value="/reports/test-site"' in body
                assert wrong not in body
                # a wrong password: back to the form, which says so in the chosen language
                answer = http.post(
                    "/login",
                    data={"user": "anna", "password": "nope", "next": "/reports/test-site"},
                )
                assert answer.status_code == 303
                again = http.get(answer.headers["location"])
                assert html_lang(again.text) == lang
                assert f'<p class="error" role="alert" id="login-error">{wrong}</p>' in again.text
                # the right one leads to the reports page, in the same language
                ok = http.post(
                    "/login",
                    data={"user": "anna", "password": PASSWORD, "next": "/reports/test-site"},
                )
                assert ok.status_code == 303 and ok.headers["location"] == "/reports/test-site"


def test_printable_page_in_finnish_word_for_word(served: tuple[str, Truth]) -> None:
    """The printable page's words for the known month; its figures are footfall_report's,
    as in English (tests/web/test_web_reports.py)."""
    url, truth = served
    with httpx.Client(base_url=url, timeout=30) as http:
        body = http.get(API, params={"period": "2026-11", "format": "html", "lang": "fi"}).text
    for text in (
        "<h2>Käynnit yksiköittäin</h2>",
        "<h2>Käynnit päivittäin</h2>",
        "<h2>Ovet (yksittäiset läpikulut)</h2>",
        "<h2>Tuntiprofiili: Service Centre (käyntejä tunnissa keskimäärin)</h2>",
        '<th class="l">Yksikkö</th><th>Käynnit</th><th>Poistumiset</th><th>Huippu</th>',
        '<tr data-date="2026-11-02"><td class="l">ma 2.11.</td>',
        '<td class="nodata">ei tietoa</td>',
        "<b>Library</b>: arvioitu (1 h)",
        "<b>Kela</b>: 2 päivää ilman tietoja",
        '<td class="between">ulkoa → Library</td>',
    ):
        assert text in body, text
    meta = "Marraskuu 2026 (1.11.2026 – 30.11.2026, Europe/Helsinki). Luotu 15.12.2026 klo 12."
    assert meta in body
    assert (
        f'<tr data-zone="kela"><td class="l" style="padding-left:1.65em">Kela</td>'
        f"<td>{truth.month('kela')}</td>"
    ) in body
    monday = sum(hourly("library", NOVEMBER[1]).values())
    assert f"<td>{monday}</td>" in body
