"""`--sites-dir`: the collector's sites kept equal to its folder while it runs (docs/
collector.md, "Many sites"). The folder is read again on SIGHUP and every `sites.poll_s`
seconds (footfall_contract.sitefolder): a new or changed valid file is loaded for that
site alone (its occupancy rebuilt from InfluxDB), a broken one is logged once as
`file:line: reason` and its site keeps its last good version, a removed one stops its
site."""

from __future__ import annotations

import logging
from pathlib import Path

from footfall_contract.site import Site
from footfall_contract.sitefolder import Scan, SiteFolder
from footfall_runtime.sitesargs import FolderWatch, log_refusals

from .service import Collector

log = logging.getLogger("footfall_collector")


def log_problems(path: Path, site: Site) -> None:
    """What check-site says about a served site, also where operators look."""
    for problem in site.problems():
        level = logging.ERROR if problem.severity == "error" else logging.WARNING
        log.log(level, "site file %s, %s: %s", path, problem.where, problem.message)


class SitesDir(FolderWatch):
    """Applies each scan of `folder` to `collector`, on its own thread."""

    def __init__(self, folder: SiteFolder, collector: Collector, poll_s: float) -> None:
        super().__init__(folder, poll_s, log)
        self.collector = collector

    def apply(self, scan: Scan) -> None:
        log_refusals(scan, log)
        for site_id in scan.removed:
            self.collector.remove_site(site_id)
            log.info("site %s removed from the folder: no longer served", site_id)
        for site_id in [*scan.added, *scan.changed]:
            path, site = scan.sites[site_id]
            log_problems(path, site)
            if not self.collector.load_site(site):
                return  # stopping
            what = "added" if site_id in scan.added else "changed"
            log.info("site %s %s (%s): served, occupancy rebuilt", site_id, what, path)
