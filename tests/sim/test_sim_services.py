"""footfall-sim against real services: an accelerated run through Mosquitto, the
collector and InfluxDB; a backfill into InfluxDB; real-time EdgeAgents on mock pins."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from footfall_collector.schema import OCCUPANCY_HISTORY, VISITS_DAILY, ZONE_FLOW, rollup_from
from footfall_collector.service import Collector
from footfall_contract.messages import CrossingBatch
from footfall_contract.site import load_site
from footfall_contract.timefmt import parse_ts
from footfall_edge.detection import Crossing
from footfall_runtime.config import MqttSettings
from footfall_sim import cli
from footfall_sim.crowd import SEPARABLE
from footfall_sim.localservices import Influx, Mosquitto
from footfall_sim.runner import agent_doors, agent_ids, edge_config, run_realtime
from footfall_sim.scenario import simulate
from footfall_sim.visitors import ModelParams, VisitorModel
from tests.support.collector import InfluxQuery, collector_settings, wait_for
from tests.support.mqtt import Recorder

pytestmark = pytest.mark.services

ISO = Path(__file__).parents[2] / "deploy" / "sites" / "iso-omena.yaml"


def counts_of(summary_counts: dict[str, dict[str, int]]) -> dict[tuple[str, str], int]:
    return {(d, k): n for d, c in summary_counts.items() for k, n in c.items() if n}


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    rc = cli.main(args)
    out = capsys.readouterr().out
    return rc, json.loads(out)


def test_accelerated_run_counts_and_empties_every_zone(
    mosquitto: Mosquitto,
    influx: Influx,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """30 simulated minutes at 120x (15 s), four times Iso Omena's usual rate, closing at
    the end: InfluxDB holds what the detectors counted, which is the truth within the
    detector's accuracy, and every zone is back to 0."""
    site = load_site(ISO)
    collector = Collector(collector_settings(mosquitto.port, influx.url), site)
    collector.start()
    assert collector.ready.wait(10)
    monkeypatch.setenv("FOOTFALL_MQTT__HOST", "127.0.0.1")
    monkeypatch.setenv("FOOTFALL_MQTT__PORT", str(mosquitto.port))
    q = InfluxQuery(influx.url)
    try:
        started = time.monotonic()
        rc, summary = run_cli(
            [
                "--site",
                str(ISO),
                "--hours",
                "0.5",
                "--speed",
                "120",
                "--ignore-hours",  # whenever the test runs
                "--visits",
                "14400",
                "--profile",
                "separable",
                "--seed",
                "3",
            ],
            capsys,
        )
        assert rc == 0, summary
        assert time.monotonic() - started < 40
        assert summary["unsent_events"] == 0 and not summary["interrupted"]
        assert summary["visits"] > 200
        detected = counts_of(summary["detected"])
        true = counts_of(summary["true"])
        wait_for(lambda: q.crossing_counts() == detected, 30, "InfluxDB has every event")
        stored = q.crossing_counts()
        for key, n in true.items():
            assert abs(stored.get(key, 0) - n) <= max(1, 0.02 * n), key
        total_true = sum(true.values())
        assert abs(sum(stored.values()) - total_true) <= 0.02 * total_true
        assert q.rows('SELECT count("count") FROM "rejected"') == []  # none late or early
        wait_for(
            lambda: all(z["count"] == 0 for z in collector.occupancy().values()),
            10,
            "every zone empty",
        )

        def last_occupancy() -> dict[str, int]:
            rows = q.rows('SELECT last("count") FROM "occupancy" GROUP BY "zone"')
            return {r["zone"]: r["last"] for r in rows}

        zones = {z.id: 0 for z in site.zones}
        wait_for(lambda: last_occupancy() == zones, 10, "InfluxDB's last occupancy is 0")
        agents = q.rows('SELECT count("value") FROM "agent_status" GROUP BY "agent"')
        assert {r["agent"] for r in agents} == {f"sim-{d.id}" for d in site.doors}
    finally:
        collector.stop()


def test_backfill_writes_history_straight_to_influxdb(
    influx: Influx, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FOOTFALL_INFLUX__URL", influx.url)
    rc, summary = run_cli(["--site", str(ISO), "--backfill", "2", "--seed", "4"], capsys)
    assert rc == 0, summary
    assert summary["days"] == 2 and summary["visits"] > 2000
    q = InfluxQuery(influx.url)
    detected = counts_of(summary["detected"])
    assert q.crossing_counts() == detected
    site = load_site(ISO)
    rows = q.rows('SELECT count("count") FROM "occupancy" GROUP BY "zone"')
    per_zone = {r["zone"]: r["count"] for r in rows}
    assert set(per_zone) == {z.id for z in site.zones}
    assert min(per_zone.values()) >= 2 * 24 * 60  # every minute of both days, and changes
    resets = q.rows('SELECT count("count_before") FROM "occupancy_reset" GROUP BY "zone"')
    assert {r["count"] for r in resets} == {2}
    # Visits as the collector writes them, then the history worker over both days: three
    # reset windows (the one before the first midnight too), the daily entries of each
    # zone are its zone_flow entries, and a `zone_flow` per crossing of a door into it.
    assert summary["history_windows"] == 3 and summary["history_s"] > 0
    flow_in = q.rows(f'SELECT sum("count") FROM "{ZONE_FLOW}" WHERE "dir" = \'in\' GROUP BY zone')
    entries = {r["zone"]: r["sum"] for r in flow_in}
    daily = q.rows(
        f'SELECT sum("entries"), count("entries") FROM {rollup_from(VISITS_DAILY)} GROUP BY zone'
    )
    assert {r["zone"]: r["sum"] for r in daily} == entries
    # both days, and the ends of their windows: the evening before and today's small hours
    assert {r["count"] for r in daily} == {4}
    into_kohtaamo = detected.get(("kohtaamo-door", "in"), 0)
    assert entries["kohtaamo"] == into_kohtaamo  # one door only
    into_library = detected.get(("library-mall", "in"), 0) + detected.get(("library-main", "in"), 0)
    assert entries["library"] == into_library
    hist = q.rows(f'SELECT count("count") FROM "{OCCUPANCY_HISTORY}" GROUP BY "zone"')
    assert {r["zone"] for r in hist} == {z.id for z in site.zones}
    # The same seed writes the same points again: a second run adds nothing.
    rc, again = run_cli(["--site", str(ISO), "--backfill", "2", "--seed", "4"], capsys)
    assert rc == 0 and again["points"] == summary["points"]
    assert q.crossing_counts() == detected


def test_realtime_edge_agents_on_mock_pins(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """EdgeAgents on gpiozero mock pins, driven in real time: a short burst of visitors
    (seconds of dwell) at every door of the site."""
    site = load_site(ISO)
    params = ModelParams(
        visits_per_day=200_000,
        ignore_hours=True,
        dwell_scale=0.004,
        min_stay_s=2,
        walk_s=(1.0, 2.5),
        leave_buffer_s=1,
    )
    now = time.time()
    sim = simulate(VisitorModel(site, params), now + 2, now + 14, seed=1, profile=SEPARABLE)
    assert len(sim.plan.visits) >= 5
    agent_of = agent_ids([d.id for d in site.doors])
    mqtt = MqttSettings(host="127.0.0.1", port=mosquitto.port, reconnect_min_s=0.2)
    configs = {
        a: edge_config(site.site, a, doors, mqtt, tmp_path / "state")
        for a, doors in agent_doors(agent_of).items()
    }
    rec = Recorder(mosquitto.port, "footfall/v1/iso-omena/agent/+/crossing")
    try:
        stats = run_realtime(configs, sim.crowd, lambda _: None)
    finally:
        rec.close()
    true = {d: c for d, c in sim.true_counts().items() if sum(c.values())}
    assert stats.detected == true and stats.unsent == 0
    total = sum(n for c in true.values() for n in c.values())

    def received() -> list[dict]:  # type: ignore[type-arg]
        return [e for m in rec.on("/crossing") for e in m.json()["events"]]

    assert len(received()) == total  # acknowledged by the broker, so delivered at QoS 1
    for m in rec.on("/crossing"):
        batch = CrossingBatch.model_validate_json(m.payload)
        agent = m.topic.split("/")[4]
        assert all(agent_of[e.door] == agent for e in batch.events)
    # Stamped by the agents' clocks as the pins changed: the times the detectors gave
    # the same traces in virtual time, give or take the threads' latency.
    live: dict[tuple[str, str], list[int]] = {}
    for e in received():
        live.setdefault((e["door"], e["dir"]), []).append(parse_ts(e["ts"]))
    virtual: dict[tuple[str, str], list[int]] = {}
    for d in sim.events:
        if isinstance(d.event, Crossing):
            virtual.setdefault((d.event.door, d.event.dir), []).append(d.wall_ms)
    assert live.keys() == virtual.keys()
    for key, times in live.items():
        for a, b in zip(sorted(times), sorted(virtual[key]), strict=True):
            assert abs(a - b) < 500, key
