"""Site model (docs/spec.md §3): the example loads, its helpers answer correctly, and every kind
of bad file is reported with the exact file, line and reason."""

from __future__ import annotations

import datetime as dt
import pickle
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from footfall_contract.site import Door, Site, SiteError, Zone, load_site, parse_site

EXAMPLE = """\
site: iso-omena                 # [a-z0-9-]+, used in topics and tags
name: Iso Omena Service Centre
timezone: Europe/Helsinki
reset_at: "03:00"               # local time when every zone's count returns to 0
opening_hours: {mon-fri: "08:00-20:00", sat: "10:00-16:00"}
zones:
  - {id: centre, name: Service Centre, capacity: 600}
  - {id: library, name: Library, parent: centre, capacity: 250}
doors:
  - {id: centre-main, outside: null, inside: centre}
  - {id: library-main, outside: centre, inside: library}
  - {id: library-mall, outside: null, inside: library}
presence:
  - {id: study-room-2, zone: library}
"""

HEAD = """\
site: s
name: S
timezone: Europe/Helsinki
"""
"""Three lines, so the snippets below start on line 4."""

HELSINKI = ZoneInfo("Europe/Helsinki")
UTC = dt.UTC


@pytest.fixture
def site() -> Site:
    return parse_site(EXAMPLE, "iso-omena.yaml")


def error_of(text: str) -> str:
    with pytest.raises(SiteError) as info:
        parse_site(text, "site.yaml")
    error = info.value
    where = "site.yaml" if error.line is None else f"site.yaml:{error.line}"
    assert (error.file, str(error)) == ("site.yaml", f"{where}: {error.reason}")
    return str(info.value)


# --- the docs/spec.md example ---------------------------------------------------------


def test_example_loads(site: Site) -> None:
    assert site.site == "iso-omena"
    assert site.name == "Iso Omena Service Centre"
    assert site.tz == HELSINKI
    assert site.reset_time() == dt.time(3, 0)
    assert [z.id for z in site.zones] == ["centre", "library"]
    assert site.zone("library") == Zone(id="library", name="Library", parent="centre", capacity=250)
    assert site.door("library-mall") == Door(id="library-mall", outside=None, inside="library")
    assert site.sensor("study-room-2").zone == "library"


def test_lineage_and_contains(site: Site) -> None:
    assert site.lineage("library") == ["library", "centre"]
    assert site.lineage("centre") == ["centre"]
    assert site.contains("centre", "library")
    assert site.contains("library", "library")
    assert not site.contains("library", "centre")
    assert not site.contains("centre", None)


def test_door_rule_facts(site: Site) -> None:
    """docs/spec.md §3: `in` adds one to every zone containing inside but not outside."""

    def gains(door_id: str) -> set[str]:
        door = site.door(door_id)
        return {
            z.id
            for z in site.zones
            if site.contains(z.id, door.inside) and not site.contains(z.id, door.outside)
        }

    assert gains("library-mall") == {"library", "centre"}
    assert gains("library-main") == {"library"}
    assert gains("centre-main") == {"centre"}


def test_unknown_ids_raise_key_error(site: Site) -> None:
    with pytest.raises(KeyError, match="unknown zone 'libary' in site 'iso-omena'"):
        site.zone("libary")
    with pytest.raises(KeyError, match="unknown door 'back'"):
        site.door("back")
    with pytest.raises(KeyError, match="unknown presence sensor 'x'"):
        site.sensor("x")
    with pytest.raises(KeyError, match="unknown zone 'nope'"):
        site.lineage("nope")
    with pytest.raises(KeyError, match="unknown zone 'nope'"):
        site.contains("nope", "library")


def test_name_defaults_to_id() -> None:
    site = parse_site(HEAD + "zones: [{id: lobby}]\n")
    assert site.zone("lobby").name == "lobby"
    assert site.reset_at == "03:00"
    assert site.doors == [] and site.presence == []


def test_hours_on_site_and_zone_override() -> None:
    site = parse_site(
        EXAMPLE.replace(
            "parent: centre, capacity: 250}",
            'parent: centre, capacity: 250, opening_hours: {sat: closed, sun: "12:00-16:00"}}\n'
            "  - {id: study, parent: library}",
        )
    )
    monday, saturday, sunday = dt.date(2026, 11, 23), dt.date(2026, 11, 28), dt.date(2026, 11, 29)
    assert site.hours_on(monday) == (dt.time(8), dt.time(20))
    assert site.hours_on(saturday) == (dt.time(10), dt.time(16))
    assert site.hours_on(sunday) is None  # not listed: closed
    # the library's own entries win; its other days fall back to the site's
    assert site.hours_on(saturday, "library") is None
    assert site.hours_on(sunday, "library") == (dt.time(12), dt.time(16))
    assert site.hours_on(monday, "library") == (dt.time(8), dt.time(20))
    # a zone without hours follows its nearest ancestor that has them
    assert site.hours_on(sunday, "study") == (dt.time(12), dt.time(16))
    assert site.hours_on(saturday, "centre") == (dt.time(10), dt.time(16))


def test_is_open_uses_site_wall_clock_across_dst(site: Site) -> None:
    # Helsinki is UTC+3 in summer and UTC+2 after 2026-10-25 04:00 local.
    assert site.is_open(dt.datetime(2026, 6, 1, 5, 0, tzinfo=UTC))  # Mon 08:00 EEST
    assert not site.is_open(dt.datetime(2026, 6, 1, 4, 59, tzinfo=UTC))  # 07:59
    assert not site.is_open(dt.datetime(2026, 6, 1, 17, 0, tzinfo=UTC))  # 20:00, closed
    assert site.is_open(dt.datetime(2026, 10, 24, 7, 30, tzinfo=UTC))  # Sat 10:30 EEST
    assert not site.is_open(dt.datetime(2026, 10, 31, 7, 30, tzinfo=UTC))  # Sat 09:30 EET
    assert site.is_open(dt.datetime(2026, 10, 31, 8, 0, tzinfo=UTC))  # Sat 10:00 EET
    # a Friday 23:30 UTC is already Saturday 01:30 in Helsinki: closed
    assert not site.is_open(dt.datetime(2026, 11, 27, 23, 30, tzinfo=UTC))
    assert site.is_open(dt.datetime(2026, 11, 23, 12, 0, tzinfo=HELSINKI))
    with pytest.raises(ValueError, match="timezone-aware"):
        site.is_open(dt.datetime(2026, 11, 23, 12, 0))


def test_is_open_zone_override(site: Site) -> None:
    site = parse_site(
        EXAMPLE.replace(
            "capacity: 250}", 'capacity: 250, opening_hours: {"mon,wed": "10:00-18:00"}}'
        )
    )
    monday_9 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=HELSINKI)
    assert site.is_open(monday_9)
    assert site.is_open(monday_9, "centre")
    assert not site.is_open(monday_9, "library")
    assert site.is_open(monday_9 + dt.timedelta(days=1), "library")  # tue: the site's hours


def test_no_opening_hours_means_always_open_and_24_00() -> None:
    site = parse_site(HEAD + "zones: [{id: a}]\n")
    assert site.hours_on(dt.date(2026, 11, 29)) == (dt.time(0), dt.time.max)
    assert site.is_open(dt.datetime(2026, 11, 29, 23, 59, 59, 999999, tzinfo=HELSINKI))
    site = parse_site(HEAD + 'opening_hours: {fri-mon: "00:00-24:00"}\nzones: [{id: a}]\n')
    assert site.is_open(dt.datetime(2026, 11, 29, 0, 0, tzinfo=HELSINKI))  # sun, in fri-mon
    assert site.is_open(dt.datetime(2026, 11, 29, 23, 59, tzinfo=HELSINKI))
    assert not site.is_open(dt.datetime(2026, 11, 24, 12, 0, tzinfo=HELSINKI))  # tue


def test_models_are_frozen(site: Site) -> None:
    with pytest.raises(ValidationError):
        site.name = "x"  # type: ignore[misc]


def test_cross_references_checked_when_built_in_python_too() -> None:
    with pytest.raises(ValidationError, match="parent zone 'x' does not exist"):
        Site(
            site="s",
            name="S",
            timezone="UTC",
            zones=[Zone(id="a", name="A", parent="x")],
        )


def test_module_imports_without_pyyaml() -> None:
    code = (
        "import sys; sys.modules['yaml'] = None\n"
        "import footfall_contract.site as s\n"
        "try:\n    s.parse_site('a: 1')\n"
        "except ModuleNotFoundError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "needs PyYAML" in out.stdout


# --- load_site ------------------------------------------------------------------------


def test_load_site_from_file(tmp_path: Path) -> None:
    path = tmp_path / "iso-omena.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    assert load_site(path).site == "iso-omena"
    assert load_site(str(path)).site == "iso-omena"


def test_load_site_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(SiteError) as info:
        load_site(path)
    assert str(info.value) == f"{path}: no such site file"
    assert info.value.line is None
    assert info.value.file == str(path)


def test_load_site_unreadable(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="cannot read the site file"):
        load_site(tmp_path)


def test_load_site_reports_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(EXAMPLE.replace("capacity: 250", "capacity: 0").encode())
    with pytest.raises(SiteError) as info:
        load_site(path)
    assert str(info.value) == f"{path}:8: zones[1].capacity: Input should be greater than 0"


def test_load_site_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(HEAD.encode() + "zones: [{id: a, name: Kirjasto Ä}]\n".encode("latin-1"))
    with pytest.raises(SiteError) as info:
        load_site(path)
    assert str(info.value) == f"{path}:4: the site file is not UTF-8 text"


def test_site_error_pickles() -> None:
    error = SiteError("f.yaml", 3, "why")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.file, copy.line, copy.reason, str(copy)) == ("f.yaml", 3, "why", "f.yaml:3: why")
    assert str(SiteError("f.yaml", None, "why")) == "f.yaml: why"


# --- one test per error kind ----------------------------------------------------------


def test_yaml_syntax_error() -> None:
    text = HEAD + "zones:\n  - {id: a, name: A\n  - {id: b}\n"
    assert error_of(text) == (
        "site.yaml:6: invalid YAML: expected ',' or '}', but got '{' "
        "(while parsing a flow mapping that starts on line 5)"
    )


def test_tab_indentation_is_a_syntax_error() -> None:
    assert error_of(HEAD + "zones:\n\t- {id: a}\n") == (
        "site.yaml:5: invalid YAML: found character '\\t' that cannot start any token "
        "(while scanning for the next token)"
    )


def test_empty_file() -> None:
    assert error_of("# nothing here\n") == "site.yaml: the site file is empty"


def test_top_level_not_a_mapping() -> None:
    assert error_of("# a list\n- site: s\n") == (
        "site.yaml:2: the top level must be a mapping (site:, name:, timezone:, zones:, ...), "
        "not a list"
    )


def test_duplicate_key() -> None:
    text = HEAD + "zones:\n  - id: a\n    capacity: 10\n    capacity: 20\n"
    assert error_of(text) == "site.yaml:7: duplicate key 'capacity' in zones[0] (first on line 6)"


def test_duplicate_top_level_key() -> None:
    assert error_of(HEAD + "zones: [{id: a}]\nname: T\n") == (
        "site.yaml:5: duplicate key 'name' (first on line 2)"
    )


def test_missing_field() -> None:
    assert (
        error_of("site: s\nname: S\nzones: [{id: a}]\n") == "site.yaml:1: timezone: Field required"
    )


def test_door_outside_is_required() -> None:
    text = HEAD + "zones: [{id: a}]\ndoors:\n  - {id: d, inside: a}\n"
    assert error_of(text) == (
        "site.yaml:6: doors[0].outside: Field required (use null for the street or the mall)"
    )


def test_wrong_type() -> None:
    assert error_of(HEAD + "zones: {id: a}\n") == "site.yaml:4: zones: Input should be a valid list"
    assert error_of(HEAD + "zones: [centre]\n") == (
        "site.yaml:4: zones[0]: Input should be a mapping (key: value)"
    )


def test_extra_field() -> None:
    text = HEAD + "zones:\n  - id: a\n    capcity: 10\n"
    assert error_of(text) == "site.yaml:6: zones[0].capcity: Extra inputs are not permitted"


def test_bad_id_pattern() -> None:
    text = HEAD + "zones:\n  - {id: a}\n  - {id: Lib_1}\n"
    assert error_of(text) == (
        "site.yaml:6: zones[1].id: zone id 'Lib_1' must match [a-z0-9-]+ (lowercase, digits, '-')"
    )


def test_capacity_not_positive() -> None:
    text = HEAD + "zones:\n  - {id: a}\n  - {id: b, capacity: 0}\n"
    assert error_of(text) == "site.yaml:6: zones[1].capacity: Input should be greater than 0"


def test_bad_reset_at() -> None:
    assert error_of(HEAD + 'reset_at: "3am"\nzones: [{id: a}]\n') == (
        "site.yaml:4: reset_at: reset_at must be a time \"HH:MM\" (24 h), not '3am'"
    )


def test_unquoted_time_read_as_number() -> None:
    assert error_of(HEAD + "reset_at: 3:00\nzones: [{id: a}]\n") == (
        'site.yaml:4: reset_at: reset_at must be a quoted string such as "03:00" or "08:00-20:00"'
    )


def test_bad_timezone() -> None:
    text = "site: s\nname: S\ntimezone: Europe/Helsinky\nzones: [{id: a}]\n"
    assert error_of(text) == (
        "site.yaml:3: timezone: unknown time zone 'Europe/Helsinky' "
        "(use an IANA name such as Europe/Helsinki)"
    )


def test_bad_opening_hours_key() -> None:
    text = HEAD + "opening_hours:\n  mon-fri: 08:00-20:00\n  sun-xyz: closed\nzones: [{id: a}]\n"
    assert error_of(text) == (
        "site.yaml:6: opening_hours.sun-xyz: bad day spec 'sun-xyz': use day names "
        "mon, tue, wed, thu, fri, sat, sun, ranges like mon-fri and lists like mon,wed"
    )


def test_bad_opening_hours_value() -> None:
    text = HEAD + "zones:\n  - id: a\n    opening_hours: {sat: 10-16}\n"
    assert error_of(text) == (
        "site.yaml:6: zones[0].opening_hours.sat: "
        'opening hours must be "HH:MM-HH:MM" or "closed", not \'10-16\''
    )


def test_opening_hours_end_before_start() -> None:
    text = HEAD + 'opening_hours: {sat: "16:00-10:00"}\nzones: [{id: a}]\n'
    assert error_of(text) == (
        "site.yaml:4: opening_hours.sat: opening hours '16:00-10:00' end before they start"
    )


def test_opening_hours_day_given_twice() -> None:
    text = (
        HEAD + "zones:\n  - id: a\n    opening_hours:\n      mon-fri: closed\n      wed: closed\n"
    )
    assert error_of(text) == (
        "site.yaml:8: zone 'a': opening_hours: wed is given twice ('mon-fri' and 'wed')"
    )


def test_no_zones() -> None:
    assert error_of(HEAD + "zones: []\n") == "site.yaml:4: zones: a site needs at least one zone"


def test_duplicate_zone_id() -> None:
    text = HEAD + "zones:\n  - {id: a}\n  - {id: b}\n  - {id: a}\n"
    assert error_of(text) == "site.yaml:7: zone 'a' is defined twice (zones[0] and zones[2])"


def test_duplicate_door_id() -> None:
    text = (
        HEAD + "zones: [{id: a}]\ndoors:\n"
        "  - {id: d, outside: null, inside: a}\n  - {id: d, outside: null, inside: a}\n"
    )
    assert error_of(text) == "site.yaml:7: door 'd' is defined twice (doors[0] and doors[1])"


def test_duplicate_presence_sensor_id() -> None:
    text = HEAD + "zones: [{id: a}]\npresence:\n  - {id: p, zone: a}\n  - {id: p, zone: a}\n"
    assert error_of(text) == (
        "site.yaml:7: presence sensor 'p' is defined twice (presence[0] and presence[1])"
    )


def test_unknown_parent() -> None:
    text = HEAD + "zones:\n  - {id: centre}\n  - id: library\n    parent: centr\n"
    assert error_of(text) == "site.yaml:7: zone 'library': parent zone 'centr' does not exist"


def test_parent_cycle() -> None:
    text = HEAD + "zones:\n  - {id: root}\n  - {id: a, parent: b}\n  - {id: b, parent: a}\n"
    assert error_of(text) == "site.yaml:6: zone 'a': parent cycle a -> b -> a"


def test_zone_is_its_own_parent() -> None:
    assert error_of(HEAD + "zones: [{id: a, parent: a}]\n") == (
        "site.yaml:4: zone 'a': parent cycle a -> a"
    )


def test_door_into_unknown_zone() -> None:
    text = EXAMPLE.replace("outside: centre, inside: library", "outside: centre, inside: libary")
    assert (
        error_of(text) == "site.yaml:11: door 'library-main': inside zone 'libary' does not exist"
    )


def test_door_from_unknown_zone() -> None:
    text = HEAD + "zones: [{id: a}]\ndoors:\n  - id: d\n    outside: b\n    inside: a\n"
    assert error_of(text) == "site.yaml:7: door 'd': outside zone 'b' does not exist"


def test_door_outside_equals_inside() -> None:
    text = HEAD + "zones: [{id: a}]\ndoors:\n  - id: d\n    outside: a\n    inside: a\n"
    assert error_of(text) == "site.yaml:7: door 'd': outside and inside are the same zone 'a'"


def test_presence_sensor_in_unknown_zone() -> None:
    text = EXAMPLE.replace("zone: library}", "zone: libary}")
    assert error_of(text) == (
        "site.yaml:14: presence sensor 'study-room-2': zone 'libary' does not exist"
    )


def test_first_problem_in_file_order_is_reported() -> None:
    text = "site: s\nname: S\ntimezone: Nowhere/City\nzones:\n  - {id: Bad}\n"
    assert error_of(text).startswith("site.yaml:3: timezone: unknown time zone 'Nowhere/City'")


def test_equal_sites_compare_equal_after_helpers_ran() -> None:
    first, second = parse_site(EXAMPLE), parse_site(EXAMPLE)
    assert first.lineage("library") == ["library", "centre"]
    assert first == second


def test_two_documents_in_one_file() -> None:
    assert error_of(HEAD + "zones: [{id: a}]\n---\nsite: t\n") == (
        "site.yaml:5: invalid YAML: expected a single document in the stream, "
        "but found another document"
    )


# --- names per language and the public display flag (docs/spec.md §3) ------------------


def test_names_per_language_fall_back_to_name() -> None:
    site = parse_site(
        HEAD.replace("name: S\n", "name: S\nnames: {fi: Palvelutori, sv: Servicetorget}\n")
        + "zones:\n"
        + "  - id: library\n"
        + "    name: Iso Omena Library\n"
        + "    names:\n"
        + "      fi: Iso Omenan kirjasto\n"
        + "      sv: Iso Omena bibliotek\n"
        + "  - {id: kela, names: {sv: FPA}}\n"
    )
    library, kela = site.zone("library"), site.zone("kela")
    assert [library.name_in(lang) for lang in ("fi", "sv", "en", None)] == [
        "Iso Omenan kirjasto",
        "Iso Omena bibliotek",
        "Iso Omena Library",  # no `en`: the default name
        "Iso Omena Library",
    ]
    assert [kela.name_in(lang) for lang in ("fi", "sv", "en")] == ["kela", "FPA", "kela"]
    assert [site.name_in(lang) for lang in ("fi", "sv", "en")] == [
        "Palvelutori",
        "Servicetorget",
        "S",
    ]


@pytest.mark.parametrize(
    ("names", "line", "key"),
    [
        ("{fi: Kirjasto, de: Bibliothek}", 5, "de"),
        ("{FI: Kirjasto}", 5, "FI"),  # full match, lower case only
        ("{fi-FI: Kirjasto}", 5, "fi-FI"),
        ("{fi: Kirjasto, 'fi ': Kirjasto}", 5, "fi "),
    ],
)
def test_names_with_a_language_not_fi_sv_en(names: str, line: int, key: str) -> None:
    text = HEAD + f"zones:\n  - {{id: library, names: {names}}}\n"
    assert error_of(text) == (
        f"site.yaml:{line}: zones[0].names.{key}: unknown language {key!r} "
        "(use fi, sv or en, in lower case)"
    )


def test_bad_language_key_points_at_its_own_line() -> None:
    text = HEAD + (
        "zones:\n"
        "  - id: library\n"
        "    names:\n"
        "      fi: Kirjasto\n"
        "      sv: Bibliotek\n"
        "      se: Bibliotek\n"  # line 9
    )
    assert error_of(text) == (
        "site.yaml:9: zones[0].names.se: unknown language 'se' (use fi, sv or en, in lower case)"
    )
    top = "site: s\nname: S\nnames: {en: S, xx: T}\ntimezone: UTC\nzones: [{id: a}]\n"
    assert error_of(top) == (
        "site.yaml:3: names.xx: unknown language 'xx' (use fi, sv or en, in lower case)"
    )


def test_empty_or_non_text_names() -> None:
    assert error_of(HEAD + "zones:\n  - {id: a, names: {fi: ''}}\n") == (
        "site.yaml:5: zones[0].names.fi: String should have at least 1 character"
    )
    assert error_of(HEAD + "zones:\n  - {id: a, names: Kirjasto}\n") == (
        "site.yaml:5: zones[0].names: Input should be a mapping (key: value)"
    )


def test_public_flag_defaults_off_and_must_be_a_boolean() -> None:
    site = parse_site(HEAD + "zones:\n  - {id: centre, public: true}\n  - {id: clinic}\n")
    assert [(z.id, z.public) for z in site.zones] == [("centre", True), ("clinic", False)]
    assert error_of(HEAD + "zones:\n  - {id: a}\n  - {id: b, public: 1}\n") == (
        "site.yaml:6: zones[1].public: Input should be a valid boolean (true or false)"
    )
    assert error_of(HEAD + "zones:\n  - {id: a, public: 'yes please'}\n") == (
        "site.yaml:5: zones[0].public: Input should be a valid boolean (true or false)"
    )
