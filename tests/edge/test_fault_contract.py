"""What the edge raises as faults is what the collector accepts: every fault name is one
of the contract's, and every source is a beam of one of the site's doors (issue 11,
item 7: sources outside that set are refused as `unknown_source`)."""

from __future__ import annotations

import json

from footfall_collector.ingest import Ingest
from footfall_contract.messages import BEAMS, FAULT_NAMES, FaultBatch
from footfall_edge.agent import to_new_event
from footfall_edge.detection import BEAMS as EDGE_BEAMS
from footfall_edge.detection import DetectorConfig, DoorDetector, Fault
from footfall_edge.sensing import Stamped
from tests.support.collector import now_ms, small_site


def edge_faults(door: str) -> list[Fault]:
    """Drive one door's detector through both faults of both beams, raised and cleared."""
    det = DoorDetector(door, DetectorConfig(blocked_ms=5000, flap_changes=20, flap_window_ms=2000))
    events = []
    for beam, start in zip(BEAMS, (0, 100_000), strict=True):
        events += det.feed(start, beam, True)
        events += det.advance(start + 6000)  # beam_blocked raised
        events += det.feed(start + 7000, beam, False)  # and cleared
        for k in range(60):  # a 3 ms flicker every 50 ms: beam_flapping
            t = start + 20_000 + k * 50
            events += det.feed(t, beam, True) + det.feed(t + 3, beam, False)
        events += det.advance(start + 60_000)
    return [e for e in events if isinstance(e, Fault)]


def test_every_fault_the_edge_raises_is_accepted_by_the_collector() -> None:
    assert EDGE_BEAMS == BEAMS
    site = small_site()
    ingest = Ingest(site)
    for door in site.doors:
        faults = edge_faults(door.id)
        # Both names, both beams, raised and cleared: what the edge can emit at all.
        assert {(f.source, f.fault, f.active) for f in faults} == {
            (f"{door.id}/{beam}", name, active)
            for beam in BEAMS
            for name in FAULT_NAMES
            for active in (True, False)
        }
        now = now_ms()
        bodies = [to_new_event(Stamped(now, f)).body for f in faults]
        payload = {"epoch": "e", "events": [{"seq": i, **b} for i, b in enumerate(bodies)]}
        FaultBatch.model_validate(payload)  # the producer's model
        out = ingest.handle(
            "footfall/v1/test-site/agent/pi-1/fault", json.dumps(payload).encode(), now
        )
        assert out.rejections == []
        assert [(p.tags["source"], p.tags["fault"]) for p in out.points] == [
            (f.source, f.fault) for f in faults
        ]
