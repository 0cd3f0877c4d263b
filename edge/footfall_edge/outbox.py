"""The durable outbox: every event is committed to SQLite (WAL, fsync on commit) before
it is published and deleted only when the broker has acknowledged it, so Wi-Fi drops,
broker restarts and power cuts lose nothing.

The store also owns the agent's identity over time: the `epoch` (a random id made with
the store) and `seq` (one counter for events of every kind, never reused within an
epoch, persisted in the same transaction as the events it numbers).

A lock held by another process is waited for, never taken for damage. Only a store that
fails SQLite's integrity check is moved aside (with its -wal and -shm), and every event
still readable in it is copied into the new store with its own epoch and seq.
"""

from __future__ import annotations

import json
import logging
import os
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

LOCK_WAIT_S = 120.0
"""How long the agent waits at start for a lock another process holds; then it stops
with an error naming the holder (systemd starts it again), never touching the file."""
BUSY_TIMEOUT_S = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL,
    boot TEXT, mono INTEGER,  -- set while `ts` waits for the clock to be synchronized
    origin_epoch TEXT, origin_seq INTEGER  -- set on events salvaged from a damaged store
);
CREATE TABLE IF NOT EXISTS totals (
    door TEXT NOT NULL, dir TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (door, dir)
);
"""
# Columns added after 0.1.0, added to an older store when it is opened.
_ADDED_COLUMNS = (
    ("boot", "TEXT"),
    ("mono", "INTEGER"),
    ("origin_epoch", "TEXT"),
    ("origin_seq", "INTEGER"),
)
KINDS: tuple[Kind, ...] = ("crossing", "presence", "fault")


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


class OutboxLocked(RuntimeError):
    """Another process held the outbox locked for longer than the agent waits at start.
    Nothing was changed: the store is intact and is read again at the next start."""


class _Damaged(sqlite3.DatabaseError):
    """The store failed SQLite's own integrity check."""


# SQLite's primary result codes (the low byte of an extended code).
_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED: someone else holds a lock, wait
_DAMAGE_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB: the file itself is bad


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _is_busy(exc: sqlite3.Error) -> bool:
    code = _code(exc)
    if code is not None:
        return code in _BUSY_CODES
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _is_damage(exc: sqlite3.Error) -> bool:
    return isinstance(exc, _Damaged) or _code(exc) in _DAMAGE_CODES


def lock_holders(path: Path) -> list[str]:
    """Other processes that have the store (or its -wal/-shm) open, as "pid N (command)":
    whom to ask when it stays locked. Only processes this user may inspect are seen."""
    targets = set()
    for name in (str(path), f"{path}-wal", f"{path}-shm"):
        try:
            st = os.stat(name)
        except OSError:
            continue
        targets.add((st.st_dev, st.st_ino))
    me = str(os.getpid())
    found = []
    try:
        procs = [p for p in Path("/proc").iterdir() if p.name.isdigit() and p.name != me]
    except OSError:
        return []
    for proc in procs:
        try:
            for fd in (proc / "fd").iterdir():
                try:
                    st = fd.stat()
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) in targets:
                    raw = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
                    command = " ".join(raw.decode(errors="replace").split())[:160]
                    found.append(f"pid {proc.name} ({command})")
                    break
        except OSError:
            continue
    return found


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
                return self._open(self.path)
            except sqlite3.DatabaseError as exc:
                error: sqlite3.Error = exc
            if not _is_busy(error) and not _is_damage(error):
                # Some other failure (I/O, permissions, disk full): is the file bad?
                verdict = self._check(self.path)
                if isinstance(verdict, sqlite3.Error):
                    error = verdict if _is_busy(verdict) or _is_damage(verdict) else error
                elif verdict != "ok":
                    error = _Damaged(verdict)
            if _is_damage(error):
                return self._quarantine(error)
            if not _is_busy(error):
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

    def _check(self, path: Path) -> str | sqlite3.Error:
        """SQLite's verdict on the file ("ok" or its problems), or the error asking."""
        try:
            db = sqlite3.connect(path, timeout=self._busy_timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            return exc
        try:
            rows = db.execute("PRAGMA quick_check").fetchall()
            return "ok" if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:5])
        except sqlite3.Error as exc:
            return exc
        finally:
            db.close()

    def _open(self, path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=self._busy_timeout_s
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a committed event survives a power cut
            check = db.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                raise _Damaged("quick_check: " + "; ".join(str(r[0]) for r in check[:5]))
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
            for column, kind in _ADDED_COLUMNS:
                if column not in columns:  # a store made by an earlier version
                    db.execute(f"ALTER TABLE events ADD COLUMN {column} {kind}")
            db.execute("BEGIN IMMEDIATE")
            try:
                for key, value in (
                    ("epoch", secrets.token_hex(8)),
                    ("next_seq", "0"),
                    ("dropped", "0"),
                    ("created", str(int(time.time()))),
                ):
                    db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except BaseException:
            db.close()
            raise
        return db

    def _quarantine(self, why: sqlite3.Error) -> sqlite3.Connection:
        """Move the damaged store aside with its -wal and -shm (the WAL holds the latest
        commits), start a new store with a new epoch, so that no seq of the old one is
        ever reused, and copy every readable event into it with its own epoch and seq:
        the collector keys an event by its time and seq, so one it already has is not
        counted again."""
        stamp = int(time.time())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        while aside.exists():
            stamp += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        self.path.rename(aside)
        for suffix in ("-wal", "-shm"):
            side = Path(f"{self.path}{suffix}")
            if side.exists():
                side.rename(Path(f"{aside}{suffix}"))
        log.error("outbox %s is damaged (%s); moved to %s", self.path, why, aside)
        found = salvage(aside, self._busy_timeout_s)
        db = self._open(self.path)
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
