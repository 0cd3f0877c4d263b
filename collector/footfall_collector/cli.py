"""`footfall-collector run (--site SITE.yaml | --sites-dir DIR [--shard K/N] [--only ...])`,
`check-site SITE.yaml`, `rebuild-history` and `retire-agent --site SITE.yaml AGENT`."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import re
import sys
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

from footfall_contract.site import SiteError, load_site
from footfall_runtime.service import SystemClock, reload_on_sighup, run_until_signal, setup_logging
from footfall_runtime.settings import ConfigError, load_settings
from footfall_runtime.sitesargs import (
    add_site_arguments,
    folder_text,
    log_refusals,
    refuse_nothing_to_serve,
    site_folder,
)

from .config import CollectorSettings

log = logging.getLogger("footfall_collector")


def cmd_run(args: argparse.Namespace) -> int:
    from .http import serve
    from .service import Collector
    from .sitesdir import SitesDir, log_problems

    settings = load_settings(CollectorSettings, args.config)
    folder, shard = site_folder(args)
    if folder is None:
        site = load_site(args.site)
        collector = Collector(settings, site)
        what = f"site {site.site} ({len(site.zones)} zones, {len(site.doors)} doors)"
        served = [(args.site, site)]
    else:
        scan = folder.scan()
        log_refusals(scan, log)
        refuse_nothing_to_serve(args.sites_dir, scan.sites, scan.errors.values(), shard)
        served = [scan.sites[i] for i in sorted(scan.sites)]
        collector = Collector(settings, [s for _, s in served], shard=shard)
        what = folder_text(args.sites_dir, shard, collector.sites)
    sites_dir = SitesDir(folder, collector, settings.sites.poll_s) if folder else None
    http: ThreadingHTTPServer | None = None

    def start() -> None:
        nonlocal http
        log.info("collector for %s starting (MQTT client id %s)", what, collector.client_id)
        for path, site in served:
            log_problems(path, site)
        collector.start()
        if settings.http.port is not None and not collector.stopping:
            http = serve(collector, settings.http.host, settings.http.port)
            host, port = http.server_address[:2]
            log.info("health and metrics on http://%s:%s/healthz and /metrics", host, port)
        if sites_dir is not None and not collector.stopping:
            sites_dir.start()

    def stop() -> None:
        if sites_dir is not None:
            sites_dir.stop()
        collector.stop()
        if http is not None:
            http.shutdown()
            http.server_close()

    # SIGTERM also ends the wait for InfluxDB at start (`interrupt`)
    with reload_on_sighup(sites_dir.request if sites_dir is not None else None):
        return run_until_signal(start, stop, interrupt=collector.interrupt)


def cmd_check_site(args: argparse.Namespace) -> int:
    """A valid file, then what will not count as meant (docs/spec.md §3, "Checks"):
    warnings leave the exit status 0, errors (a site that cannot work) make it 1."""
    from footfall_contract import yamlfile
    from footfall_contract.sitecheck import line_of

    site = load_site(args.site)
    file, text = yamlfile.read_text(args.site, "site file", SiteError)
    problems = site.problems()
    for p in problems:
        line = line_of(text, p.loc)
        print(f"{file}{f':{line}' if line else ''}: {p.severity}: {p.message}")
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    verdict = (
        f"{errors} error{'s' if errors != 1 else ''}: it cannot count as described"
        if errors
        else "OK" + (f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else "")
    )
    print(
        f"{args.site}: site {site.site!r} ({site.name}), {len(site.zones)} zones, "
        f"{len(site.doors)} doors, {len(site.presence)} presence sensors: {verdict}"
    )
    return 1 if errors else 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def cmd_rebuild_history(args: argparse.Namespace) -> int:
    """Recompute occupancy history and visit rollups of whole days from `zone_flow`:
    after a backfill, an upgrade, or a change of the site's zones."""
    from .history import HistoryWorker
    from .influx import PermanentWriteError, RetryableWriteError, connect

    site = load_site(args.site)
    settings = load_settings(CollectorSettings, args.config)
    now_ms = SystemClock().now_ms()
    last = args.to or dt.datetime.now(site.tz).date()
    if last < args.start:
        print(f"footfall-collector: --to {last} is before --from {args.start}", file=sys.stderr)
        return 2
    influx = connect(settings.influx)
    try:
        influx.ensure_database()
        started = time.monotonic()
        done = HistoryWorker(influx, site).rebuild(args.start, last, now_ms)
    except (RetryableWriteError, PermanentWriteError) as exc:
        print(f"footfall-collector: InfluxDB at {settings.influx.url}: {exc}", file=sys.stderr)
        return 2
    finally:
        influx.close()
    print(
        f"{site.site}: history and rollups of {done} days ({args.start} to {last}) "
        f"recomputed in {time.monotonic() - started:.1f} s"
    )
    return 0


def cmd_retire_agent(args: argparse.Namespace) -> int:
    """Clear an agent's retained status (footfall_collector.retire): off the board, out of
    the alerts, recorded in InfluxDB by the running collector."""
    from footfall_contract.topics import ID_PATTERN

    from .retire import RetireError, retire_agent

    site = load_site(args.site)
    if not re.fullmatch(ID_PATTERN, args.agent) or len(args.agent) > 64:
        print(f"footfall-collector: agent {args.agent!r} is not an agent id", file=sys.stderr)
        return 2
    settings = load_settings(CollectorSettings, args.config)
    try:
        status = retire_agent(settings.mqtt, site.site, args.agent, force=args.force)
    except RetireError as exc:
        print(f"footfall-collector: {exc}", file=sys.stderr)
        return 1
    was = f"{status.state} since {status.ts}" if status is not None else "no valid status"
    print(
        f"agent {args.agent} of site {site.site} retired (it was {was}): its status is "
        "cleared on the broker, the collector records it (agent_status, reason retired), "
        "the board and the alerts forget it; it comes back if it ever connects again"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="footfall-collector", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="MQTT -> InfluxDB and live occupancy of sites")
    add_site_arguments(
        run,
        "one site's YAML file",
        "a folder of site files (NAME.yaml), read again on SIGHUP and every sites.poll_s",
    )
    run.add_argument("--config", type=Path, help="collector.toml (FOOTFALL_* override it)")
    run.set_defaults(func=cmd_run)
    chk = sub.add_parser(
        "check-site",
        help="validate a site file; warn about what will not count as meant, exit 1 for "
        "what cannot work",
    )
    chk.add_argument("site", type=Path, help="the site's YAML file")
    chk.set_defaults(func=cmd_check_site)
    reb = sub.add_parser(
        "rebuild-history",
        help="recompute occupancy history and visit rollups of past days (docs/history.md)",
    )
    reb.add_argument("--site", type=Path, required=True, help="the site's YAML file")
    reb.add_argument("--config", type=Path, help="collector.toml (FOOTFALL_* override it)")
    reb.add_argument(
        "--from", dest="start", type=_date, required=True, help="first local day, YYYY-MM-DD"
    )
    reb.add_argument("--to", type=_date, help="last local day (default: today)")
    reb.set_defaults(func=cmd_rebuild_history)
    ret = sub.add_parser(
        "retire-agent",
        help="take an agent that is gone for good off the board and out of the alerts",
    )
    ret.add_argument("--site", type=Path, required=True, help="the site's YAML file")
    ret.add_argument("--config", type=Path, help="collector.toml (FOOTFALL_* override it)")
    ret.add_argument(
        "--force", action="store_true", help="retire it even though its status says online"
    )
    ret.add_argument("agent", help="the agent id")
    ret.set_defaults(func=cmd_retire_agent)
    args = p.parse_args(argv)
    setup_logging(args.log_format, args.verbose)
    try:
        rc: int = args.func(args)
        return rc
    except (ConfigError, SiteError) as exc:
        print(f"footfall-collector: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
