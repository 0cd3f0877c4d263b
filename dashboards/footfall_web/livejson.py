"""What the live state keeps and shows of a message (pure): the bounded agent state and
alert, and the JSON the board, the API and the stream answer with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from footfall_contract.messages import Alert
from footfall_contract.site import Site
from footfall_contract.timefmt import format_ts

from .levels import Reading

MAX_SW_CHARS: Final = 64
"""`sw` of an agent status, as kept and shown (docs/spec.md §2)."""
MAX_TEXT_CHARS: Final = 256
"""Any other free text kept from a message (alert scope values, acknowledged_by)."""
MAX_SCOPE_KEYS: Final = 8


def cut(text: str | None, limit: int = MAX_TEXT_CHARS) -> str | None:
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class AgentState:
    online: bool
    ts_ms: int
    sw: str


@dataclass(frozen=True)
class Change:
    """One change of live state: kind "occupancy", "agent" or "alert"; "sites" when the
    served sites changed (`data`: the ids "added", "changed" and "removed")."""

    kind: str
    site: str
    key: str
    data: dict[str, Any]


def occupancy_json(site: Site, zone: str, reading: Reading | None) -> dict[str, Any]:
    z = site.zone(zone)
    return {
        "site": site.site,
        "zone": zone,
        "name": z.name,
        "parent": z.parent,
        "count": None if reading is None else reading.count,
        "capacity": z.capacity if reading is None else reading.capacity,
        "ratio": None if reading is None else reading.ratio,
        "ts": None if reading is None else format_ts(reading.ts_ms),
    }


def agent_json(site: str, agent: str, state: AgentState) -> dict[str, Any]:
    return {
        "site": site,
        "agent": agent,
        "online": state.online,
        "ts": format_ts(state.ts_ms),
        "sw": state.sw,
    }


def alert_json(alert: Alert) -> dict[str, Any]:
    return alert.model_dump()


def bounded_alert(alert: Alert) -> Alert:
    """The alert with its open-ended fields cut (the contract bounds the others)."""
    scope = {(cut(k) or ""): (cut(v) or "") for k, v in list(alert.scope.items())[:MAX_SCOPE_KEYS]}
    by = cut(alert.acknowledged_by)
    if scope == alert.scope and by == alert.acknowledged_by:
        return alert
    return alert.model_copy(update={"scope": scope, "acknowledged_by": by})
