"""Prometheus metrics of one alerts service (its own registry, so tests can run several).
What an alert or a device did is labelled with its site (site ids come from the site
files, so the series stay bounded); a site no longer served leaves no gauges behind."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.messages = Counter("footfall_alerts_messages", "MQTT messages received", registry=r)
        self.rejected = Counter(
            "footfall_alerts_rejected", "MQTT messages that could not be read", registry=r
        )
        self.dropped_events = Counter(
            "footfall_alerts_dropped_events",
            "Events dropped from messages that were read, by reason (unknown_source: a "
            "fault source the site does not have; invalid)",
            ["site", "reason"],
            registry=r,
        )
        self.transitions = Counter(
            "footfall_alerts_transitions", "Alert transitions", ["site", "state"], registry=r
        )
        self.notifications = Counter(
            "footfall_alerts_notifications",
            "Notifications decided (one per receiver and group)",
            ["site", "receiver", "event"],
            registry=r,
        )
        self.deliveries = Counter(
            "footfall_alerts_deliveries",
            "Outbox delivery attempts by result (sent, retry, refused)",
            ["channel", "result"],
            registry=r,
        )
        self.delivery_delay = Histogram(
            "footfall_alerts_delivery_seconds",
            "From the decision to notify to the receiver accepting it (retries included)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600),
            registry=r,
        )
        self.outbox = Gauge(
            "footfall_alerts_outbox_open",
            "Outbox entries not yet delivered",
            ["site", "channel"],
            registry=r,
        )
        self.firing = Gauge("footfall_alerts_firing", "Alerts firing now", ["site"], registry=r)
        self.open_alerts = Gauge(
            "footfall_alerts_open", "Alerts open now (pending and firing)", ["site"], registry=r
        )
        self.connected = Gauge(
            "footfall_alerts_connected", "1 when connected", ["target"], registry=r
        )
        self._shown: set[tuple[str, ...]] = set()
        """The label sets of the per-site gauges set last time."""

    def show_sites(
        self,
        counts: dict[str, tuple[int, int]],
        outbox: dict[str, dict[str, tuple[int, int | None]]],
    ) -> None:
        """Per site served: alerts (firing, open), and its outbox entries per channel. A
        channel whose outbox emptied reads 0; a site no longer served loses its series."""
        shown: set[tuple[str, ...]] = set()
        for site, (firing, open_) in counts.items():
            self.firing.labels(site).set(firing)
            self.open_alerts.labels(site).set(open_)
            shown.add((site,))
            for channel, (count, _) in outbox.get(site, {}).items():
                self.outbox.labels(site, channel).set(count)
                shown.add((site, channel))
        for labels in self._shown - shown:
            if len(labels) == 1:
                self.firing.remove(*labels)
                self.open_alerts.remove(*labels)
            elif labels[0] in counts:
                self.outbox.labels(*labels).set(0)
                shown.add(labels)
            else:
                self.outbox.remove(*labels)
        self._shown = shown
