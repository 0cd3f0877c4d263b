"""A damaged outbox loses only what is really unreadable: the store that failed SQLite's
integrity check is moved aside (never deleted: someone may want to look at it), a new
store with a new epoch takes its place so no seq of the old one is reused, and every
event still readable in the old one is copied in, keeping the epoch and seq it had on
the wire so that the collector does not count one it already has twice."""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .outbox_store import BUSY_TIMEOUT_S, KINDS, Kind, open_db

log = logging.getLogger("footfall_edge.outbox")  # one logger name for the outbox's lines


@dataclass(frozen=True)
class SalvagedRow:
    seq: int
    kind: Kind
    body: str
    boot: str | None
    mono: int | None
    epoch: str | None  # None: the damaged store's own epoch


@dataclass(frozen=True)
class Salvage:
    epoch: str | None  # the damaged store's epoch, when readable
    rows: list[SalvagedRow]
    unreadable: int  # seqs that could not be read


def salvage(path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Salvage:
    """Every event still readable in a damaged store, in seq order. SQLite stops a scan
    at the first damaged page; the scan goes on past it one seq at a time (a lookup by
    seq does not touch the other leaves), up to the highest seq the store could hold."""
    try:
        db = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    except sqlite3.Error:
        return Salvage(None, [], 0)
    try:
        epoch = _read_value(db, "SELECT value FROM meta WHERE key = 'epoch'")
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
        except sqlite3.Error:
            columns = set()
        if not {"seq", "kind", "body"} <= columns:
            return Salvage(None if epoch is None else str(epoch), [], 0)
        extra = [
            c if c in columns else "NULL" for c in ("boot", "mono", "origin_epoch", "origin_seq")
        ]
        select = f"SELECT seq, kind, body, {', '.join(extra)} FROM events"
        tops = [
            _read_value(db, "SELECT max(seq) FROM events"),
            _read_value(db, "SELECT CAST(value AS INTEGER) - 1 FROM meta WHERE key = 'next_seq'"),
        ]
        raw: list[tuple[Any, ...]] = []
        last, unreadable = -1, 0
        while True:
            try:
                for row in db.execute(f"{select} WHERE seq > ? ORDER BY seq", (last,)):
                    raw.append(row)
                    last = row[0]
                break  # the end of the table
            except sqlite3.DatabaseError:
                pass
            known = [t for t in tops if isinstance(t, int)]
            top = max(known) if known else last + 100_000
            while last < top:
                last += 1
                try:
                    row = db.execute(f"{select} WHERE seq = ?", (last,)).fetchone()
                except sqlite3.DatabaseError:
                    unreadable += 1
                    continue
                if row is not None:
                    raw.append(row)
                    break
            else:
                break
    finally:
        db.close()
    rows = []
    for seq, kind, body, boot, mono, origin_epoch, origin_seq in raw:
        try:
            ok = kind in KINDS and isinstance(json.loads(body), dict)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            unreadable += 1
            continue
        rows.append(
            SalvagedRow(
                seq if origin_seq is None else int(origin_seq),
                kind,
                body,
                boot,
                mono,
                origin_epoch,
            )
        )
    return Salvage(None if epoch is None else str(epoch), rows, unreadable)


def _read_value(db: sqlite3.Connection, query: str) -> Any:
    try:
        row = db.execute(query).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else row[0]


def quarantine(path: Path, why: sqlite3.Error, busy_timeout_s: float) -> sqlite3.Connection:
    """Move the damaged store aside with its -wal and -shm (the WAL holds the latest
    commits), start a new store with a new epoch, so that no seq of the old one is
    ever reused, and copy every readable event into it with its own epoch and seq:
    the collector keys an event by its time and seq, so one it already has is not
    counted again. Returns the new store, open."""
    stamp = int(time.time())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    while aside.exists():
        stamp += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            side.rename(Path(f"{aside}{suffix}"))
    log.error("outbox %s is damaged (%s); moved to %s", path, why, aside)
    found = salvage(aside, busy_timeout_s)
    db = open_db(path, busy_timeout_s)
    if not found.rows:
        log.error("nothing readable in %s; starting a new epoch", aside)
        return db
    fallback = found.epoch
    if fallback is None:
        fallback = f"salvaged-{secrets.token_hex(6)}"
        log.error("the epoch of %s is unreadable: its events go out as %s", aside, fallback)
    first = int(db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0])
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(
            "INSERT INTO events (seq, kind, body, boot, mono, origin_epoch, origin_seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (first + i, r.kind, r.body, r.boot, r.mono, r.epoch or fallback, r.seq)
                for i, r in enumerate(found.rows)
            ],
        )
        db.execute(
            "UPDATE meta SET value = ? WHERE key = 'next_seq'",
            (str(first + len(found.rows)),),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        db.close()
        raise
    log.error(
        "salvaged %d events from %s into a new store, each with its own epoch and seq; "
        "%d seqs unreadable",
        len(found.rows),
        aside,
        found.unreadable,
    )
    return db
