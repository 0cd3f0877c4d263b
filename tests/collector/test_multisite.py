"""One collector over a folder of sites (`--sites-dir`, docs/collector.md "Many sites"),
against real Mosquitto and InfluxDB: per site its own counts, zone flows, occupancy and
reset, a site added while running, broken files refused by name while the others count
exactly. The truth is the door algebra over the published crossings, computed here."""

from __future__ import annotations

import logging
import random
import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from footfall_collector.service import Collector
from footfall_collector.sitesdir import SitesDir
from footfall_contract.site import Site, load_site
from footfall_contract.sitefolder import SiteFolder
from footfall_runtime.sitesargs import log_refusals
from footfall_sim.localservices import Influx, Mosquitto
from tests.support.collector import (
    SITE_YAML,
    FakeClock,
    InfluxQuery,
    Publisher,
    collector_settings,
    crossing_batch,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ["iso-omena", "kalajarvi"]
TZ = ZoneInfo("Europe/Helsinki")

Crossing = tuple[str, str]  # (door, dir)


# -- the truth: door algebra, independent of the collector's engine ----------------------


def zones_within(site: Site, zone: str | None) -> set[str]:
    """`zone` and every zone it lies in (parents up to the top)."""
    parents = {z.id: z.parent for z in site.zones}
    out: set[str] = set()
    while zone is not None:
        out.add(zone)
        zone = parents[zone]
    return out


def effect(site: Site, door: str, direction: str) -> tuple[set[str], set[str]]:
    """(zones entered, zones left) by one crossing."""
    d = next(d for d in site.doors if d.id == door)
    inner, outer = zones_within(site, d.inside), zones_within(site, d.outside)
    entered, left = inner - outer, outer - inner
    return (entered, left) if direction == "in" else (left, entered)


def occupancy(site: Site, crossings: list[Crossing]) -> dict[str, int]:
    count = dict.fromkeys((z.id for z in site.zones), 0)
    for door, direction in crossings:
        entered, left = effect(site, door, direction)
        for z in entered:
            count[z] += 1
        for z in left:
            count[z] -= 1
    return count


def flows(site: Site, crossings: list[Crossing]) -> dict[tuple[str, str], int]:
    out: Counter[tuple[str, str]] = Counter()
    for door, direction in crossings:
        entered, left = effect(site, door, direction)
        out.update((z, "in") for z in entered)
        out.update((z, "out") for z in left)
    return dict(out)


def walk(site: Site, n: int, rng: random.Random) -> list[Crossing]:
    """`n` crossings that never take a zone below zero (people leave where they are)."""
    out: list[Crossing] = []
    doors = [d.id for d in site.doors]
    while len(out) < n:
        c = (rng.choice(doors), rng.choice(["in", "in", "out"]))
        if min(occupancy(site, [*out, c]).values()) >= 0:
            out.append(c)
    return out


# -- InfluxDB, per site ---------------------------------------------------------------


def stored_crossings(q: InfluxQuery, site: str) -> dict[Crossing, int]:
    rows = q.rows(
        f'SELECT count("count") FROM "crossing" WHERE "site" = \'{site}\' GROUP BY "door", "dir"'
    )
    return {(r["door"], r["dir"]): r["count"] for r in rows}


def stored_flows(q: InfluxQuery, site: str) -> dict[tuple[str, str], int]:
    rows = q.rows(
        f'SELECT sum("count") FROM "zone_flow" WHERE "site" = \'{site}\' GROUP BY "zone", "dir"'
    )
    return {(r["zone"], r["dir"]): r["sum"] for r in rows}


def counts(collector: Collector, site: str) -> dict[str, int]:
    return {z: s["count"] for z, s in collector.occupancy(site).items()}


def mismatches(
    q: InfluxQuery, collector: Collector, sites: dict[str, Site], sent: dict[str, list[Crossing]]
) -> list[str]:
    """What differs from the truth, per site and kind (empty: all exact)."""
    out = []
    for name, site in sites.items():
        if stored_crossings(q, name) != dict(Counter(sent[name])):
            out.append(f"{name} crossings {stored_crossings(q, name)} != {Counter(sent[name])}")
        if stored_flows(q, name) != flows(site, sent[name]):
            out.append(f"{name} zone_flow {stored_flows(q, name)} != {flows(site, sent[name])}")
        if counts(collector, name) != occupancy(site, sent[name]):
            out.append(
                f"{name} occupancy {counts(collector, name)} != {occupancy(site, sent[name])}"
            )
    return out


class Sender:
    """One agent per site, sequence numbers of its own."""

    def __init__(self, pub: Publisher) -> None:
        self.pub = pub
        self.seq: Counter[str] = Counter()
        self.sent: dict[str, list[Crossing]] = {}

    def send(self, site: str, crossings: list[Crossing], ts_ms: int, per_message: int = 5) -> None:
        for i in range(0, len(crossings), per_message):
            part = crossings[i : i + per_message]
            events = [(self.seq[site] + k, d, dr) for k, (d, dr) in enumerate(part)]
            self.seq[site] += len(part)
            topic = f"footfall/v1/{site}/agent/pi-{site}/crossing"
            self.pub.send(topic, crossing_batch("e1", events, ts_ms))
            self.sent.setdefault(site, []).extend(part)


def third_site_yaml(reset_at: str) -> str:
    return SITE_YAML.replace("site: test-site", "site: third").replace(
        'reset_at: "03:00"', f'reset_at: "{reset_at}"'
    )


def start(folder: Path, port: int, url: str, clock: FakeClock) -> tuple[Collector, SitesDir]:
    sites = SiteFolder(folder)
    scan = sites.scan()
    log_refusals(scan, logging.getLogger("footfall_collector"))  # as the command line does
    collector = Collector(collector_settings(port, url), [s for _, s in scan.sites.values()], clock)
    sites_dir = SitesDir(sites, collector, poll_s=3600)  # reloads on request (SIGHUP)
    collector.start()
    assert collector.ready.wait(10)
    sites_dir.start()
    return collector, sites_dir


def local_ms(hh: int, mm: int, ss: int) -> int:
    return int(datetime(2026, 11, 24, hh, mm, ss, tzinfo=TZ).timestamp() * 1000)


def test_shipped_sites_and_one_added_count_and_reset_independently(
    mosquitto: Mosquitto, influx: Influx, tmp_path: Path
) -> None:
    folder = tmp_path / "sites"
    folder.mkdir()
    for name in SHIPPED:
        shutil.copy(ROOT / "deploy" / "sites" / f"{name}.yaml", folder)
        shutil.copy(ROOT / "deploy" / "sites" / f"{name}.alerts.yaml", folder)  # not a site
    clock = FakeClock(local_ms(1, 59, 0))
    collector, sites_dir = start(folder, mosquitto.port, influx.url, clock)
    q = InfluxQuery(influx.url)
    pub = Publisher(mosquitto.port)
    sender = Sender(pub)
    rng = random.Random(14)
    try:
        assert collector.sites == SHIPPED
        assert collector.client_id == "footfall-collector-all"
        sites = {name: load_site(folder / f"{name}.yaml") for name in SHIPPED}
        for name, site in sites.items():
            sender.send(name, walk(site, 60, rng), clock.now_ms())
        # a third site, written into the folder while running, resetting at 02:00
        (folder / "third.yaml").write_text(third_site_yaml("02:00"))
        sites["third"] = load_site(folder / "third.yaml")
        sites_dir.request()
        wait_for(lambda: "third" in collector.sites, 20, "the third site served")
        sender.send("third", walk(sites["third"], 40, rng), clock.now_ms())

        def exact() -> bool:
            return not mismatches(q, collector, sites, sender.sent)

        wait_for(exact, 30, "every site's crossings, zone flows and occupancy")
        before = {name: counts(collector, name) for name in SHIPPED}
        assert all(sum(c.values()) > 0 for c in before.values())

        # 02:00:01: the third site's reset, and no other site's
        clock.set(local_ms(2, 0, 1))
        wait_for(lambda: not any(counts(collector, "third").values()), 10, "third reset")
        assert {name: counts(collector, name) for name in SHIPPED} == before

        # the reset's points are written after the counts are zeroed: waited for
        def resets() -> list[dict[str, Any]]:
            return q.rows('SELECT "count_before", "zone", "site" FROM "occupancy_reset"')

        truth = occupancy(sites["third"], sender.sent["third"])
        wait_for(
            lambda: {r["zone"]: r["count_before"] for r in resets()} == truth,
            10,
            "the third site's reset stored",
        )
        assert {r["site"] for r in resets()} == {"third"}
        # after its reset the third site counts again from zero
        after = walk(sites["third"], 20, rng)
        sender.send("third", after, clock.now_ms())
        wait_for(lambda: counts(collector, "third") == occupancy(sites["third"], after), 20)

        # 03:00:01: both shipped sites reset, the third keeps its count
        clock.set(local_ms(3, 0, 1))
        wait_for(
            lambda: all(not any(counts(collector, n).values()) for n in SHIPPED),
            10,
            "the shipped sites reset",
        )
        assert counts(collector, "third") == occupancy(sites["third"], after)
        assert all(stored_crossings(q, n) == dict(Counter(sender.sent[n])) for n in sites)
    finally:
        pub.close()
        sites_dir.stop()
        collector.stop()


def test_broken_site_files_are_refused_by_name_and_the_others_count(
    mosquitto: Mosquitto, influx: Influx, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="footfall_collector")
    folder = tmp_path / "sites"
    folder.mkdir()
    for name in SHIPPED:
        shutil.copy(ROOT / "deploy" / "sites" / f"{name}.yaml", folder)
    good_third = third_site_yaml("03:00")
    broken = folder / "broken.yaml"  # a door into a zone that does not exist
    broken.write_text(
        good_third.replace("site: third", "site: broken").replace("inside: kela}", "inside: kelaa}")
    )
    line = next(i for i, t in enumerate(broken.read_text().splitlines(), 1) if "kelaa" in t)
    clock = FakeClock(local_ms(12, 0, 0))
    collector, sites_dir = start(folder, mosquitto.port, influx.url, clock)
    q = InfluxQuery(influx.url)
    pub = Publisher(mosquitto.port)
    sender = Sender(pub)
    rng = random.Random(7)
    try:
        assert collector.sites == SHIPPED
        refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 1 and f"{broken}:{line}: " in refusals[0]
        assert "'kelaa' does not exist" in refusals[0]
        sites = {name: load_site(folder / f"{name}.yaml") for name in SHIPPED}
        for name, site in sites.items():
            sender.send(name, walk(site, 40, rng), clock.now_ms())
        # a served site's file broken while running: refused, the last good version stays
        omena = folder / "iso-omena.yaml"
        good_omena = omena.read_text()
        omena.write_text(good_omena.replace("timezone: Europe/Helsinki", "timezone: Mars/Base"))
        # and a second file claiming kalajarvi: both refused, kalajarvi keeps serving
        shutil.copy(folder / "kalajarvi.yaml", folder / "kalajarvi-copy.yaml")
        caplog.clear()
        scans = sites_dir.scans
        sites_dir.request()
        wait_for(lambda: sites_dir.scans > scans, 20, "the folder read again")
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert f"{omena}:" in logged and "Mars/Base" in logged
        assert "site iso-omena keeps its last good version" in logged
        assert f"{folder / 'kalajarvi-copy.yaml'}: site 'kalajarvi' is also in" in logged
        assert f"{broken}:{line}" not in logged  # logged once, not at every scan
        assert collector.sites == SHIPPED
        for name, site in sites.items():
            sender.send(name, walk(site, 40, rng), clock.now_ms())
        wait_for(
            lambda: all(
                stored_crossings(q, n) == dict(Counter(sender.sent[n]))
                and counts(collector, n) == occupancy(s, sender.sent[n])
                for n, s in sites.items()
            ),
            30,
            "the good sites counted exactly",
        )
        assert stored_crossings(q, "broken") == {}
        # fixed: served from the next scan on
        broken.write_text(good_third.replace("site: third", "site: broken"))
        (folder / "kalajarvi-copy.yaml").unlink()
        omena.write_text(good_omena)
        sites_dir.request()
        wait_for(lambda: collector.sites == ["broken", *SHIPPED], 20, "the fixed file served")
    finally:
        pub.close()
        sites_dir.stop()
        collector.stop()
