"""`footfall-sim`: the crowd simulator. Virtual edge agents for every door of a site,
running the real edge code, fed by simulated visitors; or weeks of history straight into
InfluxDB. See docs/simulator.md.

    footfall-sim --site deploy/sites/iso-omena.yaml                 # last hour, 60x
    footfall-sim --site ... --day 2026-11-23 --speed 300            # a whole past day
    footfall-sim --site ... --mode realtime --hours 2               # the next two hours
    footfall-sim --site ... --backfill 28                           # four weeks of history
    footfall-sim --site ... --day 2026-06-15 --speed 0              # a day months ago

MQTT and InfluxDB settings come from `FOOTFALL_MQTT__*` and `FOOTFALL_INFLUX__*` (or
`--config sim.toml` with [mqtt] and [influx] tables), as for the collector. Progress goes
to stderr, a JSON summary to stdout. Bad input exits with 2 and the reason.
"""

from __future__ import annotations

import argparse
import datetime as dt
import faulthandler
import json
import logging
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from footfall_collector.config import InfluxSettings, duration_days
from footfall_contract.hours import local_date, local_day_bounds, window_of
from footfall_contract.site import Site, SiteError, load_site
from footfall_contract.timefmt import format_ts
from footfall_runtime.config import MqttSettings
from footfall_runtime.service import StopFlag, Stopping
from footfall_runtime.settings import ConfigError, FootfallSettings, load_settings

from .crowd import PROFILES, accuracy
from .runner import Pacer, agent_doors, agent_ids, edge_config
from .scenario import Simulated, day_window, simulate
from .visitors import ModelParams, VisitorModel


class SimSettings(FootfallSettings):
    """The collector's MQTT and InfluxDB settings (same variables, same TOML tables)."""

    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()


class UsageError(Exception):
    """Input that cannot be simulated: exit 2 with the reason."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
        return value

    return parse


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="footfall-sim",
        description="Crowd simulator: virtual edge agents running the real edge code for "
        "every door of a site, fed by simulated visitors.",
    )
    p.add_argument("--site", required=True, type=Path, help="site file (YAML)")
    p.add_argument(
        "--mode",
        choices=("accelerated", "realtime"),
        default="accelerated",
        help="realtime: EdgeAgents on mock pins in real time; accelerated (default): the "
        "detectors in virtual time, their events through the real outbox and publisher",
    )
    p.add_argument(
        "--speed",
        type=_non_negative,
        default=60.0,
        help="accelerated: simulated seconds per real second (default 60; 0 = as fast as "
        "possible). Never ahead of the real clock.",
    )
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--hours",
        type=_positive(float),
        help="length of the window (default 1): accelerated, the hours ending when the run "
        "ends; realtime, the hours from now",
    )
    when.add_argument(
        "--day",
        type=_date,
        help="a whole local day: accelerated, today or a past day within the raw retention "
        "(influx.retention_duration, 400 days); realtime, today",
    )
    when.add_argument(
        "--backfill",
        type=_positive(int),
        metavar="DAYS",
        help="write the DAYS days before today straight to InfluxDB (no MQTT), then their "
        "occupancy history and visit rollups, and exit",
    )
    p.add_argument("--seed", default="1", help="random seed (default 1): same seed, same crowd")
    p.add_argument(
        "--visits",
        type=_positive(float),
        help="mean visits a day over a week (default: 4 per place of the building's capacity; "
        "3,600 at Iso Omena)",
    )
    p.add_argument(
        "--ignore-hours",
        action="store_true",
        help="every zone open all the time and arrivals flat: demos and tests at night",
    )
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="crowd",
        help="doorway physics: crowd (default, some close followers) or separable",
    )
    p.add_argument(
        "--agents",
        choices=("door", "single"),
        default="door",
        help="one virtual Pi per door (default, agent ids sim-<door>) or one for all (sim)",
    )
    p.add_argument("--config", type=Path, help="TOML file with [mqtt] and [influx] tables")
    p.add_argument("--state-dir", type=Path, help="agents' outboxes (default: a temporary folder)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="simulate and count without broker or database; print the summary",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log the agents' INFO messages")
    return p


def progress(message: str) -> None:
    print(f"footfall-sim: {message}", file=sys.stderr, flush=True)


def _model(site: Site, args: argparse.Namespace) -> VisitorModel:
    return VisitorModel(
        site, ModelParams(visits_per_day=args.visits, ignore_hours=args.ignore_hours)
    )


def days_kept(site: Site, now_ms: int, retention: str | None) -> int | None:
    """How many local days before today can be written: the raw retention
    (`influx.retention_duration`) less the day in progress and the reset window before
    the oldest day, which its history starts in. InfluxDB drops older points, and the
    collector refuses older events (its `ingest.max_age_days` defaults to the same
    period). None: raw events are kept for ever (or the retention is left as it is)."""
    days = duration_days(retention)
    if days is None:
        return None
    oldest_ms = now_ms - round(days * 86_400_000)
    today = local_date(site, now_ms)
    n = int(days) + 1
    while n > 0:
        first = today - dt.timedelta(days=n)
        if window_of(site, local_day_bounds(site, first)[0]).start_ms >= oldest_ms:
            break
        n -= 1
    return n


def _window(
    site: Site, model: VisitorModel, args: argparse.Namespace, retention: str | None
) -> tuple[int, int]:
    """The simulated window in epoch ms; checked against what the collector accepts."""
    now = int(time.time() * 1000)
    today = dt.datetime.now(site.tz).date()
    if args.day is not None:
        start_s, end_s = day_window(model, args.day)
        start, end = round(start_s * 1000), round(end_s * 1000)
        if args.day > today:
            raise UsageError(f"--day {args.day} is in the future (today is {today} at the site)")
        if args.mode == "realtime":
            if args.day != today:
                raise UsageError("realtime runs from now: --day can only be today")
            return now + 2000, end
        kept = days_kept(site, now, retention)
        if kept is not None and (today - args.day).days > kept:
            raise UsageError(
                f"--day {args.day} is older than the raw retention (influx.retention_duration "
                f"{retention}): InfluxDB would drop it and the collector refuses it; the "
                f"oldest day it takes now is {today - dt.timedelta(days=kept)}"
            )
        return start, end
    duration = round((args.hours or 1.0) * 3_600_000)
    if args.mode == "realtime":
        return now + 2000, now + 2000 + duration
    start = Pacer.window_ending_now(now, duration, args.speed)
    return start, start + duration


def _summary(sim: Simulated, args: argparse.Namespace, site: Site) -> dict[str, Any]:
    units = Counter(u for v in sim.plan.visits for u in v.units)
    return {
        "site": site.site,
        "mode": "backfill" if args.backfill else args.mode,
        "seed": args.seed,
        "window": {"start": format_ts(sim.plan.start_ms), "end": format_ts(sim.plan.end_ms)},
        "visits": len(sim.plan.visits),
        "unit_visits": dict(units.most_common()),
        "true": sim.true_counts(),
        "detected": sim.detected_counts(),
        "accuracy": round(sim.accuracy(), 5),
    }


def run(args: argparse.Namespace, stop: Stopping) -> int:
    site = load_site(args.site)
    settings = load_settings(SimSettings, args.config)
    model = _model(site, args)
    agent_of = agent_ids([d.id for d in site.doors], args.agents)
    if args.backfill:
        return _backfill(site, model, settings, agent_of, args)
    started = time.monotonic()
    start_ms, end_ms = _window(site, model, args, settings.influx.retention_duration)
    sim = simulate(model, start_ms / 1000, end_ms / 1000, args.seed, PROFILES[args.profile])
    progress(
        f"{site.site}: {len(sim.plan.visits)} visits, {len(sim.plan.crossings)} crossings "
        f"from {format_ts(start_ms)} to {format_ts(end_ms)} "
        f"({time.monotonic() - started:.1f} s to simulate and count)"
    )
    if not sim.plan.visits:
        progress("nobody comes in this window (closed?); --ignore-hours simulates anyway")
    summary = _summary(sim, args, site)
    if args.dry_run or (args.mode == "accelerated" and not sim.events):
        summary["elapsed_s"] = round(time.monotonic() - started, 2)
        print(json.dumps(summary, indent=2))
        return 0

    from .runner import run_accelerated, run_realtime

    with tempfile.TemporaryDirectory(prefix="footfall-sim-") as tmp:
        state = args.state_dir or Path(tmp)
        try:
            configs = {
                a: edge_config(site.site, a, doors, settings.mqtt, state)
                for a, doors in agent_doors(agent_of).items()
            }
        except ValueError as exc:  # more doors than one virtual Pi has pins for
            raise UsageError(f"{exc}; use --agents door") from None
        if args.mode == "realtime":
            progress(f"{len(configs)} agents on mock pins, real time until {format_ts(end_ms)}")
            stats = run_realtime(configs, sim.crowd, progress, stop)
            detected = {d: stats.detected.get(d, {"in": 0, "out": 0}) for d in sim.crowd.doors}
            summary["detected"] = detected
            summary["accuracy"] = round(accuracy(sim.true_counts(), detected), 5)
        else:
            first = sim.events[0].wall_ms if sim.events else start_ms
            pacer = Pacer(max(start_ms, first - 1000), int(time.time() * 1000), args.speed)
            progress(f"{len(configs)} virtual agents, speed {args.speed:g}x")
            stats = run_accelerated(configs, sim.events, agent_of, pacer, progress, stop)
    elapsed = time.monotonic() - started
    summary.update(
        {
            "published_events": stats.stored - stats.unsent,
            "unsent_events": stats.unsent,
            "interrupted": stats.interrupted,
            "elapsed_s": round(elapsed, 2),
            "visits_per_s": round(len(sim.plan.visits) / elapsed, 2) if elapsed else None,
        }
    )
    print(json.dumps(summary, indent=2))
    return 1 if stats.unsent else 0


def _backfill(
    site: Site,
    model: VisitorModel,
    settings: SimSettings,
    agent_of: dict[str, str],
    args: argparse.Namespace,
) -> int:
    from footfall_collector.influx import PermanentWriteError, RetryableWriteError, connect

    from .backfill import backfill

    retention = settings.influx.retention_duration
    kept = days_kept(site, int(time.time() * 1000), retention)
    if kept is not None and args.backfill > kept:
        limit = f"influx.retention_duration {retention}"
        raise UsageError(
            f"--backfill {args.backfill}: older than the raw retention ({limit}), which "
            f"InfluxDB would drop; at most {kept} days now"
        )
    started = time.monotonic()
    influx = connect(settings.influx)
    try:
        stats = backfill(
            model, influx, args.backfill, args.seed, agent_of, PROFILES[args.profile], progress
        )
    except (RetryableWriteError, PermanentWriteError) as exc:
        print(f"footfall-sim: InfluxDB at {settings.influx.url}: {exc}", file=sys.stderr)
        return 1
    finally:
        influx.close()
    out = {"site": site.site, "mode": "backfill", "seed": args.seed, **stats.as_json()}
    out["elapsed_s"] = round(time.monotonic() - started, 2)
    print(json.dumps(out, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # a development machine's kernel may never report NTP sync
        logging.getLogger("footfall_edge.agent").setLevel(logging.ERROR)
    # `kill -USR1 PID` prints every thread's stack on file descriptor 2 (stderr)
    faulthandler.register(signal.SIGUSR1, file=2)
    stop = StopFlag()  # set from a signal handler: no lock (see StopFlag)
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run(args, stop)
    except (SiteError, ConfigError, UsageError) as exc:
        print(f"footfall-sim: {exc}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
