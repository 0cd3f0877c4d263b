"""The outbox's SQLite file: its tables and the columns later versions added, the
pragmas that make a commit survive a power cut, and telling SQLite's errors apart (a lock
someone else holds is waited for; only a file that fails the integrity check is damage),
so that `outbox.Outbox` decides what to do and never guesses from error texts itself."""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Literal

Kind = Literal["crossing", "presence", "fault"]
KINDS: tuple[Kind, ...] = ("crossing", "presence", "fault")

LOCK_WAIT_S = 120.0
"""How long the agent waits at start for a lock another process holds; then it stops
with an error naming the holder (systemd starts it again), never touching the file."""
BUSY_TIMEOUT_S = 5.0

SCHEMA = """
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
ADDED_COLUMNS = (
    ("boot", "TEXT"),
    ("mono", "INTEGER"),
    ("origin_epoch", "TEXT"),
    ("origin_seq", "INTEGER"),
)
"""Columns added after 0.1.0, added to an older store when it is opened."""


class OutboxLocked(RuntimeError):
    """Another process held the outbox locked for longer than the agent waits at start.
    Nothing was changed: the store is intact and is read again at the next start."""


class Damaged(sqlite3.DatabaseError):
    """The store failed SQLite's own integrity check."""


# SQLite's primary result codes (the low byte of an extended code).
_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED: someone else holds a lock, wait
_DAMAGE_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB: the file itself is bad


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def is_busy(exc: sqlite3.Error) -> bool:
    code = _code(exc)
    if code is not None:
        return code in _BUSY_CODES
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def is_damage(exc: sqlite3.Error) -> bool:
    return isinstance(exc, Damaged) or _code(exc) in _DAMAGE_CODES


def open_db(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """Open (or create) the store: WAL, fsync on commit, integrity checked, tables and
    columns of this version added, and the meta rows (a new random epoch) if missing."""
    db = sqlite3.connect(
        path, check_same_thread=False, isolation_level=None, timeout=busy_timeout_s
    )
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a committed event survives a power cut
        check = db.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            raise Damaged("quick_check: " + "; ".join(str(r[0]) for r in check[:5]))
        db.executescript(SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
        for column, kind in ADDED_COLUMNS:
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


def check_file(path: Path, busy_timeout_s: float) -> str | sqlite3.Error:
    """SQLite's verdict on the file ("ok" or its problems), or the error asking."""
    try:
        db = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    except sqlite3.Error as exc:
        return exc
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
        return "ok" if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:5])
    except sqlite3.Error as exc:
        return exc
    finally:
        db.close()


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
