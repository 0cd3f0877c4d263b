"""`--sites-dir`: the site folder and each site's rules file (`SITE.alerts.yaml` next to
it, the default rules when there is none), read again on SIGHUP and every `sites.poll_s`
seconds, and what the service must do about it.

- a new site (valid site file and rules) is served: subscribed, its engine started;
- a changed site file or rules file reloads that site alone, from its saved state;
- a broken file (site, rules, or a receiver these settings cannot serve) is logged once
  as `file:line: reason`, and the site keeps its last good version (a new site whose
  files are broken is not served);
- a removed site file stops that site (its state file stays).

The site files are footfall_contract.sitefolder's; the rules files are read here, and
only parsed again when their bytes change."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from footfall_contract.site import Site, SiteError
from footfall_contract.sitefolder import SiteFolder
from footfall_runtime.config import ConfigError
from footfall_runtime.service import Periodic
from footfall_runtime.sitesargs import log_refusals

from .rules import RulesFile, load_rules, rules_path_for

log = logging.getLogger("footfall_alerts")


class Sites(Protocol):
    """What the watcher changes (footfall_alerts.service.AlertsService)."""

    refused: dict[str, str]

    def add_site(self, site: Site, rules: RulesFile | None) -> None: ...
    def replace_site(self, site: Site, rules: RulesFile | None) -> None: ...
    def remove_site(self, site_id: str) -> None: ...


@dataclass(frozen=True)
class Version:
    """What a site is served with: its site model and its rules file's bytes."""

    site: Site
    rules_path: Path
    rules_bytes: bytes | None
    """None: no rules file (the default rules)."""


def _rules_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:  # unreadable: load_rules says so with the file name
        return f"unreadable: {exc}".encode()


class SiteWatcher:
    def __init__(self, folder: SiteFolder, service: Sites) -> None:
        self.folder = folder
        self.service = service
        self.served: dict[str, Version] = {}
        self._failed: dict[str, tuple[Version, str]] = {}
        """site -> the version last refused and why (so it is logged once)."""
        self._periodic: Periodic | None = None
        self._asked = False

    # -- one pass --------------------------------------------------------------------------

    def scan(self) -> None:
        """Read the folder and each served site's rules; act on what changed."""
        scan = self.folder.scan()
        log_refusals(scan, log)
        refused = {str(p): m for p, m in scan.errors.items()}
        for site_id in scan.removed:
            if site_id in self.served:
                self.service.remove_site(site_id)
                del self.served[site_id]
                log.info("site %s: its file is gone, no longer served (state kept)", site_id)
            self._failed.pop(site_id, None)
        for site_id, (path, site) in sorted(scan.sites.items()):
            rules_path = rules_path_for(path)
            want = Version(site, rules_path, _rules_bytes(rules_path))
            if self.served.get(site_id) == want:
                self._failed.pop(site_id, None)
                continue
            failed = self._failed.get(site_id)
            if failed is not None and failed[0] == want:
                refused[str(rules_path)] = failed[1]
                continue  # refused already, and logged
            try:
                self._serve(site_id, want)
            except (SiteError, ConfigError) as exc:  # RulesError is a SiteError
                message = str(exc)
                if not message.startswith(str(rules_path)) and not message.startswith(str(path)):
                    message = f"{rules_path}: {message}"
                self._failed[site_id] = (want, message)
                refused[str(rules_path)] = message
                keeps = "keeps its last good version" if site_id in self.served else "not served"
                log.error("%s (site %s %s)", message, site_id, keeps)
        self.service.refused = refused

    def _serve(self, site_id: str, want: Version) -> None:
        rules = None if want.rules_bytes is None else load_rules(want.rules_path, want.site)
        origin = "default rules" if rules is None else str(want.rules_path)
        if site_id in self.served:
            self.service.replace_site(want.site, rules)
            log.info("site %s: reloaded (%s)", site_id, origin)
        else:
            self.service.add_site(want.site, rules)
            log.info("site %s: served (%s)", site_id, origin)
        self.served[site_id] = want
        self._failed.pop(site_id, None)

    # -- the thread ------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the folder now (SIGHUP): safe from a signal handler (flags only). Asked
        before the start, it is read again as the watch starts."""
        self._asked = True
        if self._periodic is not None:
            self._periodic.request()

    def start(self, every_s: float) -> None:
        self._periodic = Periodic(self.scan, every_s, "sites", log)
        if self._asked:
            self._periodic.request()
        self._periodic.start()

    def stop(self) -> None:
        if self._periodic is not None:
            self._periodic.stop()
