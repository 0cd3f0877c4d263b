"""Who is told what, and when: routes and quiet hours, silences, grouping within
`group_wait`, repeats, and the alert payload every transition and message carries.

A receiver gets a "resolved" only for an alert it was told about; an alert that fires
and resolves while a receiver's quiet hours, a silence or the grouping wait hold it
back is never sent to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from footfall_contract.timefmt import format_ts

from .observations import PUBLISHED, Effect, Event, Notification, Transition, TransitionState
from .routes import in_span
from .state import AlertBook, AlertRec

if TYPE_CHECKING:
    from .rules import Rule


class Notifying(AlertBook):
    """The engine's notification side, on the state it shares with the evaluation."""

    # --- routing, quiet hours, silences -------------------------------------------------

    def _receivers(self, alert: AlertRec) -> list[str]:
        out: list[str] = []
        for route in self.config.routes:
            if route.matches(alert.severity, alert.kind, alert.scope):
                out += [r for r in route.receivers if r not in out]
        return out

    def _quiet(self, receiver: str, alert: AlertRec, now: int) -> bool:
        return self._quiet_for(receiver, alert.severity, alert.kind, alert.scope, now)

    def _quiet_scope(self, receiver: str, payload: Mapping[str, Any], now: int) -> bool:
        return self._quiet_for(
            receiver, payload["severity"], payload["kind"], payload["scope"], now
        )

    def _quiet_for(
        self, receiver: str, severity: str, kind: str, scope: Mapping[str, str], now: int
    ) -> bool:
        """Quiet when every route that brings this alert to this receiver is in its quiet
        hours (one route without them is enough to deliver)."""
        local = dt.datetime.fromtimestamp(now / 1000, self.site.tz).time()
        routes = [
            r
            for r in self.config.routes
            if receiver in r.receivers and r.matches(severity, kind, scope)
        ]
        return bool(routes) and all(
            r.quiet_hours is not None and in_span(r.quiet_hours, local) for r in routes
        )

    def _in_active_hours(self, rule: Rule, alert: AlertRec, now: int) -> bool:
        if rule.active_hours == "always":
            return True
        when = dt.datetime.fromtimestamp(now / 1000, self.site.tz)
        return self.site.is_open(when, alert.scope.get("zone"))

    def _silenced_until(self, alert: AlertRec, now: int) -> int | None:
        until = [s.until for s in self.silences.values() if s.until > now and s.covers(alert)]
        return max(until) if until else None

    def _expire_silences(self, now: int) -> list[Effect]:
        out: list[Effect] = []
        for sid, silence in list(self.silences.items()):
            if silence.until <= now:
                del self.silences[sid]
                self._dirty.add(f"silence/{sid}")
                for alert in self.alerts.values():
                    if alert.state == "firing" and silence.covers(alert):
                        out.append(self._transition("unsilenced", alert, now))
        return out

    # --- API actions ---------------------------------------------------------------------
    def acknowledge(self, alert_id: str, by: str, reason: str, now: int) -> list[Effect]:
        alert = self.alerts.get(alert_id)
        if alert is None or alert.state != "firing":
            raise KeyError(f"no firing alert {alert_id!r}")
        alert.ack_by, alert.ack_reason = by, reason
        self._changed(alert)
        for key, group in list(self.owed.items()):
            if key.endswith("\trepeat") and alert_id in group["ids"]:
                group["ids"].remove(alert_id)
                self._dirty.add(f"owed/{key}")
                if not group["ids"] and not group["resolved"]:
                    del self.owed[key]
        return [self._transition("acknowledged", alert, now, by, reason)]

    # --- payloads --------------------------------------------------------------------------

    # --- grouping and repeats ----------------------------------------------------------

    def _owe(self, receiver: str, rule: str, event: Event, due: int) -> dict[str, Any]:
        """The group a caller is about to add to (so it counts as changed)."""
        key = f"{receiver}\t{rule}\t{event}"
        group = self.owed.get(key)
        if group is None:
            group = self.owed[key] = {"due": due, "ids": [], "resolved": []}
        self._owed_changed(key)
        return group

    def _repeats(self, now: int) -> list[Effect]:
        for alert in self.alerts.values():
            rule = self._rule[alert.rule]
            if alert.state != "firing" or rule.repeat is None or alert.ack_by:
                continue
            for receiver, last in alert.notified.items():
                if now - last >= rule.repeat * 1000:
                    key = f"{receiver}\t{rule.name}\trepeat"
                    if alert.id not in self.owed.get(key, {}).get("ids", ()):
                        self._owe(receiver, rule.name, "repeat", now)["ids"].append(alert.id)
        return []

    def _flush(self, now: int, only: set[str] | None = None) -> list[Effect]:
        """Send the groups that are due (`only`: of these keys)."""
        out: list[Effect] = []
        keys = self.owed if only is None else [k for k in only if k in self.owed]
        for key in sorted(keys, key=lambda k: (self.owed[k]["due"], k)):
            group = self.owed[key]
            if group["due"] > now:
                continue
            receiver, rule_name, event = key.split("\t")
            rule = self._rule[rule_name]
            send: list[dict[str, Any]] = []
            keep_ids: list[str] = []
            for alert_id in group["ids"]:
                alert = self.alerts.get(alert_id)
                if alert is None or alert.state != "firing":
                    continue
                if event == "repeat" and alert.ack_by:
                    continue
                if (
                    self._silenced_until(alert, now) is not None
                    or self._quiet(receiver, alert, now)
                    or not self._in_active_hours(rule, alert, now)
                ):
                    keep_ids.append(alert_id)
                    continue
                alert.notified[receiver] = now
                self._changed(alert)
                send.append(self._payload(alert, "firing", now))
            keep_resolved = []
            for payload in group["resolved"]:
                if self._quiet_scope(receiver, payload, now):
                    keep_resolved.append(payload)
                else:
                    send.append(payload)
            if keep_ids or keep_resolved:
                if keep_ids != group["ids"] or keep_resolved != group["resolved"]:
                    group["ids"], group["resolved"] = keep_ids, keep_resolved
                    self._dirty.add(f"owed/{key}")
            else:
                del self.owed[key]
                self._dirty.add(f"owed/{key}")
            if send:
                out.append(Notification(receiver, rule.name, event, tuple(send), now))  # type: ignore[arg-type]
        return out

    # --- conditions ----------------------------------------------------------------------

    # --- payloads --------------------------------------------------------------------------

    def active(self, now: int) -> list[dict[str, Any]]:
        """Firing and pending alerts, for the API (pending ones have state "pending")."""
        out = []
        for alert in sorted(self.alerts.values(), key=lambda a: (a.since, a.id)):
            payload = self._payload(alert, "firing", now)
            payload["state"] = alert.state
            if alert.state == "pending":
                payload["started"] = format_ts(alert.since)
            payload["ack_reason"] = alert.ack_reason
            out.append(payload)
        return out

    def _transition(
        self,
        state: TransitionState,
        alert: AlertRec,
        now: int,
        by: str | None = None,
        reason: str | None = None,
    ) -> Transition:
        shown = "resolved" if state in ("resolved", "cancelled") else "firing"
        if state in PUBLISHED and shown == "firing" and alert.id in self.alerts:
            alert.shown, alert.shown_at = alert.summary, now
            self._changed(alert)
        return Transition(state, self._payload(alert, shown, now), now, by, reason)

    def _payload(self, alert: AlertRec, state: str, now: int) -> dict[str, Any]:
        silenced = self._silenced_until(alert, now)
        return {
            "id": alert.id,
            "rule": alert.rule,
            "kind": alert.kind,
            "severity": alert.severity,
            "state": state,
            "scope": dict(alert.scope),
            "summary": alert.summary,
            "started": format_ts(alert.started or alert.since),
            "ts": format_ts(now),
            "value": alert.value,
            "acknowledged_by": alert.ack_by,
            "silenced_until": format_ts(silenced) if silenced is not None else None,
        }
