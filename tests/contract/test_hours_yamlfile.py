"""The shared homes of opening hours (hours.py) and of YAML with line numbers
(yamlfile.py), as the alerts and the site model use them."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import BaseModel, ConfigDict

from footfall_contract.hours import clock_text, last_closing, opening_span, reset_after
from footfall_contract.site import parse_site
from footfall_contract.yamlfile import FileError, parse_mapping

SITE = """\
site: s
name: S
timezone: Europe/Helsinki
reset_at: "03:00"
opening_hours: {mon-fri: "08:00-20:00", sat: "10:00-24:00"}
zones:
  - {id: hall}
"""


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=parse_site(SITE).tz)


def test_a_day_open_until_midnight_closes_at_the_next_midnight() -> None:
    site = parse_site(SITE)
    saturday = dt.date(2026, 11, 28)
    assert opening_span(site, saturday) == (local(2026, 11, 28, 10), local(2026, 11, 29, 0))
    assert opening_span(site, saturday + dt.timedelta(days=1)) is None  # Sunday: closed
    hours = site.hours_on(saturday)
    assert hours is not None
    assert [clock_text(t) for t in hours] == ["10:00", "24:00"]


def test_last_closing_and_the_reset_after_it() -> None:
    site = parse_site(SITE)
    monday_morning = local(2026, 11, 30, 7, 0)
    closed = last_closing(site, monday_morning)
    assert closed == local(2026, 11, 29, 0)  # Saturday's 24:00; Sunday is closed
    assert reset_after(site, closed) == local(2026, 11, 29, 3)
    assert last_closing(site, local(2026, 11, 30, 20, 0)) == local(2026, 11, 30, 20, 0)
    assert reset_after(site, local(2026, 11, 30, 3, 0)) == local(2026, 12, 1, 3, 0)


class _Error(FileError):
    pass


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: int


def test_any_file_gets_file_line_reason_errors() -> None:
    def error(text: str) -> str:
        doc = parse_mapping(text, "x.yaml", _Error, what="test file", top_level="not {kind}")
        assert doc is not None
        with pytest.raises(_Error) as caught:
            doc.validate(_Model, _Error)
        return str(caught.value)

    assert error("a: 1\nb: 2\n") == "x.yaml:2: b: Extra inputs are not permitted"
    with pytest.raises(_Error, match=r"^x.yaml:2: duplicate key 'a' \(first on line 1\)$"):
        parse_mapping("a: 1\na: 2\n", "x.yaml", _Error, what="test file", top_level="")
    with pytest.raises(_Error, match=r"^x.yaml:1: not a list$"):
        parse_mapping("- 1\n", "x.yaml", _Error, what="test file", top_level="not {kind}")
    with pytest.raises(_Error, match=r"^x.yaml:1: invalid YAML: could not determine"):
        parse_mapping("a: !!python/name:os.system\n", "x.yaml", _Error, what="t", top_level="")
    assert parse_mapping("# empty\n", "x.yaml", _Error, what="t", top_level="") is None
