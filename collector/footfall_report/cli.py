"""`footfall-report --site SITE.yaml --period 2026-11 [--zone ID ...] [--format ...]`,
`footfall-report --site SITE.yaml --statistics 2026` and
`footfall-report mail-monthly [--site SITE.yaml] [--to ADDRESS]` (docs/reports.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from footfall_collector.influx import Influx, connect
from footfall_contract.site import Site, SiteError, load_site
from footfall_contract.timefmt import parse_ts
from footfall_runtime.settings import ConfigError, load_settings

from .config import ReportSettings
from .mail import MailError, mail_monthly
from .model import ReportError
from .periods import MAX_YEAR, MIN_YEAR, PeriodError, parse_period
from .render import FORMATS, render_report, render_statistics
from .source import SourceError, load_report, load_statistics

PROG: Final = "footfall-report"


class UsageError(Exception):
    pass


def _now(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        return dt.datetime.fromtimestamp(parse_ts(text) / 1000, dt.UTC)
    except ValueError as exc:
        raise UsageError(f"--now: {exc} (e.g. 2026-12-01T06:30:00Z)") from None


def _year(text: str) -> int:
    if not text.isdigit() or not MIN_YEAR <= int(text) <= MAX_YEAR:
        raise argparse.ArgumentTypeError(
            f"bad year {text!r}: a calendar year {MIN_YEAR} to {MAX_YEAR}, e.g. 2026"
        )
    return int(text)


def _connect(settings: ReportSettings) -> Influx:
    try:
        return connect(settings.influx)
    except ValueError as exc:  # e.g. the 2.x API without its token
        raise ConfigError(f"influx: {exc}") from None


@dataclass(frozen=True)
class Run:
    """What every subcommand works with: its sites, the time it acts at, and InfluxDB."""

    sites: list[Site]
    now: dt.datetime
    influx: Influx


@contextmanager
def _run(
    args: argparse.Namespace, settings: ReportSettings, sites: Sequence[Path]
) -> Iterator[Run]:
    """The sites loaded, `--now` read and InfluxDB connected (in that order, so the first
    thing wrong is the one reported), and InfluxDB closed after the command."""
    loaded = [load_site(p) for p in sites]
    now = _now(args.now)
    influx = _connect(settings)
    try:
        yield Run(loaded, now, influx)
    finally:
        influx.close()


def _output(data: str | bytes, path: Path | None) -> None:
    """To `path` (written whole, then renamed into place) or to standard output."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if path is None:
        if isinstance(data, bytes) and sys.stdout.isatty():
            raise UsageError("XLSX is binary: write it to a file with -o FILE")
        sys.stdout.buffer.write(raw)
        sys.stdout.flush()
        return
    folder = path.resolve().parent
    if not folder.is_dir():
        raise UsageError(f"-o {path}: no such folder {folder}")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_report(args: argparse.Namespace) -> int:
    settings = load_settings(ReportSettings, args.config)
    data: str | bytes
    with _run(args, settings, [args.site]) as run:
        site = run.sites[0]
        if args.statistics is not None:
            stats = load_statistics(
                run.influx, site, args.statistics, args.zone or None, now=run.now
            )
            data = render_statistics(stats, args.format)
        else:
            period = parse_period(args.period, site, run.now)
            report = load_report(run.influx, site, period, args.zone or None, now=run.now)
            data = render_report(report, args.format)
    _output(data, args.output)
    return 0


def cmd_mail_monthly(args: argparse.Namespace) -> int:
    settings = load_settings(ReportSettings, args.config)
    paths: list[Path] = args.site or list(settings.mail.sites)
    if not paths:
        raise UsageError("no site: give --site SITE.yaml or set mail.sites in the settings")
    recipients = list(dict.fromkeys([*settings.mail.recipients, *(args.to or [])]))
    if not recipients:
        raise UsageError(
            "no recipients: give --to ADDRESS or set mail.recipients (FOOTFALL_MAIL__RECIPIENTS)"
        )
    bad = [r for r in recipients if "@" not in r or any(c.isspace() for c in r)]
    if bad:
        raise UsageError(f"--to {bad[0]!r} is not an e-mail address")
    failed = 0
    with _run(args, settings, paths) as run:
        for site in run.sites:
            month = None
            if args.month is not None:
                month = parse_period(args.month, site, run.now)
                if month.kind != "month":
                    raise UsageError(f"--month {args.month!r}: give a month such as 2026-11")
            try:
                outcome = mail_monthly(
                    run.influx, site, settings.smtp, recipients, settings.state_dir, run.now, month
                )
            except MailError as exc:
                failed += 1
                print(
                    f"{PROG}: {site.site}: not sent, the next run retries: {exc}", file=sys.stderr
                )
                continue
            words = {
                "sent": "sent",
                "already_sent": "already sent, nothing to do",
                "too_early": "not yet",
            }[outcome.status]
            detail = f" ({outcome.detail})" if outcome.detail else ""
            print(f"{site.site} {outcome.month}: {words}{detail}")
    return 1 if failed else 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="report.toml (FOOTFALL_* variables override it)")
    p.add_argument(
        "--now",
        metavar="TIMESTAMP",
        help="act as if it were this time (RFC 3339, e.g. 2026-12-01T06:30:00Z): for tests "
        "and catching up",
    )


def report_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Visits per zone and door from the rollups. "
        "`footfall-report mail-monthly --help`: the monthly report by e-mail.",
    )
    p.add_argument("--site", type=Path, required=True, help="the site's YAML file")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--period",
        help="2026-11-23 (day), 2026-W47 (ISO week), 2026-11 (month), 2026 (year), today, "
        "yesterday, this-week, last-week, this-month, last-month, this-year, last-year",
    )
    what.add_argument(
        "--statistics",
        type=_year,
        metavar="YEAR",
        help="annual visits per unit for the public library statistics",
    )
    p.add_argument(
        "--zone",
        action="append",
        metavar="ID",
        help="report only this zone (repeat for more); default: every zone",
    )
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: standard output")
    _common(p)
    return p


def mail_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{PROG} mail-monthly",
        description="Mail last month's report (HTML, XLSX and CSV) once per site; run it "
        "daily (the systemd timer does).",
    )
    p.add_argument(
        "--site",
        type=Path,
        action="append",
        help="a site file (repeat for more); default: mail.sites from the settings",
    )
    p.add_argument(
        "--to",
        action="append",
        metavar="ADDRESS",
        help="a recipient (repeat for more), besides mail.recipients",
    )
    p.add_argument("--month", help="mail this month's report (e.g. 2026-10) instead of last month")
    _common(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["mail-monthly"]:
        args = mail_parser().parse_args(argv[1:])
        command = cmd_mail_monthly
    else:
        args = report_parser().parse_args(argv)
        command = cmd_report
    try:
        return command(args)
    except (ConfigError, SiteError, PeriodError, ReportError, SourceError, UsageError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
