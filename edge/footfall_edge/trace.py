"""Sensor traces (docs/spec.md §1): CSV `t_ms,door,beam,blocked`, for replaying recorded or
simulated door data through the detector in virtual time."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from footfall_contract.topics import ID_PATTERN

from .detection import Beam, DetectorConfig, DoorDetector, DoorEvent, Fault

HEADER = ("t_ms", "door", "beam", "blocked")
_DOOR = re.compile(ID_PATTERN)


class TraceError(ValueError):
    """A trace that cannot be read; the message names the file, line and reason."""


@dataclass(frozen=True)
class TraceRow:
    t_ms: int
    door: str
    beam: Beam
    blocked: bool


def read_trace(source: Path | str | TextIO) -> Iterator[TraceRow]:
    """Rows of a trace file, checked as they are read (time must not go backwards)."""
    if isinstance(source, Path | str):
        name = str(source)
        try:
            handle: TextIO = open(source, newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise TraceError(f"{name}: cannot open: {exc.strerror}") from None
    else:
        name = getattr(source, "name", "<trace>")
        handle = source
    with handle:
        yield from _rows(handle, name)


def _rows(handle: TextIO, name: str) -> Iterator[TraceRow]:
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        raise TraceError(f"{name}: empty file, expected the header {','.join(HEADER)}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise TraceError(f"{name}:1: {exc}") from None
    if tuple(h.strip() for h in header) != HEADER:
        raise TraceError(f"{name}:1: header must be {','.join(HEADER)}, got {','.join(header)}")
    last = 0
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 4:
                raise TraceError(f"{name}:{line}: expected 4 fields, got {len(row)}")
            t_text, door, beam, blocked = (c.strip() for c in row)
            try:
                t_ms = int(t_text)
            except ValueError:
                raise TraceError(f"{name}:{line}: t_ms {t_text!r} is not an integer") from None
            if t_ms < 0:
                raise TraceError(f"{name}:{line}: t_ms {t_ms} is negative")
            if t_ms < last:
                raise TraceError(f"{name}:{line}: t_ms {t_ms} goes back in time (after {last})")
            if not _DOOR.fullmatch(door):
                raise TraceError(f"{name}:{line}: door {door!r} must match [a-z0-9-]+")
            if beam not in ("outer", "inner"):
                raise TraceError(f"{name}:{line}: beam {beam!r} must be 'outer' or 'inner'")
            if blocked not in ("0", "1"):
                raise TraceError(f"{name}:{line}: blocked {blocked!r} must be 0 or 1")
            last = t_ms
            yield TraceRow(t_ms, door, beam, blocked == "1")  # type: ignore[arg-type]
    except (csv.Error, UnicodeDecodeError) as exc:
        raise TraceError(f"{name}:{reader.line_num}: {exc}") from None


def write_trace(rows: Iterable[TraceRow], target: TextIO) -> None:
    writer = csv.writer(target, lineterminator="\n")
    writer.writerow(HEADER)
    for r in rows:
        writer.writerow((r.t_ms, r.door, r.beam, int(r.blocked)))


def trace_text(rows: Iterable[TraceRow]) -> str:
    buf = io.StringIO()
    write_trace(rows, buf)
    return buf.getvalue()


@dataclass
class ReplayResult:
    doors: dict[str, dict[str, int]]
    faults: list[Fault]

    def as_json(self) -> dict[str, object]:
        """The object `footfall-edge replay` prints (docs/spec.md §1)."""
        return {
            "doors": self.doors,
            "faults": [
                {
                    "t_ms": f.t_ms,
                    "door": f.door,
                    "source": f.source,
                    "fault": f.fault,
                    "active": f.active,
                }
                for f in self.faults
            ],
        }


def replay(
    rows: Iterable[TraceRow],
    config: DetectorConfig | None = None,
    door_configs: dict[str, DetectorConfig] | None = None,
) -> ReplayResult:
    """Run a trace through one detector per door, in virtual time."""
    detectors: dict[str, DoorDetector] = {}
    result = ReplayResult(doors={}, faults=[])
    last = 0

    def take(events: list[DoorEvent]) -> None:
        for e in events:
            if isinstance(e, Fault):
                result.faults.append(e)
            else:
                result.doors[e.door][e.dir] += 1

    for row in rows:
        det = detectors.get(row.door)
        if det is None:
            cfg = (door_configs or {}).get(row.door, config)
            det = detectors[row.door] = DoorDetector(row.door, cfg)
            result.doors[row.door] = {"in": 0, "out": 0}
        last = row.t_ms  # doors are independent; each one's time-outs settle at the end
        take(det.feed(row.t_ms, row.beam, row.blocked))
    for det in detectors.values():
        take(det.finish(last))
    result.faults.sort(key=lambda f: (f.t_ms, f.door, f.source))
    return result
