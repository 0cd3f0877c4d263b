"""InfluxQL text that every reader builds alike: string literals, a tag's condition and
the half-open time range of a query, so that quoting and the range bounds (from
inclusive, to exclusive, in epoch milliseconds) are written once for the collector,
the reports and the web."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["all_of", "influxql_string", "tag_in", "tag_is", "time_range"]


def influxql_string(text: str) -> str:
    """An InfluxQL string literal, quoted (ids are [a-z0-9-], checked against the site
    file; escaped anyway)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def tag_is(tag: str, value: str) -> str:
    """`"tag" = 'value'`."""
    return f'"{tag}" = {influxql_string(value)}'


def tag_in(tag: str, values: Iterable[str]) -> str:
    """`("tag" = 'a' OR "tag" = 'b')`: the tag is one of `values` (at least one)."""
    return "(" + " OR ".join(tag_is(tag, v) for v in values) + ")"


def time_range(start_ms: int, end_ms: int) -> str:
    """[start_ms, end_ms) as `time >= ...ms AND time < ...ms`."""
    return f"time >= {start_ms}ms AND time < {end_ms}ms"


def all_of(*conditions: str) -> str:
    """The conditions joined by AND, in the order given."""
    return " AND ".join(conditions)
