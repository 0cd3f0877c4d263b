"""What goes with each batch the InfluxDB writer stores (its thread): the crossings that
only InfluxDB can tell about checked and applied first, the occupancy the batch changed
at every site, the history marks of its reset windows; then the acknowledgement of its
messages, once stored."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial

from footfall_runtime.consumer import AckingConsumer
from footfall_runtime.service import Clock

from .influx import Influx, PermanentWriteError
from .ingest import CrossingSeen
from .points import UniqueTimes
from .schema import history_pending_point
from .sitestate import SiteState
from .stored import stored_times
from .writer import InfluxWriter, Work

log = logging.getLogger("footfall_collector.service")


class BatchPrep:
    """The writer's `Prepare` (writer.py) for a collector's sites."""

    def __init__(
        self,
        influx: Influx,
        writer: InfluxWriter,
        consumer: AckingConsumer,
        clock: Clock,
        unique: UniqueTimes,
        sites: Callable[[], Iterable[SiteState]],
    ) -> None:
        """`sites`: every site state that may hold occupancy not yet written (those
        served, and those removed that may still receive a message)."""
        self._influx = influx
        self._writer = writer
        self._consumer = consumer
        self._clock = clock
        self._unique = unique
        self._sites = sites

    def __call__(self, batch: list[Work]) -> tuple[list[str], Callable[[], None]] | None:
        """What goes with a batch: its checked crossings applied first, the occupancy
        they and the others changed, and the history marks; then its acknowledgement."""
        first = batch[0]
        if first.check and first.state and not self._resolve_checks(first.state, first.check):
            return None
        # Work of an earlier connection is written too, not acknowledged: the broker
        # delivers those messages again, but their crossings are applied, and the check
        # of a late re-delivery relies on every applied crossing being stored in order.
        states = {id(s): s for s in self._sites()}
        states.update((id(w.state), w.state) for w in batch if w.state is not None)
        lines = [line for s in states.values() for line in s.live.take_pending_lines()]
        lines += self._pending_history_lines(batch)
        return lines, lambda: self._acknowledge(batch)

    def _acknowledge(self, batch: list[Work]) -> None:
        """Those of the current connection only: an ack must not reach the next one."""
        self._consumer.ack_all(w.ack for w in batch if w.ack is not None)
        for w in batch:
            if w.done is not None:
                w.done.set()

    def _pending_history_lines(self, batch: list[Work]) -> list[str]:
        """One `history_pending` mark per site and reset window the batch's crossings
        fall in, written with them: a mark exists exactly when its data does
        (docs/history.md)."""
        windows: dict[tuple[str, int], int] = {}
        for w in batch:
            if w.state is None:
                continue
            for start, first in (w.windows or {}).items():
                key = (w.state.id, start)
                windows[key] = min(first, windows.get(key, first))
        now = self._clock.now_ms()
        return [
            history_pending_point(site_id, start, first, self._unique.ns(now)).line()
            for (site_id, start), first in windows.items()
        ]

    def _resolve_checks(self, state: SiteState, check: list[CrossingSeen]) -> bool:
        """Crossings at or below their agent's low-water mark (a late re-delivery, or an
        agent whose clock went back) are applied only if InfluxDB does not hold their
        point yet. Every crossing applied before is stored by now: it arrived earlier,
        and a message with checks starts its own batch once every earlier one is written.
        False when shutting down before InfluxDB answered. A query InfluxDB refuses would
        be a bug: the crossings are then taken as stored (not applied), rather than maybe
        applied twice."""
        by_agent: dict[str, list[int]] = {}
        for c in check:
            if c.ts_ms >= state.live.last_reset_ms:
                by_agent.setdefault(c.key[0], []).append(c.key[1])
        stored: set[tuple[str, int]] = set()
        for agent, times in by_agent.items():
            query = partial(stored_times, self._influx, state.id, agent, times)
            try:
                found = self._writer.until_answered("check", query)
            except PermanentWriteError as exc:
                log.error("InfluxDB refused the exactly-once check, crossings not applied: %s", exc)
                found = set(times)
            if found is None:
                return False
            stored.update((agent, t) for t in found)
        state.live.apply_checked(check, stored, self._clock.now_ms())
        return True
