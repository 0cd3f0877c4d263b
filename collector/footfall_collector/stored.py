"""Reading back the crossings InfluxDB holds, for exactly-once live occupancy: after a
restart occupancy is rebuilt from them, and a crossing too late for the recent keys
(docs/collector.md) is applied only if InfluxDB does not hold its point yet."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .influx import Influx, influxql_string
from .schema import CROSSING

CHECK_GAP_NS = 600 * 10**9
"""Keys to check further apart than this are looked up by separate queries."""


def crossing_pages(
    influx: Influx, site: str, start_ms: int, horizon_ms: int, span_ms: int, page: int
) -> Iterator[dict[str, Any]]:
    """The site's crossings from `start_ms` on (columns time, door, dir, agent), in time
    order: a query per `span_ms`, each streamed in pages of `page` rows, so memory is
    bounded by a page and each query by a span of the site's data. Beyond `horizon_ms`
    only crossings stamped in the future can be: one open-ended query."""
    head = (
        f'SELECT "count", "door", "dir", "agent" FROM "{CROSSING}" '
        f'WHERE "site" = {influxql_string(site)}'
    )
    start = start_ms
    while True:
        end = start + span_ms
        last = end >= horizon_ms
        q = f"{head} AND time >= {start}ms" + ("" if last else f" AND time < {end}ms")
        yield from influx.query_chunks(q, chunk_size=page)
        if last:
            return
        start = end


def stored_times(influx: Influx, site: str, agent: str, times: list[int]) -> set[int]:
    """Which of these point times of an agent's crossings InfluxDB holds."""
    wanted = set(times)
    ordered = sorted(wanted)
    where = f'"site" = {influxql_string(site)} AND "agent" = {influxql_string(agent)}'
    found: set[int] = set()
    lo = prev = ordered[0]
    for t in [*ordered[1:], None]:
        if t is not None and t - prev <= CHECK_GAP_NS:
            prev = t
            continue
        q = f'SELECT "count" FROM "{CROSSING}" WHERE {where} AND time >= {lo} AND time <= {prev}'
        for page in influx.query_chunks(q):
            i_time = page["columns"].index("time")
            found.update(int(row[i_time]) for row in page["values"])
        if t is not None:
            lo = prev = t
    return found & wanted
