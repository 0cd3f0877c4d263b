"""The command line of a server program that serves sites: one site file (`--site`) or a
folder of them (`--sites-dir`) with `--shard K/N` and `--only ID[,ID...]` choosing which
of the folder's sites this process serves (docs/spec.md, "Sites and shards"). Written
once for the collector and the alerts service, so the two read the same flags alike."""

from __future__ import annotations

import argparse
from pathlib import Path

from footfall_contract.shards import Shard, parse_shard
from footfall_contract.sitefolder import SiteFolder

from .config import ConfigError


def add_site_arguments(run: argparse.ArgumentParser, site_help: str, folder_help: str) -> None:
    which = run.add_mutually_exclusive_group(required=True)
    which.add_argument("--site", type=Path, help=site_help)
    which.add_argument("--sites-dir", type=Path, help=folder_help)
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
