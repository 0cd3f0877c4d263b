"""Site checks (docs/spec.md §3, "Checks"): a valid site file that will not count as
meant. Each expectation is worked out by hand from the site drawn in the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from footfall_contract.site import Site, load_site, parse_site
from footfall_contract.sitecheck import counted_zones, line_of

ROOT = Path(__file__).resolve().parents[2]
HEAD = "site: s\nname: S\ntimezone: Europe/Helsinki\n"


def site(body: str) -> Site:
    return parse_site(HEAD + body, "site.yaml")


def problems(s: Site) -> list[tuple[str, str, str]]:
    return [(p.severity, p.where, p.message) for p in s.problems()]


@pytest.mark.parametrize("name", ["iso-omena", "kalajarvi"])
def test_the_shipped_sites_have_nothing_to_say(name: str) -> None:
    s = load_site(ROOT / "deploy" / "sites" / f"{name}.yaml")
    assert s.problems() == [] and s.warnings() == [] and s.errors() == []
    assert counted_zones(s) == {z.id for z in s.zones}


def test_a_zone_no_door_leads_into_keeps_a_count_of_0() -> None:
    s = site(
        "zones:\n"
        "  - {id: centre}\n"
        "  - {id: archive, parent: centre}\n"  # no door at all
        "  - {id: study, parent: centre}\n"  # presence sensors only
        "doors:\n"
        "  - {id: main, outside: null, inside: centre}\n"
        "presence:\n"
        "  - {id: study-1, zone: study}\n"
        "  - {id: study-2, zone: study}\n"
    )
    # main: in enters centre only (archive and study do not contain centre)
    assert counted_zones(s) == {"centre"}
    assert problems(s) == [
        ("warning", "zones[1]", "zone 'archive': no door leads into it, so its count stays 0"),
        (
            "warning",
            "zones[2]",
            "zone 'study': no door leads into it, so its count stays 0; its presence sensors "
            "(study-1, study-2) show only whether it is in use",
        ),
    ]
    assert s.errors() == [] and len(s.warnings()) == 2


def test_a_child_above_the_capacity_of_its_nearest_counted_ancestor() -> None:
    s = site(
        "zones:\n"
        "  - {id: centre, capacity: 100}\n"
        "  - {id: wing, parent: centre}\n"  # no capacity: compare with centre
        "  - {id: library, parent: wing, capacity: 150}\n"  # above centre's 100
        "  - {id: kela, parent: centre, capacity: 100}\n"  # equal: fine
        "  - {id: room, parent: library, capacity: 120}\n"  # below library's 150: fine
        "doors:\n"
        "  - {id: main, outside: null, inside: centre}\n"
        "  - {id: wing-door, outside: centre, inside: wing}\n"
        "  - {id: library-door, outside: wing, inside: library}\n"
        "  - {id: kela-door, outside: centre, inside: kela}\n"
        "  - {id: room-door, outside: library, inside: room}\n"
    )
    assert problems(s) == [
        (
            "warning",
            "zones[2].capacity",
            "zone 'library': capacity 150 is above the capacity 100 of 'centre', which "
            "contains it: 'centre' is full first",
        )
    ]


def test_zones_reached_only_through_uncounted_doors_cannot_work() -> None:
    s = site(
        "zones:\n"
        "  - {id: centre}\n"
        "  - {id: lab-a, parent: centre}\n"
        "  - {id: lab-b, parent: centre}\n"
        "  - {id: kela, parent: centre}\n"
        "doors:\n"
        "  - {id: main, outside: null, inside: centre}\n"
        "  - {id: lab-door, outside: lab-a, inside: lab-b}\n"  # nobody counted into lab-a
        "  - {id: kela-door, outside: centre, inside: kela}\n"
    )
    # lab-door: in enters lab-b and leaves lab-a; centre contains both sides: untouched
    assert s.door_effects("lab-door") == (("lab-b",), ("lab-a",))
    [error] = s.errors()
    assert (error.where, error.severity) == ("zones[1]", "error")
    assert error.message.startswith(
        "zones 'lab-a', 'lab-b' are reached only through doors without counting: no counted "
        "door connects them to the street (outside: null) or to a zone no counted door "
        "bounds, so whoever walks in is never counted in and the first counted step out "
        "(door lab-door) drives the count below 0"
    )
    assert s.warnings() == []


def test_counted_through_a_child_or_from_an_uncounted_building_is_fine() -> None:
    # The centre has no door of its own: everyone in it came through the library's.
    through_child = site(
        "zones:\n"
        "  - {id: centre}\n"
        "  - {id: library, parent: centre}\n"
        "doors:\n"
        "  - {id: library-mall, outside: null, inside: library}\n"
    )
    assert through_child.door_effects("library-mall") == (("centre", "library"), ())
    assert problems(through_child) == []
    # The building's entrance has no sensors: its rooms are counted, the building is not.
    uncounted_building = site(
        "zones:\n"
        "  - {id: building}\n"
        "  - {id: room-a, parent: building}\n"
        "  - {id: room-b, parent: building}\n"
        "doors:\n"
        "  - {id: a-door, outside: building, inside: room-a}\n"
        "  - {id: ab-door, outside: room-a, inside: room-b}\n"
    )
    assert problems(uncounted_building) == [
        ("warning", "zones[0]", "zone 'building': no door leads into it, so its count stays 0")
    ]


def test_a_site_with_nothing_to_count() -> None:
    s = site("zones: [{id: a}, {id: b, parent: a}]\n")
    assert problems(s) == [
        (
            "error",
            "",
            "the site has no doors and no presence sensors: there is nothing to count",
        )
    ]


def test_problems_point_at_their_line() -> None:
    text = HEAD + "zones:\n  - {id: a}\n  - id: b\n    parent: a\n    capacity: 9\n"
    text += "doors:\n  - {id: d, outside: null, inside: a}\n"
    assert line_of(text, ("zones", 1)) == 6
    assert line_of(text, ("zones", 1, "capacity")) == 8
    assert line_of(text, ()) is None
    assert [p.as_json() for p in parse_site(text).problems()] == [
        {
            "severity": "warning",
            "where": "zones[1]",
            "message": "zone 'b': no door leads into it, so its count stays 0",
        }
    ]
