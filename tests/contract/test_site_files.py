"""The site files shipped in deploy/sites load and satisfy the model's checks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from footfall_collector.occupancy import OccupancyEngine
from footfall_contract.site import Site, Zone, load_site, site_files

SITES = site_files(Path(__file__).parents[2] / "deploy" / "sites")


@pytest.mark.parametrize("path", SITES, ids=[p.stem for p in SITES])
def test_site_file_loads(path: Path) -> None:
    site = load_site(path)
    assert site.site == path.stem
    assert all(z.capacity is None or z.capacity > 0 for z in site.zones)
    roots = [z.id for z in site.zones if z.parent is None]
    assert len(roots) == 1, "one building zone that holds every unit"
    assert any(d.outside is None for d in site.doors), "some door leads outside"
    engine = OccupancyEngine(site)  # every door's zones resolve
    for door in site.doors:
        assert engine.apply(door.id, "in")


def test_iso_omena_has_its_units_and_opening_hours() -> None:
    site = load_site(SITES[[p.stem for p in SITES].index("iso-omena")])
    names = " ".join(z.name.lower() for z in site.zones)
    for unit in (
        "library",
        "service point",
        "employment",
        "health centre",
        "child health",
        "huslab",
        "mental health",
        "kela",
        "ohjaamo",
        "kohtaamo",
    ):
        assert unit in names, unit
    monday, saturday, sunday = date(2026, 11, 23), date(2026, 11, 28), date(2026, 11, 29)
    assert [t.strftime("%H:%M") for t in site.hours_on(monday) or ()] == ["07:00", "20:00"]
    assert [t.strftime("%H:%M") for t in site.hours_on(saturday) or ()] == ["10:00", "16:00"]
    assert site.hours_on(sunday) is None
    assert [t.strftime("%H:%M") for t in site.hours_on(sunday, "library") or ()] == [
        "11:00",
        "18:00",
    ]
    assert site.contains("library", "kohtaamo")  # reached through the library


@pytest.mark.parametrize("path", SITES, ids=[p.stem for p in SITES])
def test_shipped_sites_name_every_zone_in_finnish_and_swedish(path: Path) -> None:
    site = load_site(path)
    named: list[Site | Zone] = [site, *site.zones]
    for item in named:
        assert set(item.names) == {"fi", "sv"}, item  # `name` is the English one
        assert item.name_in("en") == item.name


@pytest.mark.parametrize("path", SITES, ids=[p.stem for p in SITES])
def test_only_the_library_and_the_centre_have_a_public_display(path: Path) -> None:
    """docs/spec.md §3: no clinic is shown to the public."""
    site = load_site(path)
    assert [z.id for z in site.zones if z.public] == ["centre", "library"]


def test_iso_omena_names_in_finnish() -> None:
    site = load_site(SITES[[p.stem for p in SITES].index("iso-omena")])
    fi = {z.id: z.name_in("fi") for z in site.zones}
    assert fi["library"] == "Iso Omenan kirjasto"
    assert site.zone("library").name_in("sv") == "Iso Omena bibliotek"
    assert fi["mental-health"] == "Mielenterveys- ja päihdepalvelut"
    assert (fi["service-point"], fi["health-centre"], fi["child-health"]) == (
        "Palvelupiste",
        "Terveysasema",
        "Neuvola",
    )
