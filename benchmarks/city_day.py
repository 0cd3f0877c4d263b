"""A collector restarted at the end of a busy day over 40 sites, against real Mosquitto,
InfluxDB and `footfall-collector run` (docs/scaling.md §6; the sites, publisher and
collector processes of `benchmarks/city.py`, the 50-event messages of `city_batch.py`).

The sites reset daily 20-21 hours before the run. A day since that reset is published to
a collector over them, 50 events a message, as an edge sends a batch: `--per-site`
crossings a site (default 10,000), each of its 10 agents' crossings at random times over
the hours since the reset, in and out at random on the agent's door (never more out than
in), so each zone ends the day with people in it. Once all are stored and acknowledged
the collector is SIGKILLed; InfluxDB then holds exactly what the day left.

Then, 3 rounds (`--rounds`), each a fresh `footfall-collector run` process of
  day40:   `--sites-dir` over the 40 sites and that day,
  empty40: the same over a database with no crossings (the same sites),
  day1:    `--site` over one such site with the same crossings a site (the baseline),
timed from process start to `/healthz` ready (its occupancy rebuilt from the crossings
since the reset, hour by hour); split by its log; RSS after ready (+2 s) and the peak
(VmHWM, exact) up to ready. Each day restart then checks every site's live `/occupancy`
against the door algebra of what was published, republishes each site's first and last
message (as a broker's redelivery or an agent's resend would) and checks that they are
counted as duplicates, not again, and that InfluxDB still holds exactly what was sent.

    .venv/bin/python -m benchmarks.city_day [--quick] [--per-site 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from itertools import zip_longest
from pathlib import Path

import urllib3

from benchmarks.city import (
    AGENTS_PER_SITE,
    DOORS,
    ENTERS,
    SITES,
    Msg,
    Proc,
    Result,
    agents_of,
    blast,
    collector,
    count,
    med,
    publish_and_store,
    restart_split,
    services,
    site_yaml,
)
from benchmarks.city_batch import EVENTS, ZONES, Truth, stored_diff, topic
from footfall_contract.hours import last_reset_before
from footfall_contract.site import load_site
from footfall_contract.timefmt import format_ts
from footfall_sim.localservices import Mosquitto
from tests.support.collector import InfluxQuery

RESET_AGO_H = 20
"""Hours (plus the minutes past the hour) from the sites' last daily reset to the run:
the restart comes late in the day, and the rebuild reads 21 hourly spans a site."""
CONFIGS = ("day40", "empty40", "day1")
Occupancy = dict[str, dict[str, int]]  # site -> zone -> people


@dataclasses.dataclass
class Day:
    """What was published: the messages, the truth per (site, agent, dir), each site's
    occupancy by the door algebra, and the messages to publish again."""

    messages: list[Msg]
    sent: Truth
    occupancy: Occupancy
    again: list[Msg]
    again_events: int


def day_yaml(site: str) -> str:
    """`city.site_yaml` with the reset RESET_AGO_H hours before this hour."""
    reset = (dt.datetime.now(dt.UTC).hour - RESET_AGO_H) % 24
    return re.sub(r'reset_at: "\d\d:00"', f'reset_at: "{reset:02d}:00"', site_yaml(site))


def day(sites: list[str], per_site: int, start_ms: int, end_ms: int, seed: int = 1) -> Day:
    """Each agent's share of `per_site` crossings at random times in [start, end), in or
    out at random (in while nobody it let in is left), in messages of EVENTS; the
    messages agent after agent, as city.py sends them."""
    rng = random.Random(seed)
    per_agent = per_site // AGENTS_PER_SITE
    sent: Truth = Counter()
    occupancy = {s: dict.fromkeys(ZONES, 0) for s in sites}
    by_agent: dict[tuple[str, int], list[Msg]] = {}
    for a in agents_of(sites):
        door, inside, events = DOORS[a[1] % 4], 0, []
        for seq, ts in enumerate(sorted(rng.randrange(start_ms, end_ms) for _ in range(per_agent))):
            direction = "in" if inside == 0 or rng.random() < 0.5 else "out"
            inside += 1 if direction == "in" else -1
            events.append({"seq": seq, "ts": format_ts(ts), "door": door, "dir": direction})
            sent[(a[0], f"pi-{a[1]}", direction)] += 1
        occupancy[a[0]][ENTERS[door]] += inside
        by_agent[a] = [
            (topic(a, "crossing"), json.dumps({"epoch": "city", "events": chunk}).encode())
            for chunk in (events[i : i + EVENTS] for i in range(0, len(events), EVENTS))
        ]
    rounds = zip_longest(*by_agent.values())
    messages = [m for batch in rounds for m in batch if m is not None]
    last = AGENTS_PER_SITE - 1
    again = [m for s in sites for m in (by_agent[(s, 0)][0], by_agent[(s, last)][-1])]
    again_events = sum(len(json.loads(p)["events"]) for _, p in again)
    return Day(messages, sent, occupancy, again, again_events)


def metric(c: Proc, name: str) -> float:
    """One unlabelled sample of the collector's /metrics."""
    r = urllib3.request("GET", f"http://127.0.0.1:{c.http_port}/metrics", timeout=2)
    for line in r.data.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def vmhwm(c: Proc) -> float:
    """The process's peak RSS so far (MB), from the kernel: no sample can miss it."""
    for line in Path(f"/proc/{c.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def occupancy_diff(c: Proc, want: Occupancy, timeout_s: float = 30) -> list[str]:
    """Each site's live occupancy against the door algebra, until equal or `timeout_s`."""
    t0, diff = time.time(), ["not checked"]
    while diff and time.time() < t0 + timeout_s:
        diff = []
        for site, zones in want.items():
            live = c.get(f"/occupancy?site={site}") or {}
            if {z: v["count"] for z, v in live.items()} != zones:
                diff.append(f"{site}: live {live}, door algebra {zones}")
        time.sleep(0 if not diff else 0.2)
    return diff


def rebuilt_from(log: Path, offset: int) -> int:
    """Crossings the process's rebuild applied, over all its sites (from its log)."""
    text = log.read_text()[offset:]
    return sum(int(n) for n in re.findall(r"rebuilt occupancy from (\d+) crossings", text))


def fill(c: Proc, port: int, q: InfluxQuery, d: Day | None) -> Result:
    """The day published to a running collector until stored and acknowledged, its
    occupancy checked; then SIGKILLed. Its RSS after the day and its peak."""
    c.wait_ready(300)
    res: Result = {"rss_idle": c.rss()}
    if d is not None:
        n = sum(d.sent.values())
        res |= publish_and_store(c, port, q, d.messages, n)
        t0 = time.time()
        while metric(c, "footfall_unacked") and time.time() < t0 + 30:
            time.sleep(0.1)
        res["hwm"], res["diff"] = vmhwm(c), occupancy_diff(c, d.occupancy)
    c.proc.kill()
    c.proc.wait(10)
    return res


def restart(c: Proc, port: int, q: InfluxQuery, d: Day | None) -> Result:
    """A fresh process over what the database holds: start to ready, RSS; for a day,
    occupancy against the truth, and the republished messages counted once."""
    offset = c.log.stat().st_size
    c.start()
    res: Result = {"ready_s": c.wait_ready(300), "rss_peak": vmhwm(c)}
    res |= restart_split(c.log, offset, c.started)
    res["sites"] = len((c.get("/healthz") or {}).get("sites", []))
    time.sleep(2)  # at rest, as city.idle
    res["rss_ready"], res["rebuilt_n"] = c.rss(), rebuilt_from(c.log, offset)
    if d is not None:
        diff = occupancy_diff(c, d.occupancy)
        dup0 = metric(c, "footfall_duplicate_crossings_total")
        blast(port, d.again)
        t0 = time.time()
        while metric(c, "footfall_duplicate_crossings_total") < dup0 + d.again_events:
            if time.time() > t0 + 60:
                break
            time.sleep(0.1)
        res["dups"] = metric(c, "footfall_duplicate_crossings_total") - dup0
        diff += occupancy_diff(c, d.occupancy) + stored_diff(q, d.sent)
        res["exact"] = not diff and res["dups"] == d.again_events
        res["diff"] = diff[:5]
    c.stop()
    return res


def fill_one(k: str, c: Proc, q: InfluxQuery, d: Day | None, reset_ms: int) -> Result:
    n = sum(d.sent.values()) if d else 0
    print(f"  filling {k}: {n:,} crossings since {format_ts(reset_ms)}", end="", flush=True)
    res = fill(c, int(c.env["FOOTFALL_MQTT__PORT"]), q, d) | {"stored": count(q)}
    shown = ", ".join(f"{x} {v:,.1f}" for x, v in res.items() if type(v) is float)
    res["people"] = sum(sum(z.values()) for z in d.occupancy.values()) if d else 0
    verdict = "exact" if not res.get("diff") else "NOT EXACT"
    print(f"; {shown}; occupancy ({res['people']:,} people in zones) {verdict}")
    return res


def run(work: Path, per_site: int, rounds: int) -> tuple[dict[str, list[Result]], Result]:
    now_ms = int(time.time() * 1000)
    reset_ms = last_reset_before(load_site(work / "solo.yaml"), now_ms)
    span = (reset_ms + 60_000, now_ms - 60_000)
    days: dict[str, Day | None] = {
        "day40": day(SITES, per_site, *span),
        "empty40": None,
        "day1": day(["solo"], per_site, *span),
    }
    out: dict[str, list[Result]] = {k: [] for k in CONFIGS}
    fills: Result = {}
    with services(work / "services") as (broker, influx):
        # The empty database's collector has a broker of its own: on the shared one its
        # session would keep, while it is down, what the 40-site day republishes.
        quiet = Mosquitto(work / "quiet-mqtt")
        quiet.start()
        brokers = {"day40": broker, "empty40": quiet, "day1": broker}
        qs = {k: InfluxQuery(influx.url, k) for k in CONFIGS}
        procs: dict[str, Proc] = {}
        try:
            for k in CONFIGS:
                procs[k] = collector(brokers[k], influx, work, k != "day1", k)
                fills[k] = fill_one(k, procs[k], qs[k], days[k], reset_ms)
            for r in range(rounds):
                for k in CONFIGS:
                    res = restart(procs[k], brokers[k].port, qs[k], days[k])
                    out[k].append(res)
                    shown = ", ".join(f"{x} {v:.2f}" for x, v in res.items() if type(v) is float)
                    verdict = {True: "; exact", False: "; NOT EXACT", None: ""}[res.get("exact")]
                    print(f"  round {r + 1} {k}: {shown}; rebuilt {res['rebuilt_n']:,}{verdict}")
                    if res.get("diff"):
                        print("    " + "\n    ".join(res["diff"]))
        finally:
            quiet.kill()
    fills["sent"] = {k: sum(d.sent.values()) if d else 0 for k, d in days.items()}
    fills["again"] = {k: d.again_events for k, d in days.items() if d}
    return out, fills


def report(out: dict[str, list[Result]], fills: Result, per_site: int) -> bool:
    day40, empty40, day1 = (out[k] for k in CONFIGS)
    print(
        f"\nsummary: medians of {len(day40)} restarts; {per_site:,} crossings a site since "
        f"the reset ({fills['sent']['day40']:,} over 40 sites)"
    )
    print(f"  {'':44} {'day40':>8} {'empty40':>8} {'day1':>8}  day40/empty40  day40/day1")
    for key, label in (
        ("ready_s", "process start -> /healthz ready, s"),
        ("started", "  -> 'starting' logged (Python, imports), s"),
        ("rebuilt", "  -> every site's occupancy rebuilt, s"),
        ("connected", "  -> MQTT connected, s"),
        ("rss_peak", "RSS peak up to ready (VmHWM), MB"),
        ("rss_ready", "RSS 2 s after ready, MB"),
    ):
        a, b, c = med(day40, key), med(empty40, key), med(day1, key)
        print(f"  {label:44} {a:8.2f} {b:8.2f} {c:8.2f}  {a / b:13.2f}  {a / c:10.2f}", end="")
        print("  (" + " | ".join("/".join(f"{r[key]:.2f}" for r in out[k]) for k in CONFIGS) + ")")
    for k in CONFIGS:
        alone = statistics.median(r["rebuilt"] - r["started"] for r in out[k])
        print(f"  {k}: from 'starting' logged to every site rebuilt, median {alone:.2f} s")
    for k in ("day40", "day1"):
        f = fills[k]
        print(
            f"  the collector that took {k}'s day: RSS idle {f['rss_idle']:.1f} MB, after the day "
            f"{f['rss_end']:.1f} MB, peak {f['hwm']:.1f} MB; stored {f['stored']:,} at "
            f"{f['rate']:,.0f} crossings/s; occupancy {'exact' if not f['diff'] else 'NOT EXACT'}"
        )
    ok = all(not fills[k]["diff"] for k in ("day40", "day1"))
    ok &= all(r["sites"] == (1 if k == "day1" else len(SITES)) for k in CONFIGS for r in out[k])
    ok &= all(r["rebuilt_n"] == 0 for r in empty40)
    for k in ("day40", "day1"):
        runs = out[k]
        exact = all(r["exact"] and r["rebuilt_n"] == fills["sent"][k] for r in runs)
        ok &= exact
        dups = "/".join(f"{r['dups']:.0f}" for r in runs)
        print(
            f"  {k}: each restart rebuilt {fills['sent'][k]:,} crossings, live occupancy = door "
            f"algebra, {fills['again'][k]:,} republished counted as duplicates (counted: "
            f"{dups}), stored = sent: "
            f"{'EXACT' if exact else 'NOT EXACT'} ({len(runs)} restarts)"
        )
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short try: 500 a site, 1 round")
    ap.add_argument("--per-site", type=int, help="crossings a site since the reset (10,000)")
    ap.add_argument("--rounds", type=int, help="restarts per figure (default 3; --quick 1)")
    ap.add_argument("--keep", action="store_true", help="keep logs and data")
    args = ap.parse_args()
    per_site = args.per_site or (500 if args.quick else 10_000)
    if per_site < AGENTS_PER_SITE:
        ap.error(f"--per-site: at least {AGENTS_PER_SITE} (a crossing an agent)")
    rounds = args.rounds or (1 if args.quick else 3)
    work = Path(tempfile.mkdtemp(prefix="city-day-"))
    (work / "sites").mkdir()
    for site in SITES:
        (work / "sites" / f"{site}.yaml").write_text(day_yaml(site))
    (work / "solo.yaml").write_text(day_yaml("solo"))
    print(f"{per_site:,} crossings a site, {EVENTS} a message; {rounds} round(s)", flush=True)
    out, fills = run(work, per_site, rounds)
    ok = report(out, fills, per_site)
    if args.keep or not ok:
        print(f"logs and data kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
