"""`footfall-alerts run (--site SITE.yaml [--rules RULES.yaml] | --sites-dir DIR [--shard
K/N] [--only ID,...]) [--config alerts.toml]` and `footfall-alerts check-rules RULES.yaml
--site SITE.yaml`.

`run` is where the process is put together: the service, then its HTTP API handed the
service (so neither imports the other), with `--sites-dir` the folder watcher (read again
on SIGHUP and every `sites.poll_s` seconds), until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from footfall_contract.shards import Shard
from footfall_contract.site import Site, SiteError, load_site
from footfall_contract.sitefolder import SiteFolder
from footfall_runtime.service import reload_on_sighup, run_until_signal, setup_logging
from footfall_runtime.settings import ConfigError, load_settings
from footfall_runtime.sitesargs import add_site_arguments, refuse_nothing_to_serve, site_folder

from .config import AlertsSettings
from .rules import PIPELINE_KIND, RulesFile, load_rules, pipeline_rule, rules_path_for

if TYPE_CHECKING:  # imported when run: check-rules needs neither paho nor uvicorn
    from .service import AlertsService

log = logging.getLogger("footfall_alerts")


def _rules(args: argparse.Namespace, site: Site, site_path: Path) -> tuple[RulesFile | None, str]:
    """--rules, else SITE.alerts.yaml next to the site file, else the defaults."""
    path = args.rules or rules_path_for(site_path)
    if args.rules is None and not path.is_file():
        return None, "default rules (no rules file)"
    return load_rules(path, site), str(path)


def start_with_api(service: AlertsService) -> None:
    """Start the service, then its HTTP API (unless `http.port` is unset), handed the
    service: the API knows the service only as what it needs (api.AlertsApi)."""
    from .api import serve

    service.start()
    http = service.settings.http
    if http.port is not None:
        service.http = serve(service, http.host, http.port)


def cmd_run(args: argparse.Namespace) -> int:
    folder, shard = site_folder(args)
    if folder is not None:
        return cmd_run_folder(args, folder, shard)
    from .service import AlertsService

    site = load_site(args.site)
    rules, where = _rules(args, site, args.site)
    settings = load_settings(AlertsSettings, args.config)
    service = AlertsService(settings, site, rules)
    log.info(
        "alerts for site %s: %d rules from %s, %d receivers; state in %s",
        site.site,
        len(service.engine.rules),
        where,
        len(service.rules.receivers),
        service.store.path,
    )

    def start() -> None:
        start_with_api(service)
        if service.http is not None:
            log.info(
                "API on http://%s:%s/api/v1/alerts (%s)",
                service.http.host,
                service.http.port,
                "bearer token required" if service.token_required else "no token: loopback only",
            )

    return run_until_signal(start, service.stop)


def cmd_run_folder(args: argparse.Namespace, folder: SiteFolder, shard: Shard | None) -> int:
    from .service import AlertsService
    from .sitewatch import SiteWatcher

    if args.rules is not None:
        raise ConfigError(
            "--rules goes with --site; with --sites-dir each site's rules are SITE.alerts.yaml"
        )
    settings = load_settings(AlertsSettings, args.config)
    service = AlertsService(settings, shard=shard)
    watcher = SiteWatcher(folder, service)
    try:
        watcher.scan()
    except BaseException:
        service.stop()
        raise
    served = service.site_ids()
    try:
        refuse_nothing_to_serve(args.sites_dir, served, service.refused.values(), shard)
    except ConfigError:
        service.stop()
        raise
    log.info(
        "alerts for %d sites of %s%s: %s; state in %s; MQTT client id %s",
        len(served),
        args.sites_dir,
        f" (shard {shard})" if shard is not None else "",
        ", ".join(served) or "none yet",
        settings.state_dir,
        service.intake.client_id,
    )

    def start() -> None:
        start_with_api(service)
        watcher.start(settings.sites.poll_s)
        if service.http is not None:
            log.info(
                "API on http://%s:%s/api/v1/alerts, per site /sites/SITE/api/v1/alerts (%s)",
                service.http.host,
                service.http.port,
                "bearer token required" if service.token_required else "no token: loopback only",
            )

    def stop() -> None:
        watcher.stop()
        service.stop()

    with reload_on_sighup(watcher.reload):
        return run_until_signal(start, stop)


def cmd_check_rules(args: argparse.Namespace) -> int:
    site = load_site(args.site)
    rules = load_rules(args.rules, site)
    active = rules.active_rules(site)
    origin = "defaults" if rules.rules is None else "the file"
    print(
        f"{args.rules}: {len(active)} rules ({origin}), {len(rules.receivers)} receivers, "
        f"{len(rules.routes)} routes for site {site.site!r}, at most "
        f"{rules.max_alerts_per_agent} open alerts per agent: OK"
    )
    built_in = [] if any(r.kind == PIPELINE_KIND for r in active) else [pipeline_rule()]
    for rule in [*active, *built_in]:
        print(
            f"  {rule.name}: {rule.kind}, fire at {rule.fire_at:g}, clear at {rule.clear_at:g}, "
            f"for {rule.for_s:g} s, {rule.severity}, {rule.active_hours} hours"
            + (
                " (built in: a rule of this kind in the file replaces it)"
                if rule in built_in
                else ""
            )
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="footfall-alerts", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="evaluate alert rules on the live MQTT state and notify")
    add_site_arguments(
        run,
        "the site's YAML file",
        "serve every site file (NAME.yaml) of this folder, each with its "
        "NAME.alerts.yaml; read again on SIGHUP and every sites.poll_s seconds",
    )
    run.add_argument(
        "--rules", type=Path, help="rules file (default: SITE.alerts.yaml next to the site)"
    )
    run.add_argument("--config", type=Path, help="alerts.toml (FOOTFALL_* override it)")
    run.set_defaults(func=cmd_run)
    chk = sub.add_parser("check-rules", help="validate a rules file against its site")
    chk.add_argument("rules", type=Path)
    chk.add_argument("--site", type=Path, required=True)
    chk.set_defaults(func=cmd_check_rules)
    args = p.parse_args(argv)
    setup_logging(args.log_format, args.verbose)
    try:
        rc: int = args.func(args)
        return rc
    except (ConfigError, SiteError) as exc:  # RulesError is a SiteError
        print(f"footfall-alerts: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
