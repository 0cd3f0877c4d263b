"""An event's identity never changes once published: a Pi without a real-time clock that
starts unsynchronized, is killed with messages in flight and restarts after NTP has set
its clock sends every event with the time it was first published under, so a real
collector stores each exactly once. Events with untrustworthy times are flagged, and a
clock 8 days slow loses nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from footfall_collector.schema import CROSSING
from footfall_collector.service import Collector
from footfall_contract.messages import CrossingBatch
from footfall_contract.timefmt import parse_ts
from footfall_edge.outbox import NewEvent, Outbox
from footfall_edge.simulation.doorway import DoorwayProfile, simulate
from footfall_edge.trace import write_trace
from footfall_sim.localservices import Influx, Mosquitto
from tests.edge.clocked_agent import set_clock
from tests.support.collector import InfluxQuery, collector_settings, small_site, wait_for
from tests.support.edge import edge_settings, edge_toml
from tests.support.mqtt import Recorder

PREFIX = "footfall/v1/test-site/agent/pi-1"
DAY_MS = 86_400_000
ROOT = Path(__file__).resolve().parents[2]


class AckBlackhole:
    """A TCP relay between the agent and the broker that can stop passing anything back
    to the agent: the broker gets (and forwards) every message, the agent never hears
    the PUBACKs. Killing the agent then is killing it with messages in flight."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.drop = threading.Event()
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._socks += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, back: bool) -> None:
        try:
            while data := src.recv(65536):
                if not (back and self.drop.is_set()):
                    dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()
        for s in self._socks:
            s.close()


def clocked_agent(clock: Path, config: Path, trace: Path | None = None) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "tests.edge.clocked_agent",
        str(clock),
        "run",
        "--config",
        str(config),
    ]
    if trace is not None:
        cmd += ["--mock-trace", str(trace)]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(config.parent / "agent.log", "ab"),
        env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"},
    )


def published(rec: Recorder) -> dict[int, list[dict]]:  # type: ignore[type-arg]
    """Every delivery of every crossing event, by seq."""
    out: dict[int, list[dict]] = {}  # type: ignore[type-arg]
    for m in rec.on("/crossing"):
        CrossingBatch.model_validate_json(m.payload)
        for e in m.json()["events"]:
            out.setdefault(e["seq"], []).append(e)
    return out


def outbox_state(path: Path) -> tuple[set[int], Counter[tuple[str, str]]]:
    """Seqs still waiting, and the crossings the agent counted since its epoch began."""
    with sqlite3.connect(path) as db:
        left = {s for (s,) in db.execute("SELECT seq FROM events")}
        totals = Counter({(d, dr): n for d, dr, n in db.execute("SELECT door, dir, n FROM totals")})
    db.close()
    return left, totals


@pytest.mark.services
def test_restart_after_ntp_sync_with_messages_in_flight_counts_each_event_once(
    mosquitto: Mosquitto, influx: Influx, tmp_path: Path
) -> None:
    doors = [("centre-main", 17, 27), ("library-main", 5, 6)]
    proxy = AckBlackhole(mosquitto.port)
    settings = edge_settings(
        tmp_path,
        proxy.port,
        presence=[],
        doors=[{"id": d, "outer_pin": o, "inner_pin": i} for d, o, i in doors],
        publish={"health_interval_s": 30, "wait_for_clock_s": 1.0},
    )
    config = tmp_path / "edge.toml"
    config.write_text(edge_toml(settings))
    rows, truth = simulate(
        [d for d, _, _ in doors],
        10.0,
        DoorwayProfile(rate_per_min=90, p_abort=0, glitches_per_min=0),
        seed=11,
    )
    trace = tmp_path / "trace.csv"
    with trace.open("w") as fh:
        write_trace(rows, fh)
    clock = tmp_path / "clock.json"
    set_clock(clock, synced=False, slow_ms=8 * DAY_MS)  # booted with a stale saved time

    collector = Collector(collector_settings(mosquitto.port, influx.url), small_site())
    collector.start()
    assert collector.ready.wait(10)
    rec = Recorder(mosquitto.port, f"{PREFIX}/crossing")
    q = InfluxQuery(influx.url)

    def stored() -> int:
        r = q.rows(f'SELECT count("count") FROM "{CROSSING}"')
        return int(r[0]["count"]) if r else 0

    proc = clocked_agent(clock, config, trace)
    try:
        started = time.monotonic()
        rec.wait_until(lambda: len(published(rec)) >= 4, timeout_s=20)  # sent with the slow clock
        proxy.drop.set()  # from now on no PUBACK reaches the agent
        acked_before = len(published(rec))
        time.sleep(max(0.0, rows[-1].t_ms / 1000 + 1.5 - (time.monotonic() - started)))
        rec.wait_until(lambda: len(published(rec)) > acked_before)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        left, _ = outbox_state(settings.outbox_path)
        in_flight = left & set(published(rec))
        assert in_flight, "the scenario needs events published but not yet acknowledged"
        wait_for(lambda: stored() == len(published(rec)), 30, "the collector stored them")

        set_clock(clock, synced=True)  # NTP has set the clock; same boot
        proxy.drop.clear()
        proc = clocked_agent(clock, config)
        wait_for(lambda: not outbox_state(settings.outbox_path)[0], 30, "the outbox drained")
        _, totals = outbox_state(settings.outbox_path)
        wait_for(lambda: stored() >= sum(totals.values()), 30, "every event stored")
        time.sleep(1.0)  # anything more would be a double count
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        collector.stop()
        proxy.close()
        rec.close()

    want = sum(c["in"] + c["out"] for c in truth.doors.values())
    assert sum(totals.values()) >= 0.9 * want  # real-time pins; exact figures: replay tests
    counts = q.crossing_counts()
    assert counts == dict(totals)  # exactly once each
    sent = published(rec)
    assert len(sent) == sum(totals.values())
    for seq in in_flight:  # re-sent with the time it was first published under
        assert len({e["ts"] for e in sent[seq]}) == 1, sent[seq]
    now_ms = time.time() * 1000
    slow = {
        s
        for s, es in sent.items()
        if now_ms - parse_ts(es[0]["ts"]) > 7 * DAY_MS  # the clock 8 days slow
    }
    assert slow and all(e.get("clock_unsynced") is True for s in slow for e in sent[s])
    assert all(
        "clock_unsynced" not in e and abs(now_ms - parse_ts(e["ts"])) < 120_000
        for s, es in sent.items()
        if s not in slow
        for e in es
    )
    old = q.rows(f'SELECT count("count") FROM "{CROSSING}" WHERE time < now() - 7d')
    assert int(old[0]["count"]) == len(slow)  # 8 days old: stored, not refused
    assert q.rows('SELECT * FROM "rejected"') == []


def test_a_sent_event_keeps_its_time_and_an_unsent_one_is_corrected(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    slow = {"ts": "2026-11-15T10:00:00.000Z", "door": "d", "dir": "in"}  # 8 days slow
    box.append([NewEvent("crossing", slow, mono_ms=5_000)] * 3, boot="b")
    first, second, third = box.pending()
    assert first.provisional and second.provisional
    # The first goes out before NTP: its time is fixed for good, and flagged.
    (sent,) = box.seal([first])
    assert sent.body == {**slow, "clock_unsynced": True} and not sent.provisional
    # NTP sets the clock: monotonic 65 s is 2026-11-23T11:00:00Z, the events were 60 s earlier.
    assert box.fix_times("b", 1_795_431_600_000, 65_000) == 2
    after = {e.seq: e for e in box.pending()}
    assert after[first.seq].wire() == {"seq": first.seq, **slow, "clock_unsynced": True}
    corrected = {"ts": "2026-11-23T10:59:00.000Z", "door": "d", "dir": "in"}
    assert after[second.seq].body == corrected and not after[second.seq].provisional
    # A stale copy sealed after the correction goes out with the stored, corrected time.
    assert box.seal([third]) == [after[third.seq]]
    assert after[third.seq].body == corrected
    box.close()
    again = Outbox(tmp_path / "o.sqlite3")  # and so after a restart
    assert [e.wire() for e in again.pending()] == [e.wire() for e in after.values()]
    again.close()
