"""The durable outbox: every event is committed to SQLite (WAL, fsync on commit) before
it is published and deleted only when the broker has acknowledged it, so Wi-Fi drops,
broker restarts and power cuts lose nothing.

The store also owns the agent's identity over time: the `epoch` (a random id made with
the store) and `seq` (one counter for events of every kind, never reused within an
epoch, persisted in the same transaction as the events it numbers), and the times of
events stamped before the clock was synchronized (`seal`, `fix_times`).

A lock held by another process is waited for, never taken for damage. Only a store that
fails SQLite's integrity check is moved aside (with its -wal and -shm), and every event
still readable in it is copied into the new store with its own epoch and seq
(`outbox_salvage`). The file itself, its tables and SQLite's errors: `outbox_store`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from footfall_contract.timefmt import format_ts

from .outbox_salvage import Salvage, SalvagedRow, quarantine, salvage
from .outbox_store import (
    BUSY_TIMEOUT_S,
    KINDS,
    LOCK_WAIT_S,
    Damaged,
    Kind,
    OutboxLocked,
    check_file,
    is_busy,
    is_damage,
    lock_holders,
    open_db,
)

__all__ = [
    "BUSY_TIMEOUT_S",
    "KINDS",
    "LOCK_WAIT_S",
    "Kind",
    "NewEvent",
    "Outbox",
    "OutboxLocked",
    "Salvage",
    "SalvagedRow",
    "StoredEvent",
    "lock_holders",
    "salvage",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewEvent:
    kind: Kind
    body: dict[str, Any]  # the event's fields except seq, as they go on the wire
    mono_ms: int | None = None  # set when `ts` was taken from a clock not yet synchronized


@dataclass(frozen=True)
class StoredEvent:
    seq: int  # the store's own key (and the seq on the wire unless salvaged)
    kind: Kind
    body: dict[str, Any]
    provisional: bool = False  # its ts came from a clock not yet synchronized
    origin_epoch: str | None = None  # salvaged from a damaged store: its epoch there
    origin_seq: int | None = None  # ... and its seq there, which it keeps on the wire

    def wire(self) -> dict[str, Any]:
        seq = self.seq if self.origin_seq is None else self.origin_seq
        return {"seq": seq, **self.body}


class Outbox:
    def __init__(
        self,
        path: Path,
        max_events: int = 2_000_000,
        lock_wait_s: float = LOCK_WAIT_S,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.path = path
        self.max_events = max_events
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = self._open_waiting(lock_wait_s)
        self.epoch = self._meta("epoch")
        self._next_seq = int(self._meta("next_seq"))
        self._dropped = int(self._meta("dropped"))
        self._depth = int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def _open_waiting(self, lock_wait_s: float) -> sqlite3.Connection:
        """Open the store. A lock or busy error is someone else's transaction: wait for
        it (a bounded time). Only a store that fails the integrity check is moved aside,
        and what is still readable in it is kept."""
        deadline = time.monotonic() + lock_wait_s
        pause = 0.5
        while True:
            try:
                return open_db(self.path, self._busy_timeout_s)
            except sqlite3.DatabaseError as exc:
                error: sqlite3.Error = exc
            if not is_busy(error) and not is_damage(error):
                # Some other failure (I/O, permissions, disk full): is the file bad?
                verdict = check_file(self.path, self._busy_timeout_s)
                if isinstance(verdict, sqlite3.Error):
                    error = verdict if is_busy(verdict) or is_damage(verdict) else error
                elif verdict != "ok":
                    error = Damaged(verdict)
            if is_damage(error):
                return quarantine(self.path, error, self._busy_timeout_s)
            if not is_busy(error):
                raise error  # not a damaged file: no reason to move it aside
            holders = ", ".join(lock_holders(self.path)) or "a process this user cannot see"
            left = deadline - time.monotonic()
            if left <= 0:
                raise OutboxLocked(
                    f"outbox {self.path} is still locked by {holders} after {lock_wait_s:.0f} s "
                    f"({error}); nothing was changed and its events are kept: stop that "
                    "process, then start again"
                ) from error
            log.warning(
                "outbox %s is locked by %s (%s); waiting, up to %.0f s more",
                self.path,
                holders,
                error,
                left,
            )
            time.sleep(min(pause, left))
            pause = min(pause * 2, 10.0)

    def _meta(self, key: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0])

    # -- writing ---------------------------------------------------------------------

    def append(self, events: Sequence[NewEvent], boot: str = "") -> list[StoredEvent]:
        """Number and commit events in one transaction; drops the oldest when full.
        `boot` identifies the boot whose monotonic clock `mono_ms` refers to."""
        if not events:
            return []
        with self._lock:
            first = self._next_seq
            stored = [
                StoredEvent(first + i, e.kind, e.body, e.mono_ms is not None)
                for i, e in enumerate(events)
            ]
            overflow = max(0, self._depth + len(stored) - self.max_events)
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT INTO events (seq, kind, body, boot, mono) VALUES (?, ?, ?, ?, ?)",
                    [
                        (
                            s.seq,
                            s.kind,
                            json.dumps(s.body, separators=(",", ":")),
                            boot if e.mono_ms is not None else None,
                            e.mono_ms,
                        )
                        for s, e in zip(stored, events, strict=True)
                    ],
                )
                for s in stored:
                    if s.kind == "crossing":
                        db.execute(
                            "INSERT INTO totals VALUES (?, ?, 1) "
                            "ON CONFLICT (door, dir) DO UPDATE SET n = n + 1",
                            (s.body["door"], s.body["dir"]),
                        )
                if overflow:
                    db.execute(
                        "DELETE FROM events WHERE seq IN "
                        "(SELECT seq FROM events ORDER BY seq LIMIT ?)",
                        (overflow,),
                    )
                    db.execute(
                        "UPDATE meta SET value = ? WHERE key = 'dropped'",
                        (str(self._dropped + overflow),),
                    )
                db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'next_seq'",
                    (str(first + len(stored)),),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._next_seq = first + len(stored)
            self._depth += len(stored) - overflow
            if overflow:
                self._dropped += overflow
                log.warning(
                    "outbox full (%d events): dropped the %d oldest, %d in all",
                    self.max_events,
                    overflow,
                    self._dropped,
                )
            return stored

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete events the broker has acknowledged; returns how many were still here."""
        keys = [(s,) for s in seqs]
        if not keys:
            return 0
        with self._lock:
            db = self._db
            # No fsync for deletes: one lost in a power cut only means the event is sent
            # again, and the collector does not count it twice: its key is
            # (agent, ts + seq mod 10^6 ns), the same for every delivery.
            db.execute("PRAGMA synchronous=NORMAL")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    cur = db.executemany("DELETE FROM events WHERE seq = ?", keys)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            finally:
                db.execute("PRAGMA synchronous=FULL")
            removed = max(cur.rowcount, 0)
            self._depth -= removed
            return removed

    # -- reading ---------------------------------------------------------------------

    def pending(self, after_seq: int = -1, limit: int = 1000) -> list[StoredEvent]:
        """Unacknowledged events in seq order, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, body, mono IS NOT NULL, origin_epoch, origin_seq FROM events "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [
            StoredEvent(seq, kind, json.loads(body), bool(p), origin_epoch, origin_seq)
            for seq, kind, body, p, origin_epoch, origin_seq in rows
        ]

    def seal(self, events: Sequence[StoredEvent]) -> list[StoredEvent]:
        """Before provisional events are first sent, fix their times for good and flag
        them `clock_unsynced`: once published, an event's ts is part of its identity at
        the collector (agent, ts + seq), so a later `fix_times` must not change it, nor
        may a restart after the clock is set send it again with another time. Returns
        the events as they are now stored."""
        todo = [e.seq for e in events if e.provisional]
        if not todo:
            return list(events)
        with self._lock:
            db = self._db
            now: dict[int, tuple[dict[str, Any], bool]] = {}
            for i in range(0, len(todo), 500):
                chunk = todo[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for seq, body, mono in db.execute(
                    f"SELECT seq, body, mono FROM events WHERE seq IN ({marks})", chunk
                ):
                    now[seq] = (json.loads(body), mono is not None)
            updates = []
            for seq, (body, provisional) in now.items():
                if provisional:  # not corrected meanwhile: sent with the time it has
                    body["clock_unsynced"] = True
                    updates.append((json.dumps(body, separators=(",", ":")), seq))
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("UPDATE events SET body = ?, mono = NULL WHERE seq = ?", updates)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        out = []
        for e in events:
            if e.seq in now:
                out.append(
                    StoredEvent(e.seq, e.kind, now[e.seq][0], False, e.origin_epoch, e.origin_seq)
                )
            elif not e.provisional:
                out.append(e)
            # else: acknowledged and deleted meanwhile: nothing to send
        return out

    def provisional(self, boot: str) -> int:
        """Events of this boot whose times wait for the clock."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM events WHERE mono IS NOT NULL AND boot = ?", (boot,)
            ).fetchone()
        return int(row[0])

    def fix_times(self, boot: str, wall_ms: int, mono_ms: int) -> int:
        """The clock is synchronized now: re-stamp this boot's provisional events from
        their monotonic times. Events of an earlier boot keep the time they have."""
        with self._lock:
            db = self._db
            rows = db.execute(
                "SELECT seq, body, mono FROM events WHERE mono IS NOT NULL AND boot = ?", (boot,)
            ).fetchall()
            updates = []
            for seq, body, mono in rows:
                event = json.loads(body)
                event["ts"] = format_ts(wall_ms - (mono_ms - mono))
                updates.append((json.dumps(event, separators=(",", ":")), seq))
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("UPDATE events SET body = ?, mono = NULL WHERE seq = ?", updates)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return len(updates)

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def totals(self) -> dict[str, dict[str, int]]:
        """Crossings per door since the epoch began."""
        with self._lock:
            rows = self._db.execute("SELECT door, dir, n FROM totals").fetchall()
        out: dict[str, dict[str, int]] = {}
        for door, dir_, n in rows:
            out.setdefault(door, {"in": 0, "out": 0})[dir_] = n
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
