"""The outbox under storage faults, with real SQLite files and a real Mosquitto: a lock
held by another process is waited for, never taken for corruption; a damaged file is
kept aside and every row still readable in it is sent with its own epoch and seq."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from footfall_contract.messages import CrossingBatch
from footfall_contract.timefmt import format_ts
from footfall_edge.agent import OutboxAgent
from footfall_edge.outbox import NewEvent, Outbox, OutboxLocked
from footfall_sim.localservices import Mosquitto
from tests.support.edge import edge_settings, edge_toml
from tests.support.mqtt import Recorder

PREFIX = "footfall/v1/test-site/agent/pi-1"
T0 = 1_795_428_000_000  # 2026-11-23T10:00:00Z


def crossing(i: int) -> NewEvent:
    door = ("door-a", "door-b")[i % 2]
    return NewEvent("crossing", {"ts": format_ts(T0 + i * 10), "door": door, "dir": "in"})


def run_child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


CRASHED_WRITER = """
    import os, sys
    from pathlib import Path
    from footfall_edge.outbox import NewEvent, Outbox
    from footfall_contract.timefmt import format_ts
    box = Outbox(Path(sys.argv[1]))
    box.append([NewEvent("crossing", {"ts": format_ts(1_795_428_000_000 + i), "door": "door-a",
                "dir": "in"}) for i in range(int(sys.argv[2]))])
    print(box.epoch, flush=True)
    os._exit(0)  # a power cut: the events are only in the -wal file
"""

LOCK_HOLDER = """
    import sqlite3, sys, time
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    db.execute("COMMIT")
"""


def crashed_outbox(path: Path, n: int) -> str:
    """An outbox whose writer died without closing it; returns its epoch."""
    child = run_child(CRASHED_WRITER, str(path), str(n))
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert Path(f"{path}-wal").stat().st_size > 0  # the events wait in the WAL
    return out.strip()


def hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = run_child(LOCK_HOLDER, str(path), str(seconds))
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def received(rec: Recorder) -> dict[str, set[int]]:
    """Seqs per epoch, every payload checked against the contract."""
    out: dict[str, set[int]] = {}
    for m in rec.on("/crossing"):
        batch = CrossingBatch.model_validate_json(m.payload)
        out.setdefault(batch.epoch, set()).update(e.seq for e in batch.events)
    return out


@pytest.mark.services
def test_a_lock_held_at_start_is_waited_for_and_nothing_is_lost(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = edge_settings(tmp_path, mosquitto.port, presence=[])
    config = tmp_path / "edge.toml"
    config.write_text(edge_toml(settings))
    path = settings.outbox_path
    epoch = crashed_outbox(path, 50)
    rec = Recorder(mosquitto.port, f"{PREFIX}/crossing")
    holder = hold_lock(path, 8.0)  # longer than SQLite's default busy time-out (5 s)
    log = tmp_path / "agent.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "footfall_edge.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"},
    )
    try:
        rec.wait_until(lambda: received(rec).get(epoch) == set(range(50)), timeout_s=40)
    finally:
        proc.terminate()
        proc.wait(15)
        holder.wait(15)
        rec.close()
    assert set(received(rec)) == {epoch}  # the same epoch: nothing was moved aside
    assert not list(tmp_path.glob("state/*corrupt*"))
    text = log.read_text()
    assert "is locked" in text and f"pid {holder.pid}" in text, text


def test_a_lock_that_stays_ends_the_start_with_its_holder_named(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    epoch = crashed_outbox(path, 5)
    holder = hold_lock(path, 30.0)
    try:
        started = time.monotonic()
        with pytest.raises(OutboxLocked, match=f"pid {holder.pid}"):
            Outbox(path, lock_wait_s=2.0, busy_timeout_s=0.5)
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait(10)
    assert not list(tmp_path.glob("*corrupt*"))
    box = Outbox(path)  # the lock gone, everything is still there
    assert box.epoch == epoch and [e.seq for e in box.pending()] == list(range(5))
    box.close()


# -- a damaged file ------------------------------------------------------------------


def varint(buf: bytes, at: int) -> tuple[int, int]:
    """SQLite's variable-length integer at `at`: (value, next offset)."""
    value = 0
    for i in range(8):
        byte = buf[at + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    return (value << 8) | buf[at + 8], at + 9


def rowids_on_leaf(page: bytes) -> list[int]:
    """The rowids of a table b-tree leaf page (type 13), read from its cell pointers."""
    assert page[0] == 0x0D, f"not a table leaf page: type {page[0]}"
    cells = int.from_bytes(page[3:5], "big")
    out = []
    for i in range(cells):
        at = int.from_bytes(page[8 + 2 * i : 10 + 2 * i], "big")
        _, at = varint(page, at)  # payload size
        rowid, _ = varint(page, at)
        out.append(rowid)
    return out


def corrupt_a_leaf(path: Path) -> set[int]:
    """Garble one leaf page of `events` in the middle; returns the rowids it held."""
    with sqlite3.connect(path) as db:
        page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        leaves = [
            p
            for (p,) in db.execute(
                "SELECT pageno FROM dbstat WHERE name = 'events' AND pagetype = 'leaf' "
                "ORDER BY pageno"
            )
        ]
    db.close()
    victim = leaves[len(leaves) // 2]
    with path.open("r+b") as fh:
        fh.seek((victim - 1) * page_size)
        lost = set(rowids_on_leaf(fh.read(page_size)))
        fh.seek((victim - 1) * page_size)
        fh.write(b"\xa5" * page_size)
    return lost


WAL_WRITER = """
    import json, os, sqlite3, sys
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("BEGIN IMMEDIATE")
    first = int(db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0])
    for seq in range(first, first + 100):
        body = {"ts": "2026-11-23T11:00:00.000Z", "door": "door-b", "dir": "out"}
        db.execute("INSERT INTO events (seq, kind, body) VALUES (?, 'crossing', ?)",
                   (seq, json.dumps(body)))
    db.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (str(first + 100),))
    db.execute("COMMIT")
    os._exit(0)  # no checkpoint: these 100 are in the -wal file only
"""


@pytest.mark.services
def test_a_corrupted_page_costs_only_its_own_rows(mosquitto: Mosquitto, tmp_path: Path) -> None:
    settings = edge_settings(
        tmp_path, mosquitto.port, presence=[], publish={"health_interval_s": 30}
    )
    path = settings.outbox_path
    box = Outbox(path)
    box.append([crossing(i) for i in range(2000)])
    old_epoch = box.epoch
    box.close()  # checkpointed: all 2,000 in the main file
    lost = corrupt_a_leaf(path)  # the SD card garbled one page
    assert 10 < len(lost) < 200
    child = run_child(WAL_WRITER, str(path))
    child.communicate(timeout=60)
    assert child.returncode == 0 and Path(f"{path}-wal").stat().st_size > 0
    expected = (set(range(2000)) - lost) | set(range(2000, 2100))

    rec = Recorder(mosquitto.port, f"{PREFIX}/crossing")
    agent = OutboxAgent(settings)
    try:
        assert agent.outbox.epoch != old_epoch  # a new epoch for new events
        assert agent.outbox.depth == len(expected)
        agent.start()
        rec.wait_until(lambda: received(rec).get(old_epoch) == expected, timeout_s=30)
        rec.wait_until(lambda: agent.outbox.depth == 0)
        new = agent.outbox.append([crossing(0)])
        rec.wait_until(lambda: agent.outbox.epoch in received(rec))
    finally:
        agent.stop()
        rec.close()
    got = received(rec)
    assert got == {old_epoch: expected, agent.outbox.epoch: {new[0].seq}}
    # Their own times too: the collector's key (agent, ts + seq) is the same as before.
    sent = {
        e["seq"]: e["ts"]
        for m in rec.on("/crossing")
        if m.json()["epoch"] == old_epoch
        for e in m.json()["events"]
    }
    assert all(sent[s] == format_ts(T0 + s * 10) for s in expected if s < 2000)
    assert all(sent[s] == "2026-11-23T11:00:00.000Z" for s in range(2000, 2100))
    kept = [p for p in path.parent.iterdir() if p.name.startswith("outbox.sqlite3.corrupt-")]
    assert len([p for p in kept if p.name.rsplit("-", 1)[-1].isdigit()]) == 1  # kept aside


def test_garbage_instead_of_a_database_is_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    path.write_bytes(b"this is not a database" * 400)
    box = Outbox(path)
    assert box.depth == 0 and box.next_seq == 0
    aside = list(tmp_path.glob("o.sqlite3.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"this is not a database" * 400
    box.close()


def test_salvaged_events_keep_their_identity_across_a_second_damage(tmp_path: Path) -> None:
    """Rows salvaged once carry their origin, so a second salvage sends them unchanged."""
    path = tmp_path / "o.sqlite3"
    box = Outbox(path)
    box.append([crossing(i) for i in range(2000)])
    first_epoch = box.epoch
    box.close()
    lost = corrupt_a_leaf(path)
    second = Outbox(path)
    local_to_origin = {e.seq: e.wire()["seq"] for e in second.pending(limit=10_000)}
    assert sorted(local_to_origin.values()) == sorted(set(range(2000)) - lost)
    assert {e.origin_epoch for e in second.pending(limit=10_000)} == {first_epoch}
    second_epoch = second.epoch
    second.close()
    lost_again = corrupt_a_leaf(path)
    assert lost_again <= set(local_to_origin)
    third = Outbox(path)
    assert third.epoch not in (first_epoch, second_epoch)
    identities = {(e.origin_epoch, e.wire()["seq"]) for e in third.pending(limit=10_000)}
    third.close()
    assert identities == {
        (first_epoch, origin)
        for local, origin in local_to_origin.items()
        if local not in lost_again
    }
