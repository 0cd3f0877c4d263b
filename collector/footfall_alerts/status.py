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


def all_alerts_json(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Several sites' `alerts_json` as one: every alert and silence names its site."""
    return {
        "sites": [s["site"] for s in snapshots],
        "alerts": [{**a, "site": s["site"]} for s in snapshots for a in s["alerts"]],
        "silences": [{**x, "site": s["site"]} for s in snapshots for x in s["silences"]],
    }


def outbox_json(store: Store, now_ms: int) -> dict[str, Any]:
    """What waits in a site's outbox, and for how long; what was sent and refused."""
    pending = store.pending()
    oldest = min((t for _, t in pending.values() if t is not None), default=None)
    return {
        "outbox_open": sum(c for c, _ in pending.values()),
        "outbox_oldest_s": None if oldest is None else round((now_ms - oldest) / 1000, 1),
        **{f"outbox_{k}": v for k, v in store.counts().items() if k != "open"},
    }


def health_json(site: str, outbox: dict[str, Any], mqtt_connected: bool) -> dict[str, Any]:
    """One site's service (`--site`): ready while connected to the broker."""
    return {"ready": mqtt_connected, "mqtt": mqtt_connected, "site": site, **outbox}


def sites_health_json(
    outboxes: dict[str, dict[str, Any]],
    refused: dict[str, str],
    shard: str | None,
    mqtt_connected: bool,
) -> dict[str, Any]:
    """A service of a site folder: ready while connected; per site its outbox, and the
    files refused (`file:line: reason`)."""
    oldest = [o["outbox_oldest_s"] for o in outboxes.values() if o["outbox_oldest_s"] is not None]
    return {
        "ready": mqtt_connected,
        "mqtt": mqtt_connected,
        "shard": shard,
        "sites": outboxes,
        "refused": refused,
        "outbox_open": sum(o["outbox_open"] for o in outboxes.values()),
        "outbox_oldest_s": max(oldest, default=None),
    }
