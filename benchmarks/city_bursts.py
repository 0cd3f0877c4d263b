"""What a burst leaves in the collector's memory, and whether the next burst adds to it
(docs/performance.md, "The collector that took the day"). One `footfall-collector run
--sites-dir` over the 40 sites of `benchmarks/city_day.py`, against real Mosquitto and
InfluxDB, takes that benchmark's day (`--per-site` crossings a site, 50 events a
message, published as fast as the broker takes them) `--bursts` times: each time the
same crossings 1 ms later, under a new epoch (every agent restarted, as after a power
cut) or, with `--same-epoch`, under one epoch with sequence numbers going on. After each
burst, once every crossing is stored and acknowledged: RSS at rest (5 s), against the
idle process and against the first burst; InfluxDB's stored count against what was sent
and each site's live occupancy against the door algebra (k bursts: k times one day's).

    .venv/bin/python -m benchmarks.city_bursts [--per-site 10000] [--bursts 4] [--same-epoch]
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.city import SITES, Msg, collector, count, publish_and_store, services
from benchmarks.city_day import day, day_yaml, occupancy_diff
from footfall_contract.hours import last_reset_before
from footfall_contract.site import load_site
from footfall_contract.timefmt import format_ts, parse_ts
from tests.support.collector import InfluxQuery


def again(messages: list[Msg], k: int, same_epoch: bool) -> list[Msg]:
    """The day's messages as the k-th burst, every event `k` ms later: under a new epoch
    (agents restarted), or with `same_epoch` under the first one, sequence numbers going
    on from the last burst's (agents that kept running)."""
    last_seq = max(e["seq"] for _, p in messages for e in json.loads(p)["events"])
    out = []
    for topic, payload in messages:
        m = json.loads(payload)
        m["epoch"] = "city-1" if same_epoch else f"city-{k}"
        for e in m["events"]:
            e["ts"] = format_ts(parse_ts(e["ts"]) + k)
            if same_epoch:
                e["seq"] += (k - 1) * (last_seq + 1)
        out.append((topic, json.dumps(m).encode()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--per-site", type=int, default=10_000, help="crossings a site a burst")
    ap.add_argument("--bursts", type=int, default=4)
    ap.add_argument("--same-epoch", action="store_true", help="agents that kept running")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="city-bursts-"))
    (work / "sites").mkdir()
    for site in SITES:
        (work / "sites" / f"{site}.yaml").write_text(day_yaml(site))
    now_ms = int(time.time() * 1000)
    reset_ms = last_reset_before(load_site(work / "sites" / f"{SITES[0]}.yaml"), now_ms)
    d = day(SITES, args.per_site, reset_ms + 60_000, now_ms - 60_000 - args.bursts)
    n = sum(d.sent.values())
    print(
        f"{n:,} crossings a burst over {len(SITES)} sites, {args.bursts} bursts, "
        + ("one epoch an agent" if args.same_epoch else "a new epoch an agent each burst"),
        flush=True,
    )
    ok, rows = True, []
    with services(work / "services") as (broker, influx):
        q = InfluxQuery(influx.url, "bursts")
        c = collector(broker, influx, work, True, "bursts")
        try:
            c.wait_ready(300)
            time.sleep(2)
            idle = c.rss()
            print(f"  idle: RSS {idle:.1f} MB", flush=True)
            for k in range(1, args.bursts + 1):
                # its rate counts the n * k stored so far: this burst's is rate / k
                burst = again(d.messages, k, args.same_epoch)
                res = publish_and_store(c, broker.port, q, burst, n * k)
                time.sleep(5)
                rss, stored = c.rss(), count(q)
                want = {s: {z: v * k for z, v in zs.items()} for s, zs in d.occupancy.items()}
                diff = occupancy_diff(c, want)
                exact = stored == n * k and not diff
                ok &= exact
                rows.append(rss)
                print(
                    f"  burst {k}: stored {stored:,} of {n * k:,} at {res['rate'] / k:,.0f}/s, "
                    f"peak {res['rss_peak']:.1f} MB, at rest {rss:.1f} MB ({rss / idle:.2f}x "
                    f"idle, {rss / rows[0]:.2f}x burst 1); occupancy "
                    f"{'exact' if not diff else 'NOT EXACT'}",
                    flush=True,
                )
        finally:
            c.proc.kill()
            c.proc.wait(10)
    growth = ", ".join(f"{b - a:+.1f}" for a, b in itertools.pairwise(rows))
    print(f"\nsummary: idle {idle:.1f} MB, after burst 1 {rows[0]:.1f} MB, then {growth} MB")
    print("stored and occupancy: " + ("EXACT" if ok else "NOT EXACT"))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
