"""`--sites-dir`: the board's sites kept equal to its folder while it runs (docs/web.md,
"Sites"). The folder is read again on SIGHUP and every `sites.poll_s` seconds
(footfall_contract.sitefolder, as the collector and the alerts service do): a new or
changed valid file is served at once (subscribed, on the board, its public displays and
the API), a broken one is logged once as `file:line: reason` and its site keeps its last
good version, a removed one is no longer served (its streams end, its live state goes)."""

from __future__ import annotations

import logging

from footfall_contract.shards import Shard
from footfall_contract.site import Site
from footfall_contract.sitefolder import Scan, SiteFolder
from footfall_runtime.sitesargs import FolderWatch, log_refusals, refuse_nothing_to_serve

from .state import Web

log = logging.getLogger("footfall_web")


def first_scan(folder: SiteFolder, shard: Shard | None) -> list[Site]:
    """The folder's sites at start, its refused files logged. ConfigError when there is
    nothing to serve: no site file, or only broken ones (a shard may be empty: its
    sites may come later), as the alerts service decides."""
    scan = folder.scan()
    log_refusals(scan, log)
    refuse_nothing_to_serve(folder.path, scan.sites, scan.errors.values(), shard)
    return [site for _, (_, site) in sorted(scan.sites.items())]


class SitesDir(FolderWatch):
    """Applies each scan of `folder` to `web`, on a thread of its own."""

    def __init__(self, folder: SiteFolder, web: Web, poll_s: float) -> None:
        super().__init__(folder, poll_s, log)
        self.web = web

    def apply(self, scan: Scan) -> None:
        log_refusals(scan, log)
        if not scan.changes:
            return
        self.web.set_sites(site for _, (_, site) in sorted(scan.sites.items()))
        for site_id in scan.removed:
            log.info("site %s removed from the folder: no longer served", site_id)
        for site_id in [*scan.added, *scan.changed]:
            what = "added" if site_id in scan.added else "changed"
            log.info("site %s %s (%s): served", site_id, what, scan.sites[site_id][0])
