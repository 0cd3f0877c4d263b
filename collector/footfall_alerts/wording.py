"""Every human text footfall-alerts writes, in Finnish, Swedish and English: the generated
alert summaries, the notification texts (e-mail, Slack, Teams, the webhook's `title`) and
the words and forms of local times. A site's rules file chooses one (`language:`,
English by default); machine-readable parts (field names, kinds, ids, RFC 3339 times,
headers) are not texts and stay as they are.

One dict per language with the same keys and the same {placeholders} (a test holds them
to it); `weekdays` and `months` are space-separated lists, Monday and January first.
"""

from __future__ import annotations

from typing import Final

from footfall_contract.site import NAME_LANGS
from footfall_contract.site import Lang as Lang  # the contract's, re-exported

LANGS: Final = NAME_LANGS
"""The languages a site file names its zones in (the contract's), each one spoken here."""
DEFAULT: Final[Lang] = "en"
"""English: what a rules file without `language:` gets (and an outbox entry written
before notifications carried their language)."""

EN: Final[dict[str, str]] = {
    # summaries, one per kind (and the two ways pipeline_silent says since when)
    "summary.over_capacity": "{zone} over capacity: {count} of {capacity} people ({pct}%)",
    "summary.agent_offline": "Sensor {agent} offline",
    "summary.agent_backlog": "Sensor {agent}: {count} events waiting to be sent",
    "summary.beam_blocked": "Beam {source} blocked (sensor {agent})",
    "summary.beam_flapping": "Beam {source} flapping: blocked {count} times within {minutes} min",
    "summary.drift_after_close": "{zone}: {count} people still counted after closing (count drift)",
    "summary.drift_clamped": (
        "{zone}: {count} exits found the count already at 0 since the reset "
        "(a sensor may miss people)"
    ),
    "summary.too_many_alerts": (
        "Too many alerts from sensor {agent}: {max} open (max_alerts_per_agent), "
        "{count} more not raised"
    ),
    "summary.pipeline_silent": (
        "No zone occupancy from the collector {when}: the live board, the public displays "
        "and the zone alerts are not being updated (is footfall-collector running and "
        "connected to MQTT?)"
    ),
    "pipeline.since": "since {time}",
    "pipeline.since_start": "since footfall-alerts started at {time}",
    # kinds in words: the subject of a message about several alerts of one kind
    "kind.over_capacity": "over capacity",
    "kind.agent_offline": "agent offline",
    "kind.agent_backlog": "agent backlog",
    "kind.beam_blocked": "beam blocked",
    "kind.beam_flapping": "beam flapping",
    "kind.drift_after_close": "drift after close",
    "kind.drift_clamped": "drift clamped",
    "kind.too_many_alerts": "too many alerts",
    "kind.pipeline_silent": "pipeline silent",
    "subject.alerts": "alerts",
    # notifications
    "event.firing": "FIRING",
    "event.resolved": "RESOLVED",
    "event.repeat": "STILL FIRING",
    "severity.info": "info",
    "severity.warning": "warning",
    "severity.critical": "critical",
    "line.since": "since {time}",
    "line.lasted": "lasted {duration}, {span}",
    "line.acknowledged": "; acknowledged by {who}",
    "body.rule": "Rule: {rule}. Alert ids: {ids}",
    "body.acknowledge": (
        "Acknowledge (stops the repeats) or silence it {where}; "
        "a message follows when it is resolved."
    ),
    "body.on_board": "on the live board",
    "body.through_api": "through the footfall-alerts API",
    "link.board": "Live board",
    "link.dashboard": "Dashboard",
    "duration.hours": "{hours} h {minutes} min",
    "duration.minutes": "{minutes} min {seconds} s",
    # local times
    "weekdays": "Mon Tue Wed Thu Fri Sat Sun",
    "months": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
    "time.date": "{weekday} {day} {month} {year}",
    "time.clock": "{hour:02d}:{minute:02d}",
    "time.moment": "{date} {clock}",
    "time.span": "{date} {start}–{end}",
}

FI: Final[dict[str, str]] = {
    "summary.over_capacity": (
        "{zone} yli kapasiteetin: {count} henkilöä, kapasiteetti {capacity} ({pct} %)"
    ),
    "summary.agent_offline": "Anturi {agent} ei ole yhteydessä",
    "summary.agent_backlog": "Anturi {agent}: {count} tapahtumaa odottaa lähetystä",
    "summary.beam_blocked": "Valokenno {source} on peitossa (anturi {agent})",
    "summary.beam_flapping": (
        "Valokenno {source} vilkkuu: peittyi {count} kertaa {minutes} minuutin sisällä"
    ),
    "summary.drift_after_close": (
        "{zone}: {count} henkilöä yhä laskettuna sulkemisen jälkeen (laskenta on ajautunut)"
    ),
    "summary.drift_clamped": (
        "{zone}: {count} poistumista nollauksen jälkeen, kun laskuri oli jo 0 "
        "(anturi voi jättää kävijöitä laskematta)"
    ),
    "summary.too_many_alerts": (
        "Liikaa hälytyksiä anturilta {agent}: {max} avoinna (max_alerts_per_agent), "
        "{count} muuta jäi nostamatta"
    ),
    "summary.pipeline_silent": (
        "Kerääjältä ei ole tullut alueiden kävijämääriä {when}: kävijätilanne, julkiset "
        "näytöt ja alueiden hälytykset eivät päivity (onko footfall-collector käynnissä ja "
        "yhteydessä MQTT:hen?)"
    ),
    "pipeline.since": "{time} alkaen",
    "pipeline.since_start": "sen jälkeen, kun footfall-alerts käynnistyi {time}",
    "kind.over_capacity": "yli kapasiteetin",
    "kind.agent_offline": "anturi ei yhteydessä",
    "kind.agent_backlog": "anturin lähetysjono",
    "kind.beam_blocked": "valokenno peitossa",
    "kind.beam_flapping": "valokenno vilkkuu",
    "kind.drift_after_close": "laskettuja sulkemisen jälkeen",
    "kind.drift_clamped": "poistumisia nollasta",
    "kind.too_many_alerts": "liikaa hälytyksiä",
    "kind.pipeline_silent": "kerääjä vaiti",
    "subject.alerts": "hälytys",
    "event.firing": "HÄLYTYS",
    "event.resolved": "PÄÄTTYNYT",
    "event.repeat": "HÄLYTYS JATKUU",
    "severity.info": "tiedote",
    "severity.warning": "varoitus",
    "severity.critical": "kriittinen",
    "line.since": "{time} alkaen",
    "line.lasted": "kesti {duration}, {span}",
    "line.acknowledged": "; kuitannut {who}",
    "body.rule": "Sääntö: {rule}. Hälytysten tunnisteet: {ids}",
    "body.acknowledge": (
        "Kuittaa (toistot loppuvat) tai vaienna {where}; viesti tulee, kun hälytys päättyy."
    ),
    "body.on_board": "kävijätilanteessa",
    "body.through_api": "footfall-alertsin rajapinnan kautta",
    "link.board": "Kävijätilanne",
    "link.dashboard": "Kojelauta",
    "duration.hours": "{hours} h {minutes} min",
    "duration.minutes": "{minutes} min {seconds} s",
    "weekdays": "ma ti ke to pe la su",
    "months": "1 2 3 4 5 6 7 8 9 10 11 12",
    "time.date": "{weekday} {day}.{month}.{year}",
    "time.clock": "{hour}.{minute:02d}",
    "time.moment": "{date} klo {clock}",
    "time.span": "{date} klo {start}–{end}",
}

SV: Final[dict[str, str]] = {
    "summary.over_capacity": (
        "{zone} över kapaciteten: {count} personer, kapacitet {capacity} ({pct} %)"
    ),
    "summary.agent_offline": "Sensorn {agent} har ingen förbindelse",
    "summary.agent_backlog": "Sensorn {agent}: {count} händelser väntar på att skickas",
    "summary.beam_blocked": "Fotocellen {source} är blockerad (sensor {agent})",
    "summary.beam_flapping": (
        "Fotocellen {source} fladdrar: blockerad {count} gånger inom {minutes} min"
    ),
    "summary.drift_after_close": (
        "{zone}: {count} personer räknas fortfarande efter stängning (räkningen har glidit)"
    ),
    "summary.drift_clamped": (
        "{zone}: {count} utgångar sedan nollställningen när räknaren redan var 0 "
        "(en sensor kan missa besökare)"
    ),
    "summary.too_many_alerts": (
        "För många larm från sensorn {agent}: {max} öppna (max_alerts_per_agent), "
        "{count} till har inte utlösts"
    ),
    "summary.pipeline_silent": (
        "Ingen beläggning från insamlaren {when}: besökarläget, de offentliga skärmarna "
        "och zonlarmen uppdateras inte (är footfall-collector igång och ansluten till MQTT?)"
    ),
    "pipeline.since": "sedan {time}",
    "pipeline.since_start": "sedan footfall-alerts startade {time}",
    "kind.over_capacity": "över kapaciteten",
    "kind.agent_offline": "sensor utan förbindelse",
    "kind.agent_backlog": "sensorns sändkö",
    "kind.beam_blocked": "fotocell blockerad",
    "kind.beam_flapping": "fotocell fladdrar",
    "kind.drift_after_close": "räknade efter stängning",
    "kind.drift_clamped": "utgångar vid noll",
    "kind.too_many_alerts": "för många larm",
    "kind.pipeline_silent": "insamlaren tyst",
    "subject.alerts": "larm",
    "event.firing": "LARM",
    "event.resolved": "ÅTGÄRDAT",
    "event.repeat": "LARMET KVARSTÅR",
    "severity.info": "info",
    "severity.warning": "varning",
    "severity.critical": "kritisk",
    "line.since": "sedan {time}",
    "line.lasted": "varade {duration}, {span}",
    "line.acknowledged": "; kvitterat av {who}",
    "body.rule": "Regel: {rule}. Larmens id: {ids}",
    "body.acknowledge": (
        "Kvittera (upprepningarna upphör) eller tysta larmet {where}; "
        "ett meddelande följer när det är åtgärdat."
    ),
    "body.on_board": "i besökarläget",
    "body.through_api": "via footfall-alerts API",
    "link.board": "Besökarläget",
    "link.dashboard": "Instrumentpanel",
    "duration.hours": "{hours} h {minutes} min",
    "duration.minutes": "{minutes} min {seconds} s",
    "weekdays": "mån tis ons tors fre lör sön",
    "months": "1 2 3 4 5 6 7 8 9 10 11 12",
    "time.date": "{weekday} {day}.{month}.{year}",
    "time.clock": "{hour:02d}.{minute:02d}",
    "time.moment": "{date} kl. {clock}",
    "time.span": "{date} kl. {start}–{end}",
}

TEXTS: Final[dict[Lang, dict[str, str]]] = {"fi": FI, "sv": SV, "en": EN}


def lang_of(value: object) -> Lang:
    """A notification's `language`, English when missing or unknown (an outbox entry
    written before notifications carried it)."""
    return next((lang for lang in LANGS if lang == value), DEFAULT)


def say(lang: Lang, key: str, **fields: object) -> str:
    """The text `key` in `lang` with its {placeholders} filled in."""
    return TEXTS[lang][key].format(**fields)


def words(lang: Lang, key: str) -> list[str]:
    """A list text (`weekdays`, `months`) as its words."""
    return TEXTS[lang][key].split(" ")


def number(lang: Lang, value: float) -> str:
    """`{value:g}` with the language's decimal sign (2.5 min is "2,5 min" in Finnish)."""
    text = f"{value:g}"
    return text if lang == "en" else text.replace(".", ",")
