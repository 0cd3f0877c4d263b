"""Prometheus metrics of one collector (its own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.messages = Counter("footfall_messages", "MQTT messages received", ["kind"], registry=r)
        self.events = Counter("footfall_events", "Events accepted", ["kind"], registry=r)
        self.rejected = Counter(
            "footfall_rejected", "Messages or events rejected", ["reason"], registry=r
        )
        self.duplicates = Counter(
            "footfall_duplicate_crossings", "Re-delivered crossings not counted again", registry=r
        )
        self.late = Counter(
            "footfall_late_crossings",
            "Crossings from before the last reset (history only)",
            registry=r,
        )
        self.write_seconds = Histogram(
            "footfall_influx_write_seconds",
            "InfluxDB batch write time, retries included",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.batch_points = Histogram(
            "footfall_influx_batch_points",
            "Points per InfluxDB write",
            buckets=(1, 10, 50, 100, 500, 1000, 5000, 10000),
            registry=r,
        )
        self.write_errors = Counter(
            "footfall_influx_write_errors", "Failed writes", ["kind"], registry=r
        )
        self.history_windows = Counter(
            "footfall_history_windows",
            "Reset windows whose occupancy history and visit rollups were recomputed",
            registry=r,
        )
        self.history_seconds = Histogram(
            "footfall_history_seconds",
            "Time of one history round (every pending window)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.unacked = Gauge(
            "footfall_unacked_messages",
            "Messages received but not yet written and acknowledged",
            registry=r,
        )
        self.queued_lines = Gauge(
            "footfall_queued_points",
            "Points received but not yet written (QoS 0 is dropped beyond max_queued_points)",
            registry=r,
        )
        self.dropped_points = Counter(
            "footfall_influx_dropped_points",
            "Points InfluxDB refused and dropped (the others of the request are stored)",
            ["reason"],
            registry=r,
        )
        self.connected = Gauge("footfall_connected", "1 when connected", ["target"], registry=r)
        self.zone_occupancy = Gauge(
            "footfall_zone_occupancy", "People in the zone now", ["site", "zone"], registry=r
        )
        self.agents_online = Gauge(
            "footfall_agents_online", "Agents seen online", ["site"], registry=r
        )
        self._children: dict[tuple[str, str], Counter] = {}

    def message_count(self, kind: str) -> Counter:
        """The labelled child, looked up once: `labels()` costs more than `inc()`."""
        return self._child("messages", kind)

    def event_count(self, kind: str) -> Counter:
        return self._child("events", kind)

    def _child(self, metric: str, kind: str) -> Counter:
        key = (metric, kind)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = getattr(self, metric).labels(kind)
        return child
