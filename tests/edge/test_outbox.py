"""The durable outbox: numbering, durability across reopen, bound, corruption."""

from __future__ import annotations

from pathlib import Path

from footfall_edge.outbox import NewEvent, Outbox


def crossing(door: str = "d", dir_: str = "in") -> NewEvent:
    return NewEvent("crossing", {"ts": "2026-11-23T10:15:02.120Z", "door": door, "dir": dir_})


def test_seq_and_epoch_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path)
    first = box.append([crossing(), crossing(dir_="out")])
    assert [e.seq for e in first] == [0, 1]
    epoch = box.epoch
    box.ack([0])
    box.close()

    box = Outbox(path)
    assert box.epoch == epoch
    assert [e.seq for e in box.pending()] == [1]  # unacknowledged survives
    assert [e.seq for e in box.append([crossing()])] == [2]  # never reused
    assert box.totals() == {"d": {"in": 2, "out": 1}}
    assert box.depth == 2


def test_pending_is_in_order_and_pages(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    box.append([crossing() for _ in range(10)])
    assert [e.seq for e in box.pending(after_seq=3, limit=4)] == [4, 5, 6, 7]
    assert box.pending(limit=1)[0].wire() == {
        "seq": 0,
        "ts": "2026-11-23T10:15:02.120Z",
        "door": "d",
        "dir": "in",
    }


def test_full_store_drops_oldest_and_counts_them(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", max_events=100)
    for _ in range(13):
        box.append([crossing() for _ in range(10)])
    assert box.depth == 100
    assert box.dropped == 30
    assert box.pending(limit=1)[0].seq == 30
    box.close()
    again = Outbox(tmp_path / "o.sqlite3", max_events=100)
    assert again.dropped == 30 and again.depth == 100


def test_ack_twice_is_harmless(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    box.append([crossing(), crossing()])
    assert box.ack([0, 1]) == 2
    assert box.ack([0, 1]) == 0
    assert box.depth == 0


def test_unreadable_store_is_kept_aside_and_a_new_epoch_starts(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    box = Outbox(path)
    assert box.depth == 0 and box.next_seq == 0
    assert list(tmp_path.glob("o.sqlite3.corrupt-*"))


def test_provisional_times_are_corrected_for_this_boot_only(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    late = NewEvent(
        "crossing", {"ts": "2026-11-23T09:00:00.000Z", "door": "d", "dir": "in"}, mono_ms=5_000
    )
    box.append([late], boot="boot-a")
    box.append([late], boot="boot-b")  # an earlier boot's monotonic clock: meaningless now
    assert [e.provisional for e in box.pending()] == [True, True]
    assert box.provisional("boot-b") == 1
    # Wall clock now 11:00:00.000 at monotonic 65 s: the event was 60 s earlier.
    assert box.fix_times("boot-b", 1_795_428_000_000 + 3_600_000, 65_000) == 1
    first, second = box.pending()
    assert first.body["ts"] == "2026-11-23T09:00:00.000Z" and first.provisional
    assert second.body["ts"] == "2026-11-23T10:59:00.000Z" and not second.provisional
