"""One collector over a folder of sites (`--sites-dir`), a site file changed or removed
while running (docs/collector.md "Many sites", Reload), against real Mosquitto and
InfluxDB. The truth is computed here from the published crossings with
`Site.door_effects`: the old site model for what was counted before the change, the new
one for what came during and after it (live occupancy is rebuilt with the new model)."""

from __future__ import annotations

import logging
import random
import re
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from footfall_collector import sitestate
from footfall_collector.config import CollectorSettings
from footfall_collector.influx import Influx, connect
from footfall_collector.service import Collector
from footfall_collector.sitesdir import SitesDir
from footfall_collector.stored import crossing_pages
from footfall_contract.messages import Occupancy
from footfall_contract.site import Site, load_site
from footfall_contract.sitefolder import SiteFolder
from footfall_contract.topics import zone_occupancy_subscription
from footfall_sim.localservices import Influx as InfluxServer
from footfall_sim.localservices import Mosquitto
from tests.collector.test_multisite import (
    ROOT,
    SHIPPED,
    Crossing,
    Sender,
    local_ms,
    stored_crossings,
    stored_flows,
)
from tests.support.collector import FakeClock, InfluxQuery, Publisher, collector_settings, wait_for
from tests.support.mqtt import Recorder

pytestmark = pytest.mark.services

CHANGED = "kalajarvi"
OTHER = "iso-omena"


# -- the truth, from Site.door_effects --------------------------------------------------


def effects(site: Site, door: str, direction: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(zones entered, zones left) by one crossing."""
    entered, left = site.door_effects(door)
    return (entered, left) if direction == "in" else (left, entered)


def occupancy(site: Site, crossings: list[Crossing]) -> dict[str, int]:
    count = dict.fromkeys((z.id for z in site.zones), 0)
    for door, direction in crossings:
        entered, left = effects(site, door, direction)
        for z in entered:
            count[z] += 1
        for z in left:
            count[z] -= 1
    return count


def flows(site: Site, crossings: list[Crossing]) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for door, direction in crossings:
        entered, left = effects(site, door, direction)
        out.update((z, "in") for z in entered)
        out.update((z, "out") for z in left)
    return out


def walk(site: Site, before: list[Crossing], n: int, rng: random.Random) -> list[Crossing]:
    """`n` crossings after `before` that never take a zone of `site` below zero."""
    out: list[Crossing] = []
    doors = [d.id for d in site.doors]
    count = occupancy(site, before)
    while len(out) < n:
        door, direction = rng.choice(doors), rng.choice(["in", "in", "out"])
        entered, left = effects(site, door, direction)
        if all(count[z] > 0 for z in left):
            for z in entered:
                count[z] += 1
            for z in left:
                count[z] -= 1
            out.append((door, direction))
    return out


def changed_kalajarvi(text: str) -> str:
    """A new zone (the health wing) with a door into it, the two clinics moved into it
    (so the old doors' algebra changes too), and a capacity changed."""
    replacements = [
        ("parent: centre, capacity: 120,", "parent: centre, capacity: 100,"),
        ("parent: centre, capacity: 60,", "parent: health-wing, capacity: 60,"),
        ("parent: centre, capacity: 25,", "parent: health-wing, capacity: 25,"),
        (
            "\ndoors:\n",
            "  - {id: health-wing, name: Health wing, parent: centre, capacity: 70}\n"
            "\ndoors:\n"
            "  - {id: health-wing-door, outside: centre, inside: health-wing}\n",
        ),
    ]
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


# -- the collector ----------------------------------------------------------------------


def copy_shipped(tmp_path: Path) -> Path:
    folder = tmp_path / "sites"
    folder.mkdir()
    for name in SHIPPED:
        shutil.copy(ROOT / "deploy" / "sites" / f"{name}.yaml", folder)
    return folder


def start(
    folder: Path, settings: CollectorSettings, clock: FakeClock, influx: Influx | None = None
) -> tuple[Collector, SitesDir]:
    sites = SiteFolder(folder)
    scan = sites.scan()
    collector = Collector(settings, [s for _, s in scan.sites.values()], clock, influx)
    sites_dir = SitesDir(sites, collector, poll_s=3600)  # reloads on request (SIGHUP)
    collector.start()
    assert collector.ready.wait(10)
    sites_dir.start()
    return collector, sites_dir


def counts(collector: Collector, site: str) -> dict[str, int]:
    return {z: s["count"] for z, s in collector.occupancy(site).items()}


def capacities(collector: Collector, site: str) -> dict[str, int | None]:
    return {z: s["capacity"] for z, s in collector.occupancy(site).items()}


def retained_zones(rec: Recorder, site: str) -> dict[str, tuple[int, int | None]]:
    """The last zone occupancy the collector published per zone: (count, capacity)."""
    out: dict[str, tuple[int, int | None]] = {}
    for m in rec.on("/occupancy"):
        parts = m.topic.split("/")
        if parts[2] == site:
            occ = Occupancy.model_validate_json(m.payload)
            out[parts[4]] = (occ.count, occ.capacity)
    return out


def rebuilt(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int]]:
    """(site, crossings applied) of every rebuild logged."""
    out = []
    for r in caplog.records:
        m = re.match(r"rebuilt occupancy from (\d+) crossings since \S+ \(site (\S+)\)$", r.message)
        if m:
            out.append((m.group(2), int(m.group(1))))
    return out


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, threading.Event]]:
    """Holds the next rebuild of CHANGED (armed) in its InfluxDB read until released, so
    that messages can be published while the site is being replaced."""
    events = {"armed": threading.Event(), "entered": threading.Event()}
    events["release"] = threading.Event()

    def pages(influx: Influx, site: str, *args: Any) -> Iterator[dict[str, Any]]:
        if site == CHANGED and events["armed"].is_set():
            events["armed"].clear()
            events["entered"].set()
            assert events["release"].wait(60), "the rebuild was never released"
        yield from crossing_pages(influx, site, *args)

    monkeypatch.setattr(sitestate, "crossing_pages", pages)
    yield events
    events["release"].set()


def test_changed_site_file_reloads_that_site_alone_and_holds_its_messages(
    mosquitto: Mosquitto,
    influx: InfluxServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    gate: dict[str, threading.Event],
) -> None:
    caplog.set_level(logging.INFO, logger="footfall_collector")
    folder = copy_shipped(tmp_path)
    clock = FakeClock(local_ms(12, 0, 0))  # a Tuesday, since the 03:00 reset
    collector, sites_dir = start(folder, collector_settings(mosquitto.port, influx.url), clock)
    q = InfluxQuery(influx.url)
    pub = Publisher(mosquitto.port)
    rec = Recorder(mosquitto.port, zone_occupancy_subscription("+"))
    sender = Sender(pub)
    rng = random.Random(23)
    try:
        old = {name: load_site(folder / f"{name}.yaml") for name in SHIPPED}
        # before: the old models
        before = {name: walk(site, [], 60, rng) for name, site in old.items()}
        for name in SHIPPED:
            sender.send(name, before[name], clock.now_ms())

        def exact(name: str, flow: Counter[tuple[str, str]], model: Site) -> bool:
            sent = sender.sent[name]
            return (
                stored_crossings(q, name) == dict(Counter(sent))
                and stored_flows(q, name) == dict(flow)
                and counts(collector, name) == occupancy(model, sent)
            )

        wait_for(
            lambda: all(exact(n, flows(s, before[n]), s) for n, s in old.items()),
            30,
            "both sites counted exactly before the change",
        )
        other_state = collector._states[OTHER]

        # kalajarvi's file changed: its reload is held in its rebuild
        path = folder / f"{CHANGED}.yaml"
        path.write_text(changed_kalajarvi(path.read_text()))
        new = load_site(path)
        assert {z.id for z in new.zones} == {z.id for z in old[CHANGED].zones} | {"health-wing"}
        # the clinics' doors now also enter the wing: the algebra differs for old doors
        assert effects(new, "health-station-door", "in") != effects(
            old[CHANGED], "health-station-door", "in"
        )
        caplog.clear()
        scans = sites_dir.scans
        gate["armed"].set()
        sites_dir.request()
        assert gate["entered"].wait(20), "the changed site was not reloaded"

        # during the reload: kalajarvi's messages are held, iso-omena counts on
        during = {
            CHANGED: walk(new, before[CHANGED], 30, rng),
            OTHER: walk(old[OTHER], before[OTHER], 30, rng),
        }
        assert any(d == "health-wing-door" for d, _ in during[CHANGED])
        for name in SHIPPED:
            sender.send(name, during[name], clock.now_ms(), per_message=3)
        held = collector._states[CHANGED].held
        wait_for(lambda: len(held) == 10, 20, "kalajarvi's 10 messages held")
        wait_for(
            lambda: exact(OTHER, flows(old[OTHER], sender.sent[OTHER]), old[OTHER]),
            20,
            "iso-omena counted while kalajarvi is replaced",
        )
        assert stored_crossings(q, CHANGED) == dict(Counter(before[CHANGED]))  # none written
        assert sites_dir.scans == scans
        gate["release"].set()
        wait_for(lambda: sites_dir.scans > scans, 20, "the reload done")

        # after: the new model for kalajarvi
        after = {
            CHANGED: walk(new, [*before[CHANGED], *during[CHANGED]], 30, rng),
            OTHER: walk(old[OTHER], [*before[OTHER], *during[OTHER]], 30, rng),
        }
        for name in SHIPPED:
            sender.send(name, after[name], clock.now_ms())
        changed_flows = flows(old[CHANGED], before[CHANGED]) + flows(
            new, [*during[CHANGED], *after[CHANGED]]
        )
        truth = {
            CHANGED: occupancy(new, sender.sent[CHANGED]),
            OTHER: occupancy(old[OTHER], sender.sent[OTHER]),
        }
        wait_for(
            lambda: (
                exact(CHANGED, changed_flows, new)
                and exact(OTHER, flows(old[OTHER], sender.sent[OTHER]), old[OTHER])
            ),
            30,
            "both sites exact after the change",
        )
        assert truth[CHANGED]["health-wing"] > 0
        assert stored_crossings(q, CHANGED)[("health-wing-door", "in")] > 0
        assert capacities(collector, CHANGED) == {z.id: z.capacity for z in new.zones}
        assert capacities(collector, CHANGED)["library"] == 100
        caps = {name: {z.id: z.capacity for z in site.zones} for name, site in old.items()}
        caps[CHANGED] = {z.id: z.capacity for z in new.zones}
        want = {n: {z: (truth[n][z], caps[n][z]) for z in truth[n]} for n in SHIPPED}
        rec.wait_until(lambda: {n: retained_zones(rec, n) for n in SHIPPED} == want)

        # kalajarvi alone was rebuilt (from the crossings stored before the change, with
        # the new model); iso-omena's state is the same object, never paused
        assert rebuilt(caplog) == [(CHANGED, len(before[CHANGED]))]
        assert [r.message for r in caplog.records if r.message.startswith("site ")] == [
            f"site {CHANGED} changed ({path}): served, occupancy rebuilt"
        ]
        assert collector._states[OTHER] is other_state and not other_state.paused
        assert collector.sites == SHIPPED and collector.unacked == 0
    finally:
        gate["release"].set()
        rec.close()
        pub.close()
        sites_dir.stop()
        collector.stop()


class GatedInflux:
    """The collector's InfluxDB client whose writes wait while `open` is clear."""

    def __init__(self, inner: Influx) -> None:
        self.inner = inner
        self.open = threading.Event()
        self.open.set()

    def write(self, lines: list[str], rp: str | None = None) -> None:
        assert self.open.wait(60), "writes held for too long"
        self.inner.write(lines, rp)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_removed_site_file_writes_what_was_delivered_and_no_more(
    mosquitto: Mosquitto, influx: InfluxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="footfall_collector")
    folder = copy_shipped(tmp_path)
    clock = FakeClock(local_ms(12, 0, 0))
    settings = collector_settings(mosquitto.port, influx.url, receive_maximum=10)
    gated = GatedInflux(connect(settings.influx))
    collector, sites_dir = start(folder, settings, clock, gated)
    q = InfluxQuery(influx.url)
    pub = Publisher(mosquitto.port)
    sender = Sender(pub)
    rng = random.Random(5)
    sites = {name: load_site(folder / f"{name}.yaml") for name in SHIPPED}
    try:
        for name, site in sites.items():
            sender.send(name, walk(site, [], 20, rng), clock.now_ms())
        wait_for(
            lambda: all(stored_crossings(q, n) == dict(Counter(sender.sent[n])) for n in SHIPPED),
            30,
            "both sites stored",
        )
        # writes held: the collector takes 10 messages (its receive maximum), the broker
        # keeps the other 30 in the session
        gated.open.clear()
        sender.send(CHANGED, walk(sites[CHANGED], sender.sent[CHANGED], 80, rng), clock.now_ms(), 2)
        wait_for(lambda: collector.unacked == 10, 20, "10 messages received, not written")
        published = list(sender.sent[CHANGED])

        (folder / f"{CHANGED}.yaml").unlink()
        scans = sites_dir.scans
        sites_dir.request()
        wait_for(lambda: sites_dir.scans > scans, 20, "the folder read again")
        assert collector.sites == [OTHER]
        assert collector.occupancy(CHANGED) == {}
        assert f"site {CHANGED} removed from the folder: no longer served" in caplog.messages

        # written and acknowledged: the 10 taken and the 30 the broker sent afterwards
        gated.open.set()
        wait_for(
            lambda: (
                stored_crossings(q, CHANGED) == dict(Counter(published)) and collector.unacked == 0
            ),
            30,
            "every message delivered before the removal written and acknowledged",
        )
        # later messages for it are not delivered, not stored, not rejected; the ones
        # published after them at iso-omena (same connection, so routed after) count
        sender.send(CHANGED, walk(sites[CHANGED], published, 20, rng), clock.now_ms())
        sender.send(OTHER, walk(sites[OTHER], sender.sent[OTHER], 20, rng), clock.now_ms())
        wait_for(
            lambda: (
                stored_crossings(q, OTHER) == dict(Counter(sender.sent[OTHER]))
                and counts(collector, OTHER) == occupancy(sites[OTHER], sender.sent[OTHER])
            ),
            30,
            "iso-omena counted",
        )
        wait_for(lambda: collector.unacked == 0, 10, "everything acknowledged")
        assert stored_crossings(q, CHANGED) == dict(Counter(published))
        assert q.rows('SELECT count(*) FROM "rejected" WHERE "site" = \'kalajarvi\'') == []
        assert stored_flows(q, CHANGED) == dict(flows(sites[CHANGED], published))
    finally:
        gated.open.set()
        pub.close()
        sites_dir.stop()
        collector.stop()
