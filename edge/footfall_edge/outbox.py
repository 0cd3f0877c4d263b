"""The durable outbox: every event is committed to SQLite (WAL, fsync on commit) before
it is published and deleted only when the broker has acknowledged it, so Wi-Fi drops,
broker restarts and power cuts lose nothing.

The store also owns the agent's identity over time: the `epoch` (a random id made with
the store) and `seq` (one counter for events of every kind, never reused within an
epoch, persisted in the same transaction as the events it numbers).
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from footfall_contract.timefmt import format_ts

log = logging.getLogger(__name__)

Kind = Literal["crossing", "presence", "fault"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL,
    boot TEXT, mono INTEGER  -- set while `ts` waits for the clock to be synchronized
);
CREATE TABLE IF NOT EXISTS totals (
    door TEXT NOT NULL, dir TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (door, dir)
);
"""


@dataclass(frozen=True)
class NewEvent:
    kind: Kind
    body: dict[str, Any]  # the event's fields except seq, as they go on the wire
    mono_ms: int | None = None  # set when `ts` was taken from a clock not yet synchronized


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    kind: Kind
    body: dict[str, Any]
    provisional: bool = False  # its ts came from a clock not yet synchronized

    def wire(self) -> dict[str, Any]:
        return {"seq": self.seq, **self.body}


class Outbox:
    def __init__(self, path: Path, max_events: int = 2_000_000) -> None:
        self.path = path
        self.max_events = max_events
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open(path)
        except sqlite3.DatabaseError as exc:
            # A store the SD card mangled cannot be trusted; keep it for inspection and
            # start a new epoch, so no seq of the old one can ever be reused.
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            log.error(
                "outbox %s is unreadable (%s); moved to %s, starting a new epoch", path, exc, aside
            )
            path.rename(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self._db = self._open(path)
        self.epoch = self._meta("epoch")
        self._next_seq = int(self._meta("next_seq"))
        self._dropped = int(self._meta("dropped"))
        self._depth = int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a committed event survives a power cut
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
        for column, kind in (("boot", "TEXT"), ("mono", "INTEGER")):
            if column not in columns:  # a store made by 0.1.0 before these columns
                db.execute(f"ALTER TABLE events ADD COLUMN {column} {kind}")
        with db:
            db.execute("BEGIN IMMEDIATE")
            for key, value in (
                ("epoch", secrets.token_hex(8)),
                ("next_seq", "0"),
                ("dropped", "0"),
                ("created", str(int(time.time()))),
            ):
                db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
        check = db.execute("PRAGMA quick_check").fetchone()
        if not check or check[0] != "ok":
            db.close()
            raise sqlite3.DatabaseError(f"quick_check: {check[0] if check else 'no answer'}")
        return db

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
                "SELECT seq, kind, body, mono IS NOT NULL FROM events WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [StoredEvent(seq, kind, json.loads(body), bool(p)) for seq, kind, body, p in rows]

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
