"""Which shard serves a site (docs/spec.md, "Sites and shards"). A site's live state (its
occupancy, its daily reset, its alerts) must live in exactly one process at a time, so
the assignment is a pure function of the site id and the shard count: the same on every
machine and after every restart (SHA-256, never Python's per-process `hash()`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

_SHARD = re.compile(r"([1-9][0-9]*)/([1-9][0-9]*)")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`, both counted from 1 (`--shard 2/4`)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def serves(self, site_id: str) -> bool:
        return shard_of(site_id, self.count) == self.index

    @property
    def client_suffix(self) -> str:
        """`shard-2-of-4`: the part of a shard's MQTT client id that makes its persistent
        session its own, whichever machine it runs on."""
        return f"shard-{self.index}-of-{self.count}"


def client_id(program: str, site: str | None, shard: Shard | None) -> str:
    """The MQTT client id, and so the persistent session, of a server program
    (docs/spec.md, "Sites and shards"): `PROGRAM-SITE` for one site (`--site`),
    `PROGRAM-shard-K-of-N` for a shard of a folder, `PROGRAM-all` for a whole folder."""
    if site is not None:
        return f"{program}-{site}"
    return f"{program}-{shard.client_suffix if shard is not None else 'all'}"


def parse_shard(text: str) -> Shard:
    """`K/N` with 1 <= K <= N; ValueError says what is wrong."""
    m = _SHARD.fullmatch(text.strip())
    if not m:
        raise ValueError(f"shard {text!r} must be K/N, e.g. 2/4 (both whole numbers from 1)")
    index, count = int(m.group(1)), int(m.group(2))
    if index > count:
        raise ValueError(f"shard {text!r}: K must be at most N (there are {count} shards)")
    return Shard(index, count)


def shard_of(site_id: str, count: int) -> int:
    """The shard (1..count) that serves `site_id`."""
    if count < 1:
        raise ValueError(f"shard count must be at least 1, not {count}")
    digest = hashlib.sha256(site_id.encode("utf-8")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


def assign(site_ids: Iterable[str], count: int) -> dict[int, list[str]]:
    """Every shard's sites, sorted: what `--shard K/N` of each process will serve."""
    out: dict[int, list[str]] = {k: [] for k in range(1, count + 1)}
    for site_id in sorted(site_ids):
        out[shard_of(site_id, count)].append(site_id)
    return out
