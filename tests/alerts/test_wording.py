"""The alert texts' tables: every language has every text with the same placeholders,
the rules file's `language:` is checked like its other fields, and times and the
notification texts take each language's form."""

from __future__ import annotations

import datetime as dt
import string
from zoneinfo import ZoneInfo

import pytest

from footfall_alerts.kinds import KINDS
from footfall_alerts.localtime import local_span, local_time
from footfall_alerts.receivers import text
from footfall_alerts.rules import RulesError, RulesFile, parse_rules
from footfall_alerts.wording import LANGS, TEXTS
from tests.alerts.test_receivers import NOTIFICATION
from tests.support.collector import small_site


def fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def test_every_language_has_every_text_with_the_same_placeholders() -> None:
    english = TEXTS["en"]
    for lang in LANGS:
        assert set(TEXTS[lang]) == set(english), lang
        for key, template in TEXTS[lang].items():
            assert fields(template) == fields(english[key]), (lang, key)
            assert template.strip() == template and template, (lang, key)
        assert len(TEXTS[lang]["weekdays"].split(" ")) == 7, lang
        assert len(TEXTS[lang]["months"].split(" ")) == 12, lang
    for kind in KINDS:  # a new kind needs its words in every language
        assert f"summary.{kind}" in english and f"kind.{kind}" in english
        assert english[f"kind.{kind}"] == kind.replace("_", " ")  # as before languages


def test_language_defaults_to_english_and_an_unknown_one_is_refused_at_its_line() -> None:
    site = small_site()
    assert RulesFile().language == "en"
    assert parse_rules("group_wait: 5s\n", site, "rules.yaml").language == "en"
    assert parse_rules("language: sv\n", site, "rules.yaml").language == "sv"
    for bad in ("de", "FI", "fi-FI", "[fi]"):
        with pytest.raises(RulesError) as caught:
            parse_rules(f"site: test-site\ngroup_wait: 5s\nlanguage: {bad}\n", site, "rules.yaml")
        assert str(caught.value) == "rules.yaml:3: language: Input should be 'fi', 'sv' or 'en'"


def test_local_times_in_each_languages_form() -> None:
    helsinki = ZoneInfo("Europe/Helsinki")
    # Tuesday 1 December 2026, 00:18 in Helsinki; 12 minutes later; the next evening.
    start = int(dt.datetime(2026, 12, 1, 0, 18, tzinfo=helsinki).timestamp() * 1000)
    later, next_day = start + 12 * 60_000, start + (24 + 20) * 3_600_000
    zone = "Europe/Helsinki"
    assert local_time(start, zone) == "Tue 1 Dec 2026 00:18 (Europe/Helsinki)"
    assert local_time(start, zone, "fi") == "ti 1.12.2026 klo 0.18 (Europe/Helsinki)"
    assert local_time(start, zone, "sv") == "tis 1.12.2026 kl. 00.18 (Europe/Helsinki)"
    assert local_span(start, later, zone, "fi") == "ti 1.12.2026 klo 0.18–0.30 (Europe/Helsinki)"
    assert local_span(start, next_day, zone, "sv") == (
        "tis 1.12.2026 kl. 00.18 – ons 2.12.2026 kl. 20.18 (Europe/Helsinki)"
    )
    # no time zone known (an old outbox entry): UTC, still in the language
    assert local_time(start, None, "fi") == "ma 30.11.2026 klo 22.18 (UTC)"


def test_notification_texts_in_swedish_and_finnish() -> None:
    sv = {**NOTIFICATION, "language": "sv", "timezone": "Europe/Helsinki"}
    # two alerts of one kind: counted, the kind in words; 2026-11-24 is a Tuesday
    assert text.subject(sv) == "[test-site] LARM: 2 × sensor utan förbindelse (pi-offline)"
    assert text.lines(sv)[0] == (
        "- [varning] Sensor pi-1 offline — sedan tis 24.11.2026 kl. 10.00 (Europe/Helsinki)"
    )
    assert text.body(sv).splitlines()[-2:] == [
        f"Instrumentpanel: {NOTIFICATION['link']}",
        "Kvittera (upprepningarna upphör) eller tysta larmet via footfall-alerts API; "
        "ett meddelande följer när det är åtgärdat.",
    ]
    first = NOTIFICATION["alerts"][0]
    resolved = {
        **first,
        "state": "resolved",
        "severity": "critical",
        "ts": "2026-11-24T09:05:10.000Z",  # 1 h 5 min 10 s after 08:00Z
        "acknowledged_by": "maija",
    }
    fi = {**sv, "language": "fi", "event": "resolved", "alerts": [resolved, first]}
    assert text.subject(fi) == "[test-site] PÄÄTTYNYT: 2 × anturi ei yhteydessä (pi-offline)"
    assert text.lines(fi)[0] == (
        "- [kriittinen] Sensor pi-1 offline — kesti 1 h 5 min, "
        "ti 24.11.2026 klo 10.00–11.05 (Europe/Helsinki); kuitannut maija"
    )
    mixed = {**fi, "alerts": [first, {**first, "kind": "beam_blocked"}]}
    assert text.subject(mixed) == "[test-site] PÄÄTTYNYT: 2 × hälytys (pi-offline)"
    # an entry without a language (written before there were any): English as before
    assert text.subject(NOTIFICATION) == "[test-site] FIRING: 2 × agent offline (pi-offline)"
    assert text.subject({**NOTIFICATION, "language": "de"}).startswith("[test-site] FIRING")
