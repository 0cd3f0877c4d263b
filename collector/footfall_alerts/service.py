"""footfall-alerts: one process serving one site (`--site`) or every site of a folder
(`--sites-dir`, with `--shard K/N`), with ONE persistent MQTT session for all of them.

Its own process (not part of the collector) so that the collector's exactly-once path
never waits on a mail server, and so that alerting can be restarted or upgraded alone.

Each site has its own engine, rules, time zone, opening hours and state file
(sitealerts.py); what they share is the broker session (intake.py), the InfluxDB client,
the metrics and the HTTP API (api.py, handed this service by cli.py). A batch of MQTT
messages is split by site, each site commits its part in its own transaction, and only
the messages whose site committed are acknowledged. The service lock covers the set of
sites and every engine call, so a site reloaded or removed (`replace_site`,
`remove_site`; sitewatch.py decides when) never races a message, a tick or an API action.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from footfall_collector.influx import Influx, connect
from footfall_contract.shards import Shard, client_id
from footfall_contract.site import Site
from footfall_contract.topics import parse_agent_topic, parse_zone_occupancy_topic, topic_kind
from footfall_runtime.ratelog import LogLimiter
from footfall_runtime.service import Clock, SystemClock, Threads

from .config import AlertsSettings, token_required
from .engine import Effect, Engine
from .intake import MqttIntake
from .metrics import Metrics
from .rules import RulesFile
from .sitealerts import SiteAlerts, with_defaults
from .status import all_alerts_json, health_json, sites_health_json
from .store import Store

__all__ = ["AlertsService", "with_defaults"]

log = logging.getLogger(__name__)

THREAD_JOIN_S = 15.0
PRUNE_EVERY_S = 3600.0


def site_of_topic(topic: str) -> str | None:
    """The site a subscribed topic is about; None when it is not one of ours."""
    try:
        if topic_kind(topic) == "zone":
            return parse_zone_occupancy_topic(topic).site
        return parse_agent_topic(topic).site
    except ValueError:
        return None


class AlertsService:
    def __init__(
        self,
        settings: AlertsSettings,
        site: Site | None = None,
        rules: RulesFile | None = None,
        clock: Clock | None = None,
        influx: Influx | None = None,
        *,
        shard: Shard | None = None,
    ) -> None:
        """`site` (and its `rules`): the one site of `--site`. Without it, a service of a
        site folder: sites come with `add_site` (before or after `start`)."""
        self.settings = settings
        # first: refuse to open the API to the network without a token
        self.token_required = settings.http.port is not None and token_required(
            settings.http.host, len(settings.http.tokens)
        )
        self.one_site = site is not None
        self.shard = shard
        self.clock: Clock = clock or SystemClock()
        self.influx = influx or connect(settings.influx)
        self.metrics = Metrics()
        self.refused: dict[str, str] = {}
        """Files of the folder refused now: path -> `file:line: reason` (sitewatch.py)."""
        self._sites: dict[str, SiteAlerts] = {}
        self._lock = threading.RLock()  # the set of sites and every engine call
        self._started = False
        self._stop = threading.Event()
        self._threads = Threads()
        self._limiter = LogLimiter()
        self.intake = MqttIntake(
            settings,
            settings.client_id or client_id("footfall-alerts", site.site if site else None, shard),
            [site.site] if site else [],
            self.metrics,
            self._decide,
            self._log_limited,
            self._stop,
        )
        self.client = self.intake.client
        self.ready = self.intake.ready
        self.http: Any = None
        """The HTTP API once cli.start_with_api started it (stopped with the service)."""
        if site is not None:
            self.add_site(site, rules)

    # -- the one site of `--site` ------------------------------------------------------------

    def only(self) -> SiteAlerts:
        with self._lock:
            if len(self._sites) != 1:
                raise LookupError(f"this service serves {len(self._sites)} sites, not one")
            return next(iter(self._sites.values()))

    @property
    def site(self) -> Site:
        return self.only().site

    @property
    def rules(self) -> RulesFile:
        return self.only().rules

    @property
    def engine(self) -> Engine:
        return self.only().engine

    @property
    def store(self) -> Store:
        return self.only().store

    @property
    def mqtt_connected(self) -> bool:
        return self.intake.connected

    # -- the sites served --------------------------------------------------------------------

    def site_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._sites)

    def unit(self, site: str) -> SiteAlerts:
        """The site's alerting; KeyError when it is not served here."""
        with self._lock:
            return self._sites[site]

    def add_site(self, site: Site, rules: RulesFile | None) -> None:
        """Serve a new site: its state file opened (ConfigError when it cannot be, or a
        receiver cannot work), subscribed, and started if the service is."""
        unit = self._open(site, rules)
        with self._lock:
            if site.site in self._sites:
                unit.halt()
                unit.close()
                raise ValueError(f"site {site.site!r} is served already")
            self._sites[site.site] = unit
            self.intake.set_sites(list(self._sites))
            if self._started:
                unit.start()

    def replace_site(self, site: Site, rules: RulesFile | None) -> None:
        """Reload a served site with a new site file or rules, from its saved state. If
        the new version cannot be opened the old one keeps running (the error is raised)."""
        with self._lock:  # no message, tick or action reaches the old engine meanwhile
            old = self._sites[site.site]
            old.flush()  # saved: the new engine resumes from exactly this
            new = self._open(site, rules)
            old.halt()
            self._sites[site.site] = new
        old.close()  # its delivery threads end before the new ones start: none sent twice
        if self._started:
            new.start()

    def remove_site(self, site_id: str) -> None:
        """Stop serving a site; its state file stays (a site put back resumes from it)."""
        with self._lock:
            old = self._sites.pop(site_id)
            self.intake.set_sites(list(self._sites))
            old.halt()
        old.close()

    def _open(self, site: Site, rules: RulesFile | None) -> SiteAlerts:
        return SiteAlerts(
            self.settings,
            site,
            rules,
            clock=self.clock,
            influx=self.influx,
            client=self.client,
            metrics=self.metrics,
            warn=self._log_limited,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            self._started = True
            for unit in self._sites.values():
                unit.start()
        self._threads.spawn(self._ticker, "ticker")
        self._threads.spawn(self.intake.run, "messages")
        self.intake.start()

    def stop(self) -> None:
        self._stop.set()
        if self.http is not None:
            self.http.stop()
        self.intake.stop()
        self._threads.join(THREAD_JOIN_S)
        with self._lock:
            units = list(self._sites.values())
            for unit in units:
                unit.halt()
        for unit in units:
            unit.close()
        self.influx.close()

    # -- changes to the engines ----------------------------------------------------------

    def _decide(self, batch: list[mqtt.MQTTMessage]) -> list[mqtt.MQTTMessage] | None:
        """A batch split by site, each part on its site's engine and saved in its own
        transaction; the messages handled (to acknowledge). A site whose saving failed
        has none of its messages acknowledged (the broker delivers them again)."""
        by_site: dict[str | None, list[mqtt.MQTTMessage]] = {}
        for msg in batch:
            by_site.setdefault(site_of_topic(msg.topic), []).append(msg)
        handled: list[mqtt.MQTTMessage] = []
        with self._lock:
            for site_id, msgs in by_site.items():
                unit = self._sites.get(site_id) if site_id is not None else None
                if unit is None:
                    # a site no longer served (queued before it was unsubscribed), or a
                    # topic that is no site's: nothing to decide, acknowledged
                    self.metrics.messages.inc(len(msgs))
                    handled += msgs
                    continue
                done = unit.decide(msgs, self.intake.read)
                if done is not None:
                    handled += done
        return handled

    def apply(self, site: str, action: Callable[[Engine, int], list[Effect]]) -> None:
        """Run an API action on the site's engine and commit what it decided; KeyError
        when the site is not served here."""
        with self._lock:
            self._sites[site].apply(action)

    def sites_with(self, *, alert: str | None = None, silence: str | None = None) -> list[str]:
        """The sites with an open alert (or a silence) of this id."""
        with self._lock:
            return sorted(
                s
                for s, u in self._sites.items()
                if (alert is not None and alert in u.engine.alerts)
                or (silence is not None and silence in u.engine.silences)
            )

    # -- periodic work ---------------------------------------------------------------------

    def _ticker(self) -> None:
        next_prune = 0.0
        while not self._stop.wait(self.settings.tick_s):
            try:
                # under the lock: a site removed or replaced meanwhile closes its store
                # (after the lock), and leaves no gauge set again behind it
                with self._lock:
                    units = dict(self._sites)
                    counts = {site: u.tick() for site, u in units.items()}
                    outbox = {site: u.store.pending() for site, u in units.items()}
                    self.metrics.show_sites(counts, outbox)
                    if time.monotonic() >= next_prune:
                        next_prune = time.monotonic() + PRUNE_EVERY_S
                        keep = self.settings.delivery.keep_sent_days * 86_400_000
                        for u in units.values():
                            u.store.prune(self.clock.now_ms() - round(keep))
            except Exception:
                log.exception("tick failed")

    # -- status ------------------------------------------------------------------------------

    def snapshot_alerts(self, site: str | None = None) -> dict[str, Any]:
        """One site's alerts and silences (KeyError: not served); without a site, the
        one site of `--site`, or every site's."""
        with self._lock:
            if site is not None:
                return self._sites[site].snapshot_alerts()
            if self.one_site:
                return self.only().snapshot_alerts()
            return all_alerts_json([self._sites[s].snapshot_alerts() for s in sorted(self._sites)])

    def health(self) -> dict[str, Any]:
        with self._lock:
            units = dict(self._sites)
        if self.one_site:
            (unit,) = units.values()
            return health_json(unit.site.site, unit.outbox(), self.mqtt_connected)
        return sites_health_json(
            {s: units[s].outbox() for s in sorted(units)},
            dict(self.refused),
            str(self.shard) if self.shard is not None else None,
            self.mqtt_connected,
        )

    def _log_limited(self, key: str, message: str) -> None:
        """A warning about what outsiders send or what is down: once a minute per key."""
        if self._limiter.allow(key) is not None:
            log.warning(message)
