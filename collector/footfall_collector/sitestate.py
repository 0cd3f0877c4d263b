"""What the collector keeps per site it serves: the site's ingest validation, its live
occupancy (reset at its own time, in its own time zone), its history worker; and the
rebuild of that occupancy from the crossings InfluxDB holds.

A site's state is replaced as a whole when its file changes (service.py): the old one is
paused (its messages held, unhandled and unacknowledged), everything it applied is
written, the new one is rebuilt from InfluxDB, and the held messages go to the new one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from footfall_contract.site import Site
from footfall_contract.topics import parse_agent_topic

from .config import CollectorSettings, duration_days
from .history import HistoryWorker
from .influx import Influx
from .ingest import Ingest, Limits, Rejection, rejection_point
from .live import LiveOccupancy
from .metrics import Metrics
from .points import UniqueTimes
from .stored import crossing_pages
from .writer import Work

REBUILD_SPAN_MS = 3_600_000
"""The rebuild reads an hour of crossings per query, each streamed in pages."""
REBUILD_PAGE = 10_000


@dataclass(eq=False)
class SiteState:
    site: Site
    ingest: Ingest
    live: LiveOccupancy
    history: HistoryWorker
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while one of the site's messages is handled, and to pause or replace it."""
    paused: bool = False
    """Being replaced: messages are held (`held`) for the new state."""
    held: list[tuple[int, mqtt.MQTTMessage]] = field(default_factory=list)
    replaced: bool = False
    """No longer routed to: a message that found it looks the site up again."""

    @property
    def id(self) -> str:
        return self.site.site


def new_state(
    site: Site,
    settings: CollectorSettings,
    metrics: Metrics,
    unique: UniqueTimes,
    influx: Influx,
) -> SiteState:
    ing = settings.ingest
    max_age_days = ing.max_age_days or duration_days(settings.influx.retention_duration)
    ingest = Ingest(
        site,
        Limits(
            max_payload_bytes=ing.max_payload_bytes,
            max_future_ms=round(ing.max_future_s * 1000),
            max_age_ms=None if max_age_days is None else round(max_age_days * 86_400_000),
        ),
    )
    live = LiveOccupancy(site, metrics, ing.dedup_keys_per_agent, unique)
    return SiteState(site, ingest, live, HistoryWorker(influx, site))


def rebuild_once(
    state: SiteState,
    influx: Influx,
    now: int,
    max_future_s: float,
    span_ms: int = REBUILD_SPAN_MS,
    page_rows: int = REBUILD_PAGE,
) -> int:
    """Occupancy since the site's last reset from the crossings InfluxDB holds, from
    scratch (`stored.crossing_pages`). Crossings stamped after the coming reset are held
    for it, as live ones are. Returns how many were applied."""
    live = state.live
    live.begin_rebuild(now)
    horizon = now + round(max_future_s * 1000) + 1
    pages = crossing_pages(influx, state.id, live.last_reset_ms, horizon, span_ms, page_rows)
    applied = sum(live.rebuild_page(page) for page in pages)
    live.touch_all()
    return applied


def forget_metrics(state: SiteState, metrics: Metrics) -> None:
    """A site no longer served leaves no stale gauges behind."""
    for zone in state.site.zones:
        with contextlib.suppress(KeyError):
            metrics.zone_occupancy.remove(state.id, zone.id)
    with contextlib.suppress(KeyError):
        metrics.agents_online.remove(state.id)


def message_work(
    state: SiteState,
    msg: mqtt.MQTTMessage,
    now: int,
    metrics: Metrics,
    unique: UniqueTimes,
    log_limited: Callable[[str, str], None],
) -> Work:
    """One message of the site (under its lock): validated, applied to the live
    occupancy, and what to write for it (the caller adds its acknowledgement)."""
    out = state.ingest.handle(msg.topic, bytes(msg.payload), now)
    kind = out.kind or "unknown"
    metrics.message_count(kind).inc()
    if out.events:
        metrics.event_count(kind).inc(out.events)
    live = state.live
    agent_points, check = live.apply(out, now)
    points = out.points + agent_points
    for r in out.rejections:
        metrics.rejected.labels(r.reason).inc()
        log_limited(
            f"reject:{r.reason}", f"rejected ({r.reason}) from {r.agent or '?'}: {r.detail}"
        )
        points.append(rejection_point(state.id, r, unique.ns(now)))
    windows: dict[int, int] | None = None
    if out.crossings:
        windows = {}
        for c in out.crossings:
            w = live.window_start(c.ts_ms)
            windows[w] = min(c.ts_ms, windows.get(w, c.ts_ms))
    lines = out.lines
    lines += [p.line() for p in points]
    return Work(lines, None, windows, check or None, state)


def not_served_work(
    msg: mqtt.MQTTMessage,
    served: str,
    now: int,
    metrics: Metrics,
    unique: UniqueTimes,
    log_limited: Callable[[str, str], None],
) -> Work:
    """A message for a site not served here (`wrong_site`; `served` says where it came
    and which sites are served): counted, logged (limited) and recorded as rejected
    under the site it names."""
    try:
        t = parse_agent_topic(msg.topic)
    except ValueError as exc:
        r = Rejection("bad_topic", str(exc))
        site_id = None
    else:
        detail = f"topic site {t.site!r} is not served {served}"
        r = Rejection("wrong_site", detail, t.agent, t.kind)
        site_id = t.site
    metrics.message_count("unknown").inc()
    metrics.rejected.labels(r.reason).inc()
    log_limited(f"reject:{r.reason}", f"rejected ({r.reason}): {r.detail}")
    lines = [] if site_id is None else [rejection_point(site_id, r, unique.ns(now)).line()]
    return Work(lines)
