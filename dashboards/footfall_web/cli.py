"""`footfall-web run --site SITE.yaml | --sites-dir DIR [--shard K/N] [--only ID,...]`
(the folder read again on SIGHUP and every `sites.poll_s` seconds) and
`footfall-web hash-password`."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from pathlib import Path
from typing import Any

from footfall_contract.site import SiteError, load_site
from footfall_runtime.service import reload_on_sighup, setup_logging, stacks_on_usr1
from footfall_runtime.settings import ConfigError, load_settings
from footfall_runtime.sitesargs import add_site_arguments, folder_text, site_folder

from .auth import hash_password
from .config import WebSettings

log = logging.getLogger("footfall_web")


def cmd_run(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .server import Server
    from .sitesdir import SitesDir, first_scan
    from .state import Web

    folder, shard = site_folder(args)
    settings = load_settings(WebSettings, args.config)
    sites = [load_site(args.site)] if folder is None else first_scan(folder, shard)
    web = Web(settings, sites, from_folder=folder is not None)
    app = create_app(web)
    host, port = settings.http.host, settings.http.port
    what = (
        sites[0].site
        if folder is None
        else folder_text(args.sites_dir, shard, (s.site for s in sites))
    )
    log.info(
        "footfall-web for %s on http://%s:%d/ (login %s)",
        what,
        host,
        port,
        "required" if web.login_required else "not required on loopback",
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info" if args.verbose else "warning",
        timeout_graceful_shutdown=3,
        **proxy_settings(settings),
    )
    if folder is None:
        with reload_on_sighup(None), stacks_on_usr1():
            Server(config, web).run()
        return 0
    sites_dir = SitesDir(folder, web, settings.sites.poll_s)
    with reload_on_sighup(sites_dir.request), stacks_on_usr1():
        sites_dir.start()
        try:
            Server(config, web).run()
        finally:
            sites_dir.stop()
    return 0


def proxy_settings(settings: WebSettings) -> dict[str, Any]:
    """uvicorn's X-Forwarded-For handling: only from the configured proxies (uvicorn
    would otherwise trust 127.0.0.1 by default)."""
    allowed = settings.http.forwarded_allow_ips
    return {"proxy_headers": bool(allowed), "forwarded_allow_ips": allowed or None}


def read_password(from_stdin: bool) -> str:
    """The password typed twice at a terminal, or the first line of piped input (a
    script has no terminal to confirm on; getpass would fall back to echoing input)."""
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line.strip("\r\n"):
            raise ConfigError(
                "no password on standard input (give it as the first line, e.g. "
                "`printf '%s\\n' \"$PW\" | footfall-web hash-password`)"
            )
        return line.rstrip("\r\n")
    try:
        password = getpass.getpass("Password: ")
        again = getpass.getpass("Again: ")
    except (EOFError, KeyboardInterrupt):
        raise ConfigError("no password given") from None
    if again != password:
        raise ConfigError("the passwords differ")
    return password


def cmd_hash_password(args: argparse.Namespace) -> int:
    password = read_password(args.stdin)
    if len(password) < 8:
        raise ConfigError("the password is shorter than 8 characters")
    print(hash_password(password))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="footfall-web", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve the live board, the public display and the API")
    add_site_arguments(
        run,
        "a site's YAML file",
        "a folder of site files (NAME.yaml), read again on SIGHUP and every sites.poll_s",
    )
    run.add_argument("--config", type=Path, help="web.toml (FOOTFALL_* override it)")
    run.set_defaults(func=cmd_run)
    hp = sub.add_parser("hash-password", help="print a password hash for auth.users")
    hp.add_argument(
        "--stdin",
        action="store_true",
        help="read the password from the first line of standard input (the default when "
        "standard input is not a terminal)",
    )
    hp.set_defaults(func=cmd_hash_password)
    args = p.parse_args(argv)
    setup_logging("text", args.verbose)
    try:
        rc: int = args.func(args)
        return rc
    except (ConfigError, SiteError) as exc:
        print(f"footfall-web: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
