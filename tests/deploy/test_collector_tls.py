"""The collector as deployed: its own broker account over the TLS listener of the
repository's broker config. Its buffered reads sit on top of the TLS socket, so this is
where they must be shown to work."""

from __future__ import annotations

from pathlib import Path

import pytest

from footfall_collector.config import CollectorSettings
from footfall_collector.service import Collector
from footfall_sim.localservices import Influx
from tests.deploy.conftest import USERS
from tests.support.broker_users import RepoBroker, User
from tests.support.collector import (
    InfluxQuery,
    crossing_batch,
    now_ms,
    small_site,
    wait_for,
)

pytestmark = pytest.mark.services


def test_collector_reads_agents_over_tls_with_its_account(
    broker: RepoBroker, tls_dir: Path, influx: Influx
) -> None:
    assert broker.tls_port is not None
    settings = CollectorSettings(
        mqtt={
            "host": "localhost",
            "port": broker.tls_port,
            "username": "collector",
            "password": USERS["collector"],
            "tls": True,
            "ca_certs": tls_dir / "ca.crt",
        },
        influx={"url": influx.url, "database": "footfall"},
        http={"host": "127.0.0.1", "port": 0},
        ingest={"flush_interval_s": 0.05},
    )
    collector = Collector(settings, small_site())
    collector.start()
    agent = User(
        broker.tls_port,
        "agent-a",
        USERS["agent-a"],
        ca_certs=tls_dir / "ca.crt",
        host="localhost",
    )
    try:
        assert collector.ready.wait(15), "the collector did not connect over TLS"
        topic = "footfall/v1/test-site/agent/agent-a/crossing"
        # Many small messages and one large one: the reads are buffered across TLS records.
        for i in range(200):
            agent.publish(topic, crossing_batch("e1", [(i, "library-main", "in")]).decode())
        big = [(200 + i, "centre-main", "in") for i in range(2000)]
        agent.publish(topic, crossing_batch("e1", big, now_ms()).decode())
        q = InfluxQuery(influx.url)
        wait_for(
            lambda: (
                q.crossing_counts() == {("library-main", "in"): 200, ("centre-main", "in"): 2000}
            ),
            30,
            "every crossing sent over TLS in InfluxDB",
        )
        wait_for(lambda: collector.unacked == 0, 10, "every message acknowledged")
    finally:
        agent.close()
        collector.stop()
