"""The command line of a server program that serves sites: one site file (`--site`) or a
folder of them (`--sites-dir`) with `--shard K/N` and `--only ID[,ID...]` choosing which
of the folder's sites this process serves (docs/spec.md, "Sites and shards"), and how a
folder's refused files are logged. Written once for the collector, the alerts service and
footfall-web, so the three read the same flags, and report a broken file, alike."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from footfall_contract.shards import Shard, parse_shard
from footfall_contract.sitefolder import Scan, SiteFolder

from .config import ConfigError
from .service import Periodic


class _Once(argparse.Action):
    """A flag that takes one value, refused when given again (a second `--site` would
    otherwise silently replace the first: several sites are a folder)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, self.dest, None) is not None:
            parser.error(
                f"{option_string} is given twice: it takes one; for several sites put "
                "their files in one folder and give --sites-dir"
            )
        setattr(namespace, self.dest, values)


def add_site_arguments(run: argparse.ArgumentParser, site_help: str, folder_help: str) -> None:
    which = run.add_mutually_exclusive_group(required=True)
    which.add_argument("--site", type=Path, action=_Once, help=site_help)
    which.add_argument("--sites-dir", type=Path, action=_Once, help=folder_help)
    run.add_argument(
        "--shard", help="K/N: serve only the folder's sites of shard K of N (by site id)"
    )
    run.add_argument(
        "--only",
        action="append",
        metavar="ID[,ID...]",
        help="serve only these site ids of the folder (repeatable)",
    )


def site_folder(args: argparse.Namespace) -> tuple[SiteFolder | None, Shard | None]:
    """The folder and shard `run` serves; (None, None) for `--site`. ConfigError names a
    flag that does not go with the others, a bad shard or a folder that is not there."""
    if args.site is not None:
        if args.shard is not None or args.only is not None:
            raise ConfigError("--shard and --only go with --sites-dir, not --site")
        return None, None
    try:
        shard = parse_shard(args.shard) if args.shard is not None else None
    except ValueError as exc:
        raise ConfigError(f"--shard: {exc}") from None
    only = None
    if args.only is not None:
        only = sorted({i.strip() for text in args.only for i in text.split(",") if i.strip()})
        if not only:
            raise ConfigError("--only names no site")
    if not args.sites_dir.is_dir():
        raise ConfigError(f"{args.sites_dir}: no such sites folder")
    return SiteFolder(args.sites_dir, shard, only), shard


def folder_text(folder: Path, shard: Shard | None, served: Iterable[str]) -> str:
    """What a program serves, for its start-up log line."""
    ids = ", ".join(served) or "no site yet"
    return f"sites folder {folder}{f', shard {shard}' if shard else ''}: {ids}"


def refuse_nothing_to_serve(
    folder: Path, served: Iterable[str], refused: Iterable[str], shard: Shard | None
) -> None:
    """ConfigError when a folder given at start has no site to serve: no site file, or
    only broken ones (`refused`: their `file:line: reason`). A shard may start empty:
    its sites may come later."""
    problems = "; ".join(refused)
    if not list(served) and (problems or shard is None):
        why = problems or "no site files (NAME.yaml) in it"
        raise ConfigError(f"{folder}: no site to serve: {why}")


def log_refusals(scan: Scan, log: logging.Logger) -> None:
    """Each refused file of a scan once (until its reason changes), with what it means
    for the site it held, and each `--only` id no valid file holds."""
    held = {path: site_id for site_id, (path, _) in scan.sites.items()}
    for path, message in scan.new_errors.items():
        site_id = held.get(path)
        then = (
            f"site {site_id} keeps its last good version"
            if site_id is not None
            else "not served until it is fixed"
        )
        log.error("site file refused: %s (%s)", message, then)
    for site_id in scan.missing:
        log.warning("--only %s: no valid site file of the folder holds that site", site_id)


class FolderWatch:
    """A sites folder read again on `request()` (SIGHUP) and every `poll_s` seconds, on a
    thread of its own; a subclass's `apply` acts on each scan (the collector's and the
    web's `SitesDir`)."""

    def __init__(self, folder: SiteFolder, poll_s: float, logger: logging.Logger) -> None:
        self.folder = folder
        self._periodic = Periodic(
            lambda: self.apply(self.folder.scan()), poll_s, "sites-dir", logger
        )

    @property
    def scans(self) -> int:
        """Scans applied since start (tests wait on it)."""
        return self._periodic.runs

    def start(self) -> None:
        self._periodic.start()

    def request(self) -> None:
        """Read the folder now (SIGHUP): only sets a flag, so safe from a signal handler."""
        self._periodic.request()

    def stop(self) -> None:
        self._periodic.stop()

    def apply(self, scan: Scan) -> None:
        raise NotImplementedError
