"""Engine state and the outbox in one SQLite file, written in one transaction.

That single transaction is the whole exactly-once story: the engine's new state and the
messages it decided to send are saved together, and only then is the MQTT message that
caused them acknowledged. After a crash the engine resumes from the saved state (so it
does not decide again what it already decided) and the outbox still holds whatever had
not gone out (so nothing decided is lost). An entry is marked sent right after its
receiver accepted it; a crash in between is the one case that sends an entry twice, and
each carries a stable id (e-mail Message-ID, webhook `Idempotency-Key`) for that case.

The state is kept as parts by scope key (`state_part`: `alert/{id}`, `fault/{key}`,
`agent/{id}`, ...), and a commit writes only the parts that changed: saving after one
message costs what that message changed, not the size of the whole state. A file of the
version that kept the state as one document (`state`, id 1) is read once and then
replaced by parts in the first commit.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from footfall_runtime.config import ConfigError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state_part (
    key TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    saved_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_ms INTEGER NOT NULL,
    last_error TEXT,
    sent_ms INTEGER,
    failed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_open ON outbox (channel, id) WHERE sent_ms IS NULL AND failed = 0;
"""


@dataclass(frozen=True)
class Entry:
    id: int
    channel: str
    body: dict[str, Any]
    created_ms: int
    attempts: int
    next_ms: int


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives a power cut, because the MQTT message behind it is
        # acknowledged right after and the broker forgets it.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.changed = threading.Condition()
        self.version = 0
        """Bumped (under `changed`) by every commit that adds entries: a delivery loop
        that read it before looking for work cannot miss a commit made meanwhile."""

    def wait_for_change(self, seen: int, timeout_s: float) -> None:
        """Until a commit after version `seen` (or the timeout)."""
        with self.changed:
            self.changed.wait_for(lambda: self.version != seen, timeout_s)

    def wake(self) -> None:
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def load_parts(self) -> dict[str, Any]:
        """key -> saved value. A body that is not JSON comes back as its text (logged):
        the engine then drops that part, rather than the whole state failing to load."""
        with self._lock:
            rows = self._db.execute("SELECT key, body FROM state_part").fetchall()
        out: dict[str, Any] = {}
        for key, body in rows:
            try:
                out[key] = json.loads(body)
            except (ValueError, TypeError) as exc:
                log.warning(
                    "state part %s in %s is not JSON (%s): dropping it", key, self.path, exc
                )
                out[key] = str(body)
        return out

    def load_legacy(self) -> Any:
        """The state of the version that saved it as one document, if this file has one
        (its text if it is not JSON); None otherwise."""
        with self._lock:
            table = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'state'"
            ).fetchone()
            row = (
                self._db.execute("SELECT body FROM state WHERE id = 1").fetchone()
                if table
                else None
            )
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except (ValueError, TypeError):
            return str(row[0])

    def commit(
        self,
        changes: Mapping[str, Any],
        entries: Iterable[tuple[str, Mapping[str, Any]]],
        now_ms: int,
        drop_legacy: bool = False,
    ) -> int:
        """Save the changed state parts (key -> value, None: delete it) and append entries
        (channel, body), atomically; `drop_legacy`: and delete the one-document state."""
        rows = [
            (ch, json.dumps(body, separators=(",", ":")), now_ms, now_ms) for ch, body in entries
        ]
        upserts = [
            (key, json.dumps(value, separators=(",", ":")), now_ms)
            for key, value in changes.items()
            if value is not None
        ]
        deletes = [(key,) for key, value in changes.items() if value is None]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO state_part (key, body, saved_ms) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET body = excluded.body, "
                    "saved_ms = excluded.saved_ms",
                    upserts,
                )
                self._db.executemany("DELETE FROM state_part WHERE key = ?", deletes)
                if drop_legacy:
                    self._db.execute("DELETE FROM state")
                self._db.executemany(
                    "INSERT INTO outbox (channel, body, created_ms, next_ms) VALUES (?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if rows:
            with self.changed:
                self.version += 1
                self.changed.notify_all()
        return len(rows)

    def due(self, channel: str, now_ms: int, limit: int = 1) -> tuple[list[Entry], int | None]:
        """The oldest open entries of a channel, in order, if the first is due; else
        ([], when it will be). Later entries wait behind a failing one, so a receiver
        never gets a "resolved" before its "firing"."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, channel, body, created_ms, attempts, next_ms FROM outbox "
                "WHERE channel = ? AND sent_ms IS NULL AND failed = 0 ORDER BY id LIMIT ?",
                (channel, limit),
            ).fetchall()
        if not rows:
            return [], None
        if rows[0][5] > now_ms:
            return [], int(rows[0][5])
        return [Entry(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5]) for r in rows], None

    def mark_sent(self, ids: list[int], now_ms: int) -> None:
        with self._lock:
            self._db.executemany(
                "UPDATE outbox SET sent_ms = ?, attempts = attempts + 1 WHERE id = ?",
                [(now_ms, i) for i in ids],
            )

    def mark_retry(self, ids: list[int], error: str, next_ms: int) -> None:
        with self._lock:
            self._db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_ms = ? "
                "WHERE id = ?",
                [(error[:1000], next_ms, i) for i in ids],
            )

    def mark_failed(self, ids: list[int], error: str) -> None:
        with self._lock:
            self._db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, failed = 1 "
                "WHERE id = ?",
                [(error[:1000], i) for i in ids],
            )

    def channels(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT channel FROM outbox").fetchall()
        return [r[0] for r in rows]

    def pending(self) -> dict[str, tuple[int, int | None]]:
        """channel -> (open entries, created_ms of the oldest)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT channel, count(*), min(created_ms) FROM outbox "
                "WHERE sent_ms IS NULL AND failed = 0 GROUP BY channel"
            ).fetchall()
        return {r[0]: (int(r[1]), r[2]) for r in rows}

    def counts(self) -> dict[str, int]:
        with self._lock:
            sent, failed, open_ = self._db.execute(
                "SELECT count(sent_ms), sum(failed), "
                "sum(CASE WHEN sent_ms IS NULL AND failed = 0 THEN 1 ELSE 0 END) FROM outbox"
            ).fetchone()
        return {"sent": sent or 0, "failed": failed or 0, "open": open_ or 0}

    def entries(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Every entry (tests, and `footfall-alerts` operators looking at the file)."""
        q = "SELECT id, channel, body, attempts, sent_ms, failed, last_error FROM outbox"
        args: tuple[str, ...] = ()
        if channel is not None:
            q += " WHERE channel = ?"
            args = (channel,)
        with self._lock:
            rows = self._db.execute(q + " ORDER BY id", args).fetchall()
        return [
            {
                "id": r[0],
                "channel": r[1],
                "body": json.loads(r[2]),
                "attempts": r[3],
                "sent_ms": r[4],
                "failed": bool(r[5]),
                "last_error": r[6],
            }
            for r in rows
        ]

    def prune(self, before_ms: int) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM outbox WHERE sent_ms IS NOT NULL AND sent_ms < ?", (before_ms,)
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(state_dir: Path, site: str) -> Store:
    """The site's file in `state_dir`; ConfigError says what to set when it cannot be
    opened (a folder this user may not write is a setting, not a crash)."""
    path = Path(state_dir) / f"{site}.sqlite3"
    try:
        return Store(path)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            f"state_dir: cannot keep the alert state in {path}: {exc} "
            "(set FOOTFALL_STATE_DIR to a folder this user may write)"
        ) from None
