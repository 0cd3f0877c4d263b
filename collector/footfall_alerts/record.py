"""The `alert` measurement: every transition, for Grafana annotations and history.

tags: site, alert (id), rule, kind, severity, state (pending, firing, resolved,
cancelled, acknowledged, silenced, unsilenced), and zone / agent / door when the alert is
about one; fields: summary (text), value (float, when known), started (RFC 3339),
by and reason (acknowledgements and silences). Time: the transition's, in ms. Each
(alert, state) is its own series, so re-writing a point after a retry is idempotent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from footfall_collector.points import FieldValue, Point
from footfall_contract.timefmt import parse_ts


def alert_point(site: str, entry: Mapping[str, Any]) -> Point:
    alert = entry["alert"]
    tags = {
        "site": site,
        "alert": alert["id"],
        "rule": alert["rule"],
        "kind": alert["kind"],
        "severity": alert["severity"],
        "state": entry["state"],
    }
    for key in ("zone", "agent", "door"):
        if key in alert["scope"]:
            tags[key] = alert["scope"][key]
    fields: dict[str, FieldValue] = {"summary": alert["summary"], "started": alert["started"]}
    if alert.get("value") is not None:
        fields["value"] = float(alert["value"])
    for key in ("by", "reason"):
        if entry.get(key):
            fields[key] = str(entry[key])
    return Point("alert", tags, fields, parse_ts(alert["ts"]) * 1_000_000)
