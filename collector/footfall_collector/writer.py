"""Everything bound for InfluxDB goes through one queue and one thread: batched so that
thousands of messages a second cost few requests, retried with backoff while InfluxDB is
away (the messages wait unacknowledged at the broker meanwhile), and refused points
counted and dropped without holding up the rest. Whoever fed a batch learns when it is
stored (to acknowledge its messages); until then it is counted as waiting, which is what
the overload limit for QoS 0 looks at."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from footfall_runtime.ratelog import LogLimiter
from footfall_runtime.service import Stopping

from .config import IngestSettings
from .influx import Influx, InfluxLink, PermanentWriteError, RetryableWriteError
from .ingest import CrossingSeen
from .metrics import Metrics

if TYPE_CHECKING:
    from .sitestate import SiteState

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Work:
    lines: list[str]
    ack: tuple[int, int, int] | None = None  # (connection generation, mid, qos)
    windows: dict[int, int] | None = None  # reset windows with crossings: start -> earliest
    check: list[CrossingSeen] | None = None  # below their agent's low-water mark
    state: SiteState | None = None  # the site it belongs to (the state that applied it)
    done: threading.Event | None = None  # set once it (and all put before it) is stored


Prepare = Callable[[list[Work]], tuple[list[str], Callable[[], None]] | None]
"""Called with each batch before it is written: the lines to write with it and what to do
once it is stored (acknowledge it); None to leave the batch unwritten (shutting down)."""


class InfluxWriter:
    SPLIT_BUDGET = 32
    """Requests one batch may spend finding the points of a request refused as a whole."""

    def __init__(
        self,
        influx: Influx,
        settings: IngestSettings,
        metrics: Metrics,
        link: InfluxLink,
        stop: Stopping,
        give_up: Callable[[], bool],
        limiter: LogLimiter,
    ) -> None:
        """`stop`: the service stops (waits end); `give_up`: a failing write or query may
        be abandoned (stopping, and no connection left to acknowledge on)."""
        self.influx = influx
        self.settings = settings
        self.metrics = metrics
        self.link = link
        self._stop = stop
        self._give_up = give_up
        self._limiter = limiter
        self._queue: queue.SimpleQueue[Work] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._unacked = 0  # messages received, not yet written and acknowledged
        self._queued_lines = 0  # points received, not yet written
        self.ok = False

    # -- the queue -----------------------------------------------------------------------

    def put(self, work: Work) -> None:
        with self._lock:
            self._unacked += work.ack is not None
            self._queued_lines += len(work.lines)
        self._queue.put(work)

    @property
    def unacked(self) -> int:
        return self._unacked

    @property
    def queued_lines(self) -> int:
        return self._queued_lines

    def overloaded(self) -> bool:
        """Too much waits for InfluxDB to take more QoS 0 messages. Receive Maximum bounds
        QoS 1 (the broker keeps the rest); nothing bounds QoS 0 but this."""
        s = self.settings
        return self._unacked >= s.receive_maximum or self._queued_lines >= s.max_queued_points

    def run(self, prepare: Prepare) -> None:
        """The writer thread, until stopped and drained. Batches of up to `batch_points`
        points, `flush_interval_s` or a quarter of the receive window, one at a time. The
        broker sends no more than `receive_maximum` unacknowledged messages: a batch that
        waited for its full interval at thousands of messages a second would fill the
        window and leave the broker waiting for acks. While a batch fills, the queue is
        polled every few ms instead of waking up for each message: at thousands of
        messages a second those wake-ups (and the GIL hand-overs they force on paho's
        thread) cost more than the writes. A message with crossings to check against
        InfluxDB starts a batch of its own, so that everything that came before it is
        stored when it is checked."""
        s = self.settings
        poll = min(0.01, s.flush_interval_s)
        max_messages = max(1, s.receive_maximum // 4)
        carry: Work | None = None
        while not self._stop.is_set() or not self._queue.empty() or carry is not None:
            if carry is not None:
                first, carry = carry, None
            else:
                try:
                    first = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
            batch = [first]
            lines = len(first.lines)
            deadline = time.monotonic() + s.flush_interval_s
            while lines < s.batch_points and len(batch) < max_messages:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    time.sleep(min(poll, remaining))
                    continue
                if item.check:
                    carry = item
                    break
                batch.append(item)
                lines += len(item.lines)
            self._write_batch(batch, prepare)

    def _write_batch(self, batch: list[Work], prepare: Prepare) -> None:
        prepared = prepare(batch)
        if prepared is None:
            return  # shutting down with InfluxDB away: the broker keeps the messages
        extra, stored = prepared
        lines = [line for w in batch for line in w.lines]
        lines += extra
        started = time.monotonic()
        if not self.write_lines(lines):
            return  # shutting down with InfluxDB away: the broker keeps the messages
        self.metrics.write_seconds.observe(time.monotonic() - started)
        self.metrics.batch_points.observe(len(lines))
        received = sum(w.ack is not None for w in batch)
        queued = sum(len(w.lines) for w in batch)
        with self._lock:
            self._unacked -= received
            self._queued_lines -= queued
        stored()

    # -- writing -------------------------------------------------------------------------

    def write_lines(self, lines: list[str]) -> bool:
        """Write, retrying while InfluxDB is away. Points it refuses never hold up or take
        the others with them: InfluxDB 1.x writes the rest of the request and says what it
        dropped ("partial write"), which is counted by reason and not sent again; a
        request refused as a whole (nothing written) is halved to find the refused points,
        within `SPLIT_BUDGET` requests, and what is still unresolved then is dropped.
        False when given up (shutting down before InfluxDB answered)."""
        return self._write_part(lines, [self.SPLIT_BUDGET])

    def _write_part(self, lines: list[str], budget: list[int]) -> bool:
        delay = 0.2
        while True:
            try:
                self.influx.write(lines)
                self.set_ok(True)
                return True
            except RetryableWriteError as exc:
                self.set_ok(False, exc)
                self.metrics.write_errors.labels("retryable").inc()
                if self._give_up():
                    return False
                log.debug("InfluxDB write failed, retrying: %s", exc)
                time.sleep(delay)
                delay = _backoff(delay, 10.0)
            except PermanentWriteError as exc:
                self.set_ok(True)
                self.metrics.write_errors.labels("permanent").inc()
                if exc.partial:
                    self._count_dropped(exc.reason, exc.dropped, exc)
                    return True
                if len(lines) == 1 or budget[0] < 2:
                    self._count_dropped(exc.reason, len(lines), exc)
                    return True
                budget[0] -= 2
                half = len(lines) // 2
                return self._write_part(lines[:half], budget) and self._write_part(
                    lines[half:], budget
                )

    def _count_dropped(self, reason: str, points: int, exc: Exception) -> None:
        self.metrics.dropped_points.labels(reason).inc(points)
        if self._limiter.allow(f"dropped:{reason}") is not None:
            log.warning(
                "InfluxDB refused %d point(s) (%s), dropped; the rest are stored: %s",
                points,
                reason,
                exc,
            )

    # -- reading and waiting ---------------------------------------------------------------

    def retry(self, what: str, action: Callable[[], T]) -> T | None:
        """Run `action` until it works: InfluxDB may come up after the collector. None
        once stopped (a signal must end a collector that cannot reach it)."""
        delay = 0.5
        while not self._stop.is_set():
            try:
                result = action()
                self.set_ok(True)
                return result
            except RetryableWriteError as exc:
                self.set_ok(False, exc)
                log.debug("%s: %s; retrying in %.1f s", what, exc, delay)
                self._stop.wait(delay)
                delay = _backoff(delay, 30.0)
        return None

    def until_answered(self, what: str, action: Callable[[], T]) -> T | None:
        """`action` (a query), retried while InfluxDB is away; None once given up. A
        query InfluxDB refuses raises `PermanentWriteError`."""
        delay = 0.2
        while True:
            try:
                return action()
            except RetryableWriteError as exc:
                self.set_ok(False, exc)
                if self._give_up():
                    return None
                log.debug("InfluxDB %s failed, retrying: %s", what, exc)
                time.sleep(delay)
                delay = _backoff(delay, 10.0)

    def ping(self) -> None:
        self.set_ok(self.influx.ping())

    def set_ok(self, ok: bool, exc: Exception | None = None) -> None:
        """Logged once per change, with the reason and what to check (`InfluxLink`)."""
        if ok:
            self.link.ok()
        else:
            self.link.failed(exc)
        self.ok = ok
        self.metrics.connected.labels("influx").set(int(ok))


def _backoff(delay: float, most: float) -> float:
    """The next wait: doubled up to `most`, with jitter so that services do not retry in
    step."""
    return min(delay * 2, most) * random.uniform(0.8, 1.2)
