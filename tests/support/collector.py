"""Collector helpers for tests: a small nested site, publishing, InfluxDB queries, and a
controllable clock (waiting: tests/support/waiting.py; `wait_for` is its `eventually`)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import urllib3
from paho.mqtt.enums import CallbackAPIVersion

from footfall_collector.config import CollectorSettings
from footfall_contract.site import Site, parse_site
from footfall_contract.timefmt import format_ts
from tests.support.waiting import eventually

SITE_YAML = """\
site: test-site
name: Test Service Centre
timezone: Europe/Helsinki
reset_at: "03:00"
opening_hours: {mon-fri: "08:00-20:00", sat: "10:00-16:00"}
zones:
  - {id: centre, name: Service Centre, capacity: 600}
  - {id: library, name: Library, parent: centre, capacity: 250}
  - {id: kela, name: Kela, parent: centre, capacity: 40}
  - {id: youth, name: Youth services, parent: library}
doors:
  - {id: centre-main, outside: null, inside: centre}
  - {id: library-main, outside: centre, inside: library}
  - {id: library-mall, outside: null, inside: library}
  - {id: kela-door, outside: centre, inside: kela}
  - {id: youth-door, outside: library, inside: youth}
presence:
  - {id: study-room-2, zone: library}
"""


def small_site() -> Site:
    return parse_site(SITE_YAML, "test-site.yaml")


def write_site(folder: Path) -> Path:
    path = folder / "test-site.yaml"
    path.write_text(SITE_YAML)
    return path


def collector_settings(mqtt_port: int, influx_url: str, **ingest: Any) -> CollectorSettings:
    return CollectorSettings(
        mqtt={"host": "127.0.0.1", "port": mqtt_port, "reconnect_min_s": 1, "reconnect_max_s": 1},
        influx={"url": influx_url, "database": "footfall"},
        http={"host": "127.0.0.1", "port": 0},
        ingest={"flush_interval_s": 0.05, **ingest},
    )


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def crossing_batch(
    epoch: str, events: Iterable[tuple[int, str, str]], ts_ms: int | None = None
) -> bytes:
    """(seq, door, dir) triples in one message."""
    ts = format_ts(ts_ms if ts_ms is not None else now_ms())
    return json.dumps(
        {
            "epoch": epoch,
            "events": [{"seq": s, "ts": ts, "door": d, "dir": dr} for s, d, dr in events],
        }
    ).encode()


class Publisher:
    """A QoS 1 publisher that waits for every PUBACK."""

    def __init__(self, port: int, client_id: str = "") -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class InfluxQuery:
    def __init__(self, url: str, database: str = "footfall") -> None:
        self.url, self.database = url, database
        self.http = urllib3.PoolManager()

    def rows(self, q: str) -> list[dict[str, Any]]:
        r = self.http.request(
            "POST", f"{self.url}/query", fields={"db": self.database, "q": q, "epoch": "ns"}
        )
        body = json.loads(r.data)
        out = []
        for result in body.get("results", []):
            assert "error" not in result, result
            for s in result.get("series", []):
                for v in s["values"]:
                    row = dict(zip(s["columns"], v, strict=True))
                    row.update(s.get("tags", {}))
                    out.append(row)
        return out

    def crossing_counts(self) -> dict[tuple[str, str], int]:
        rows = self.rows('SELECT count("count") FROM "crossing" GROUP BY "door", "dir"')
        return {(r["door"], r["dir"]): r["count"] for r in rows}


class FakeClock:
    def __init__(self, start_ms: int) -> None:
        self._t = start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._t

    def set(self, t_ms: int) -> None:
        with self._lock:
            self._t = t_ms


wait_for = eventually
"""The collector tests' name for `tests.support.waiting.eventually`."""
