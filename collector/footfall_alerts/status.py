"""What the service shows of itself, as JSON: the open alerts and silences (the API and
the board read them) and its health (`/healthz`). Written once so that a silence looks the
same whether it was just made or listed later."""

from __future__ import annotations

from typing import Any

from footfall_contract.site import Site
from footfall_contract.timefmt import format_ts

from .engine import Engine, Silence
from .store import Store


def silence_json(s: Silence) -> dict[str, Any]:
    return {
        "id": s.id,
        "matchers": s.matchers,
        "until": format_ts(s.until),
        "by": s.by,
        "reason": s.reason,
        "created": format_ts(s.created),
    }


def alerts_json(site: Site, engine: Engine, now_ms: int) -> dict[str, Any]:
    """The open alerts and the silences still in force (the caller holds the engine)."""
    return {
        "site": site.site,
        "alerts": engine.active(now_ms),
        "silences": [silence_json(s) for s in engine.silences.values() if s.until > now_ms],
    }


def health_json(site: Site, store: Store, mqtt_connected: bool, now_ms: int) -> dict[str, Any]:
    """Ready while connected to the broker; what waits in the outbox, and for how long."""
    pending = store.pending()
    oldest = min((t for _, t in pending.values() if t is not None), default=None)
    return {
        "ready": mqtt_connected,
        "mqtt": mqtt_connected,
        "site": site.site,
        "outbox_open": sum(c for c, _ in pending.values()),
        "outbox_oldest_s": None if oldest is None else round((now_ms - oldest) / 1000, 1),
        **{f"outbox_{k}": v for k, v in store.counts().items() if k != "open"},
    }
