"""A folder of site files served by one process (`--sites-dir DIR`, docs/spec.md "Sites and
shards"), read again on every `scan()`: what the services do at start, on SIGHUP and every
`sites.poll_s` seconds.

Each scan compares the folder with the last one, site by site:

- a new or changed valid file is (re)loaded for that site alone (`added`, `changed`);
- a broken file is refused as `file:line: reason` (`errors`; `new_errors` holds those not
  reported by the previous scan, so a service logs each once), and the site it held keeps
  its last good version (a new broken file serves nothing);
- two files with the same site id are both refused by name, and that site keeps its last
  good version too;
- a removed file stops its site (`removed`), unless another file now holds that site.

Only the sites of the process's shard (`footfall_contract.shards`) and, with `only`, the
listed ids are served; the other files are still read, so a broken one is reported by
every process that reads the folder. A file is parsed again only when its bytes change.
Not thread-safe: scan from one thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import yamlfile
from .shards import Shard
from .site import Site, SiteError, parse_site, site_files

__all__ = ["Scan", "SiteFolder"]


@dataclass(frozen=True)
class Scan:
    """The folder as served after one scan, and what changed since the previous one."""

    sites: dict[str, tuple[Path, Site]]
    """Every served site: id -> (its file, the version served)."""
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: dict[Path, str] = field(default_factory=dict)
    """Every refused file now: path -> `file:line: reason`."""
    new_errors: dict[Path, str] = field(default_factory=dict)
    """The refusals the previous scan did not report (or reported with another reason)."""
    missing: list[str] = field(default_factory=list)
    """Ids given with `only` that no valid file of the folder holds."""

    @property
    def changes(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass
class _Read:
    data: bytes
    site: Site | None
    error: str | None


class SiteFolder:
    """The site files of `path` (footfall_contract.site.site_files), limited to `shard`
    and to the ids in `only` when given."""

    def __init__(
        self, path: Path | str, shard: Shard | None = None, only: Iterable[str] | None = None
    ) -> None:
        self.path = Path(path)
        self.shard = shard
        self.only = frozenset(only) if only is not None else None
        self._served: dict[str, tuple[Path, Site]] = {}
        self._reads: dict[Path, _Read] = {}
        self._reported: dict[Path, str] = {}

    def wants(self, site_id: str) -> bool:
        """Whether this process serves `site_id` (its shard, its `only` list)."""
        if self.shard is not None and not self.shard.serves(site_id):
            return False
        return self.only is None or site_id in self.only

    @property
    def sites(self) -> dict[str, tuple[Path, Site]]:
        """What the last scan serves."""
        return dict(self._served)

    def scan(self) -> Scan:
        if not self.path.is_dir():
            # a folder that went away (an unmounted volume) stops nothing: keep serving
            error = {self.path: f"{self.path}: no such sites folder"}
            return self._finish(dict(self._served), [], [], [], error, [])
        files = site_files(self.path)
        self._reads = {p: self._read(p) for p in files}
        errors = {p: r.error for p, r in self._reads.items() if r.error is not None}
        holders: dict[str, list[Path]] = {}
        for p, r in self._reads.items():
            if r.site is not None:
                holders.setdefault(r.site.site, []).append(p)
        for site_id, paths in holders.items():
            if len(paths) > 1:
                for p in paths:
                    others = ", ".join(str(o) for o in paths if o != p)
                    errors[p] = f"{p}: site {site_id!r} is also in {others} (both refused)"
        valid = {
            site_id: (paths[0], self._reads[paths[0]].site)
            for site_id, paths in holders.items()
            if len(paths) == 1
        }
        served: dict[str, tuple[Path, Site]] = {}
        added: list[str] = []
        changed: list[str] = []
        for site_id, (p, site) in sorted(valid.items()):
            assert site is not None
            if not self.wants(site_id):
                continue
            served[site_id] = (p, site)
            old = self._served.get(site_id)
            if old is None:
                added.append(site_id)
            elif old[1] != site:
                changed.append(site_id)
        removed: list[str] = []
        for site_id, (p, site) in sorted(self._served.items()):
            if site_id in served:
                continue
            if site_id in holders or p in errors:  # refused now: the last good version stays
                served[site_id] = (p, site)
            else:
                removed.append(site_id)
        missing = sorted(self.only - set(valid)) if self.only is not None else []
        return self._finish(served, added, changed, removed, errors, missing)

    def _finish(
        self,
        served: dict[str, tuple[Path, Site]],
        added: list[str],
        changed: list[str],
        removed: list[str],
        errors: dict[Path, str],
        missing: list[str],
    ) -> Scan:
        new_errors = {p: m for p, m in errors.items() if self._reported.get(p) != m}
        self._reported = dict(errors)
        self._served = served
        return Scan(dict(served), added, changed, removed, errors, new_errors, missing)

    def _read(self, path: Path) -> _Read:
        try:
            data = path.read_bytes()
        except OSError as exc:
            return _Read(b"", None, f"{path}: cannot read the site file ({exc.strerror})")
        before = self._reads.get(path)
        if before is not None and before.data == data:
            return before
        try:
            file, text = yamlfile.read_text(path, "site file", SiteError)
            return _Read(data, parse_site(text, file), None)
        except SiteError as exc:
            return _Read(data, None, str(exc))
