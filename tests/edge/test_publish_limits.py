"""Message size: the publisher never builds a message over the contract's limit, so a
large backlog reaches a real collector and InfluxDB whole."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from footfall_collector.schema import CROSSING
from footfall_collector.service import Collector
from footfall_contract.messages import MAX_PAYLOAD_BYTES, CrossingBatch
from footfall_contract.timefmt import format_ts
from footfall_edge.agent import OutboxAgent
from footfall_edge.outbox import NewEvent, Outbox, StoredEvent
from footfall_edge.publisher import Publisher
from footfall_sim.localservices import Influx, Mosquitto
from tests.support.collector import (
    InfluxQuery,
    collector_settings,
    now_ms,
    small_site,
    wait_for,
)
from tests.support.edge import edge_settings
from tests.support.mqtt import Recorder

PREFIX = "footfall/v1/test-site/agent/pi-1"
DOORS = ["centre-main", "library-main", "library-mall", "kela-door", "youth-door"]


@pytest.mark.services
def test_a_12000_event_backlog_with_batch_max_5000_is_stored_whole(
    mosquitto: Mosquitto, influx: Influx, tmp_path: Path
) -> None:
    settings = edge_settings(
        tmp_path,
        mosquitto.port,
        presence=[],
        doors=[
            {"id": d, "outer_pin": 2 * i + 2, "inner_pin": 2 * i + 3} for i, d in enumerate(DOORS)
        ],
        publish={"batch_max": 5000, "health_interval_s": 30, "wait_for_clock_s": 0},
    )
    start = now_ms() - 6 * 3600_000  # a six-hour outage
    events = [
        NewEvent(
            "crossing",
            {
                "ts": format_ts(start + i * 1500),
                "door": DOORS[i % 5],
                "dir": "out" if i % 3 else "in",
            },
        )
        for i in range(12_000)
    ]
    truth = Counter((e.body["door"], e.body["dir"]) for e in events)
    box = Outbox(settings.outbox_path)
    box.append(events)
    epoch = box.epoch
    box.close()
    # The premise: 5,000 of these events in one message would be over the limit.
    as_one = json.dumps(
        {
            "epoch": epoch,
            "events": [{"seq": 7000 + i, **e.body} for i, e in enumerate(events[:5000])],
        },
        separators=(",", ":"),
    )
    assert len(as_one.encode()) > MAX_PAYLOAD_BYTES

    collector = Collector(collector_settings(mosquitto.port, influx.url), small_site())
    collector.start()
    assert collector.ready.wait(10)
    rec = Recorder(mosquitto.port, f"{PREFIX}/crossing")
    agent = OutboxAgent(settings)
    q = InfluxQuery(influx.url)
    try:
        agent.start()
        wait_for(lambda: agent.outbox.depth == 0, 60, "the backlog acknowledged")
        wait_for(lambda: sum(q.crossing_counts().values()) >= 12_000, 60, "12,000 stored")
    finally:
        agent.stop()
        collector.stop()
        rec.close()
    sizes = [len(m.payload) for m in rec.on("/crossing")]
    assert max(sizes) <= MAX_PAYLOAD_BYTES
    assert len(sizes) >= 4  # 12,000 events need at least 4 messages under 256 KiB
    seqs = [
        e.seq
        for m in rec.on("/crossing")
        for e in CrossingBatch.model_validate_json(m.payload).events
    ]
    assert sorted(seqs) == list(range(12_000))
    assert {(d, dr): n for (d, dr), n in q.crossing_counts().items()} == dict(truth)
    assert q.rows(f'SELECT count("count") FROM "{CROSSING}"')[0]["count"] == 12_000
    assert q.rows('SELECT * FROM "rejected"') == []


@pytest.mark.parametrize(("limit", "batch_max"), [(300, 1000), (1000, 3), (4096, 5000), (700, 1)])
def test_messages_are_packed_to_both_limits_in_order(
    tmp_path: Path, limit: int, batch_max: int
) -> None:
    """Greedy packing, checked against the definition: each message is the JSON of its
    events, within both limits, and the next event would not have fitted."""
    rng = random.Random(limit + batch_max)
    events = [
        StoredEvent(
            seq,
            "fault",
            {
                "ts": format_ts(1_795_428_000_000 + seq),
                "source": "d" * rng.randint(1, 120) + "/outer",
                "fault": "beam_blocked",
                "active": True,
            },
        )
        for seq in range(400)
    ]
    box = Outbox(tmp_path / "o.sqlite3")
    pub = Publisher(
        edge_settings(tmp_path).mqtt,
        "test-site",
        "pi-1",
        box,
        batch_max=batch_max,
        max_payload_bytes=limit,
    )
    messages = list(pub.batches("e-1", events))
    box.close()
    assert [e for batch, _ in messages for e in batch] == events  # all, once, in order
    for i, (batch, payload) in enumerate(messages):
        as_json = {"epoch": "e-1", "events": [e.wire() for e in batch]}
        assert payload == json.dumps(as_json, separators=(",", ":"))
        assert len(payload.encode()) <= limit and len(batch) <= batch_max
        if i + 1 < len(messages):
            grown = {"epoch": "e-1", "events": [*as_json["events"], messages[i + 1][0][0].wire()]}
            assert (
                len(batch) == batch_max
                or len(json.dumps(grown, separators=(",", ":")).encode()) > limit
            )
