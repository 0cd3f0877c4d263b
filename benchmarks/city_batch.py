"""50 events a message over 40 sites, and InfluxDB 1.6 holding 40 sites' series, against
real Mosquitto, InfluxDB and `footfall-collector run` (docs/scaling.md §6; the sites,
publisher and collector processes of `benchmarks/city.py`).

batch50: one collector over the 40 generated sites (400 agents) against it over 1 such
   site (10 agents), alternated, a fresh database each run: the same number of QoS 1
   crossing messages of 50 events each (an edge batch, far below the contract's 256 KiB;
   each agent's events alternate in and out, their times rising over the last 3 hours),
   events/s and messages/s from the first publish to the last crossing countable in
   InfluxDB, collector CPU an event, RSS; stored crossings per site, agent and direction
   against the published ones.
series: after the last round, each agent's status, health and beam faults are published
   too, and the history worker is let finish; then, collector stopped, the series in the
   40-site and the 1-site database (SHOW SERIES CARDINALITY, and SHOW SERIES counted per
   measurement) against docs/scaling.md §1 applied to the generated sites, and the time
   of the web's and Grafana's hourly queries of one site (medians), answers checked.

    .venv/bin/python -m benchmarks.city_batch [--quick] [--phase batch50,series]
        [--messages 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from benchmarks.city import (
    AGENTS_PER_SITE,
    DOORS,
    ENTERS,
    SITES,
    Agent,
    Msg,
    Result,
    agents_of,
    blast,
    collector,
    idle,
    med,
    publish_and_store,
    services,
    site_yaml,
)
from footfall_collector.schema import ROLLUP_RP, VISITS_DAILY, VISITS_HOURLY, rollup_from
from footfall_contract.limits import MAX_PAYLOAD_BYTES
from footfall_contract.messages import BEAMS, FAULT_NAMES
from footfall_contract.timefmt import format_ts
from footfall_sim.localservices import Influx, Mosquitto
from footfall_web.history import history_query, history_request, visits_query
from tests.support.collector import InfluxQuery
from tests.support.grafana import load_build, regex_value, substitute

EVENTS = 50
SPAN_MS = 3 * 3_600_000
"""Event times rise evenly over the 3 hours before the run: hourly buckets to query."""
ZONES = sorted(set(ENTERS.values()))
Truth = Counter[tuple[str, str, str]]  # (site, agent, dir) -> crossings sent
PHASES = ("batch50", "series")
VISITS = "web visits (zone_flow)"


def topic(a: Agent, kind: str) -> str:
    return f"footfall/v1/{a[0]}/agent/pi-{a[1]}/{kind}"


def batches(agents: list[Agent], n: int, now_ms: int) -> tuple[list[Msg], Truth, Counter[Agent]]:
    """`n` messages of EVENTS crossings, agent after agent as in city.py; each agent's
    events alternate in and out on its door (no zone below 0). Also the truth per (site,
    agent, dir) and each agent's next seq."""
    per_agent = -(-n // len(agents)) * EVENTS
    seqs: Counter[Agent] = Counter()
    sent: Truth = Counter()
    messages: list[Msg] = []
    for i in range(n):
        a, events = agents[i % len(agents)], []
        for _ in range(EVENTS):
            seq, direction = seqs[a], "in" if seqs[a] % 2 == 0 else "out"
            ts = now_ms - SPAN_MS + seq * SPAN_MS // per_agent
            events.append(
                {"seq": seq, "ts": format_ts(ts), "door": DOORS[a[1] % 4], "dir": direction}
            )
            sent[(a[0], f"pi-{a[1]}", direction)] += 1
            seqs[a] += 1
        payload = json.dumps({"epoch": "city", "events": events}).encode()
        assert len(payload) <= MAX_PAYLOAD_BYTES, len(payload)
        messages.append((topic(a, "crossing"), payload))
    return messages, sent, seqs


def agent_reports(agents: list[Agent], seqs: Counter[Agent], sent: Truth) -> list[Msg]:
    """Per agent its status (online), a health report and its door's two beams in both
    faults (active): the agent series of docs/scaling.md §1."""
    ts, out = format_ts(int(time.time() * 1000)), []
    for a in agents:
        door, agent = DOORS[a[1] % 4], f"pi-{a[1]}"
        status = {"state": "online", "epoch": "city", "ts": ts, "sw": "bench"}
        totals = {door: {d: sent[(a[0], agent, d)] for d in ("in", "out")}}
        health = {"epoch": "city", "ts": ts, "uptime_s": 60, "queue_depth": 0, "totals": totals}
        faults = [
            {"seq": seqs[a] + k, "ts": ts, "source": f"{door}/{beam}", "fault": f, "active": True}
            for k, (beam, f) in enumerate((b, f) for b in BEAMS for f in FAULT_NAMES)
        ]
        out += [
            (topic(a, "status"), json.dumps(status).encode()),
            (topic(a, "health"), json.dumps(health).encode()),
            (topic(a, "fault"), json.dumps({"epoch": "city", "events": faults}).encode()),
        ]
    return out


def stored_diff(q: InfluxQuery, sent: Truth) -> list[str]:
    rows = q.rows('SELECT count("count") FROM "crossing" GROUP BY "site", "agent", "dir"')
    got = {(r["site"], r["agent"], r["dir"]): r["count"] for r in rows}
    out = [f"{k}: stored {got.get(k, 0)}, sent {v}" for k, v in sent.items() if got.get(k) != v]
    return out + [f"{k}: stored {v}, never sent" for k, v in got.items() if k not in sent]


def settled(q: InfluxQuery, agents: int, timeout_s: float = 150) -> float:
    """Seconds until the agents' reports are stored and the history worker has done every
    window it was given (no `history_pending` mark left, rollups written)."""
    t0 = time.time()
    while time.time() < t0 + timeout_s:
        health = q.rows('SELECT count("uptime_s") FROM "agent_health"')
        pending = q.rows('SELECT count("window_ms") FROM "history_pending"')
        rollups = q.rows(f'SELECT count("entries") FROM "{ROLLUP_RP}"."visits_daily"')
        if health and health[0]["count"] >= agents and not pending and rollups:
            return time.time() - t0
        time.sleep(0.5)
    raise TimeoutError("agent reports or the history worker not done")


def batch_run(
    broker: Mosquitto, influx: Influx, work: Path, multi: bool, n: int, db: str, reports: bool
) -> Result:
    c = collector(broker, influx, work, multi, db)
    try:
        res = idle(c)
        agents = agents_of(SITES if multi else ["solo"])
        messages, sent, seqs = batches(agents, n, int(time.time() * 1000))
        q = InfluxQuery(influx.url, db)
        res |= publish_and_store(c, broker.port, q, messages, sum(sent.values()))
        res["msg_rate"], diff = res["rate"] / EVENTS, stored_diff(q, sent)
        res["exact"], res["diff"], res["sent"] = not diff, diff[:5], sent
        if reports:
            blast(broker.port, agent_reports(agents, seqs, sent))
            res["settle_s"] = settled(q, len(agents))
        return res
    finally:
        c.stop()


def part_batch(work: Path, n: int, rounds: int, reports: bool) -> dict[str, list[Result]]:
    """Alternated runs; the last round's databases are left for the series phase."""
    out: dict[str, list[Result]] = {"40 sites": [], "1 site": []}
    with services(work / "batch-services") as (broker, influx):
        for r in range(rounds):
            for label, multi in (("40 sites", True), ("1 site", False)):
                db = f"{'many' if multi else 'one'}_{r}"
                last = reports and r == rounds - 1
                res = batch_run(broker, influx, work, multi, n, db, last)
                out[label].append(res | {"db": db})
                shown = ", ".join(f"{k} {v:,.1f}" for k, v in res.items() if type(v) is float)
                print(f"  round {r + 1} {label}: {shown}; ", end="")
                print("exact" if res["exact"] else f"NOT EXACT {res['diff']}", flush=True)
            if last:  # and one site holding what each of the 40 holds
                same = batch_run(broker, influx, work, False, n // len(SITES), "one_same", True)
                same["db"] = "one_same"
                out["same"] = [same]
                print("  1 site holding as much as each of the 40: ", end="")
                print("exact" if same["exact"] else f"NOT EXACT {same['diff']}", flush=True)
                runs = {"40": (out["40 sites"][-1], SITES[0]), "1": (out["1 site"][-1], "solo")}
                out["series"] = [series(influx, runs | {"1same": (same, "solo")})]
    return out


# -- series and queries -----------------------------------------------------------------


def expected(sites: int) -> dict[str, int]:
    """docs/scaling.md §1 for these sites, as the run leaves them: every agent on one
    door (so its door's terms count per agent: 2 crossing, 2 zone_flow a zone its door
    enters or leaves, 4 fault), Z zones, no presence sensor; `occupancy_drift` is written
    for every zone at start; no `occupancy_reset` (no daily reset in the run) and no
    `history_pending` (its marks, and so its series, deleted once the worker is done)."""
    a, z = AGENTS_PER_SITE, len(ZONES)
    per_site = {
        "crossing": 2 * a,
        "zone_flow": 2 * a,  # each door here enters or leaves one zone (ENTERS)
        "occupancy": z,
        "occupancy_history": z,
        "occupancy_drift": z,
        "occupancy_reset": 0,
        "history_pending": 0,
        "fault": 4 * a,
        "agent_health": a,
        "agent_status": a,
        "visits_hourly": z,
        "visits_daily": z,
    }
    return {m: v * sites for m, v in per_site.items()}


def cardinality(q: InfluxQuery, measurement: str = "") -> int:
    """SHOW SERIES CARDINALITY (all retention policies), or of one measurement (in its
    own policy: FROM "visits_daily" alone finds nothing)."""
    rollup = measurement in (VISITS_HOURLY, VISITS_DAILY)
    source = rollup_from(measurement) if rollup else f'"{measurement}"'
    rows = q.rows("SHOW SERIES CARDINALITY" + (f" FROM {source}" if measurement else ""))
    return sum(
        int(v) for r in rows for k, v in r.items() if k in ("count", "cardinality estimation")
    )


def series_by_measurement(q: InfluxQuery) -> Counter[str]:
    return Counter(r["key"].split(",", 1)[0] for r in q.rows("SHOW SERIES"))


def queries(site: str, end_ms: int) -> dict[str, str]:
    """The web's history of the hall (levels, visits) and Grafana's entries per hour of
    every zone, hourly over the stored span, one site selected."""
    start_ms = end_ms - SPAN_MS - 3_600_000
    req = history_request(
        site, "hall", format_ts(start_ms), format_ts(end_ms), "1h", end_ms, max_points=1000
    )
    build = load_build()
    grafana = build.entries(group=f'time(1h), "zone" fill(0) {build.TZ}')
    values = {"site": regex_value([site]), "zone": regex_value(ZONES), "tz": "UTC"}
    return {
        "web levels (occupancy_history)": history_query(req),
        VISITS: visits_query(req),
        "Grafana entries/h by zone": substitute(grafana, (start_ms, end_ms), values),
    }


def hall_entries(sent: Truth, site: str) -> int:
    agents = {f"pi-{j}" for j in range(AGENTS_PER_SITE) if ENTERS[DOORS[j % 4]] == "hall"}
    return sum(v for (s, a, d), v in sent.items() if s == site and a in agents and d == "in")


def series(influx: Influx, runs: dict[str, tuple[Result, str]], reps: int = 9) -> Result:
    """Series of each database, and the query times (ms, each the median of `reps`, the
    databases taking turns) with the site given for it selected."""
    out: Result = {"q": {}, "check": {}, "crossings": {}}
    end_ms, times = int(time.time() * 1000), defaultdict[tuple[str, str], list[float]](list)
    qs = {label: InfluxQuery(influx.url, run["db"]) for label, (run, _) in runs.items()}
    for label, (run, site) in runs.items():
        q = qs[label]
        out[f"card_{label}"] = cardinality(q)
        out[f"by_m_{label}"] = series_by_measurement(q)
        out[f"card_m_{label}"] = {m: cardinality(q, m) for m in expected(1) | out[f"by_m_{label}"]}
        out[f"expect_{label}"] = expected(len({k[0] for k in run["sent"]}))
        out["crossings"][label] = sum(v for k, v in run["sent"].items() if k[0] == site)
        rows = q.rows(queries(site, end_ms)[VISITS])  # also the warm-up
        got, want = sum(r["visits"] or 0 for r in rows), hall_entries(run["sent"], site)
        out["check"][label] = got == want
        print(f"  {run['db']}, {site}: the hall's entries from the web's query {got}, sent {want}")
    for _ in range(reps):
        for label, (_, site) in runs.items():
            for name, query in queries(site, end_ms).items():
                t0 = time.perf_counter()
                qs[label].rows(query)
                times[(label, name)].append((time.perf_counter() - t0) * 1000)
    out["q"] = {k: statistics.median(v) for k, v in times.items()}
    return out


def report_series(s: Result) -> bool:
    """The table of series against the expectation (a difference is a finding, printed);
    True if the queries' answers were right."""
    print("\nseries: SHOW SERIES counted per measurement, SHOW SERIES CARDINALITY FROM it, ")
    print("and docs/scaling.md §1 for these sites (the 40-site database, then the 1-site one)")
    head = f"{'listed':>7} {'card.':>7} {'expect':>7}"
    print(f"  {'measurement':18} {head}  {head}")
    for m in sorted(set(s["by_m_40"]) | set(s["expect_40"])):
        row = [s[f"{k}_{n}"].get(m, 0) for n in ("40", "1") for k in ("by_m", "card_m", "expect")]
        mark = "" if row[0] == row[1] == row[2] and row[3] == row[4] == row[5] else "  <- differs"
        print(f"  {m:18} " + " ".join(f"{v:>7,}" for v in row[:3]), end="  ")
        print(" ".join(f"{v:>7,}" for v in row[3:]) + mark)
    row = [sum(s[f"{k}_{n}"].values()) for n in ("40", "1") for k in ("by_m", "card_m", "expect")]
    print(f"  {'all':18} " + " ".join(f"{v:>7,}" for v in row[:3]), end="  ")
    print(" ".join(f"{v:>7,}" for v in row[3:]))
    print(
        f"  SHOW SERIES CARDINALITY (the database, an estimate in 1.6): 40 sites "
        f"{s['card_40']:,}, 1 site {s['card_1']:,}"
    )
    a, z = AGENTS_PER_SITE, len(ZONES)
    print(
        f"  §1 per site ({a} agents on {len(DOORS)} doors, {z} zones): 2A crossing + 2A "
        f"zone_flow + 4A fault + 2A agent + 6Z + 1 = {10 * a + 6 * z + 1}, "
        f"{(10 * a + 6 * z + 1) * len(SITES):,} for 40 sites; here without occupancy_reset "
        f"and history_pending: {10 * a + 5 * z}, {(10 * a + 5 * z) * len(SITES):,}"
    )
    c = s["crossings"]
    print(
        f"queries, one site selected, hourly over 4 h: median ms of 9; the 40-site database "
        f"({c['40']:,} crossings of the site) against the 1-site one holding as many "
        f"({c['1same']:,}), and the 1-site one of the run ({c['1']:,})"
    )
    for name in [k[1] for k in s["q"] if k[0] == "40"]:
        x, y, full = s["q"][("40", name)], s["q"][("1same", name)], s["q"][("1", name)]
        print(f"  {name:30} 40 sites {x:6.1f}  1 site {y:6.1f}  ratio {x / y:.2f}", end="")
        print(f"  (1 site, {c['1']:,} crossings: {full:.1f})")
    return all(s["check"].values())


def report_batch(tp: dict[str, list[Result]]) -> bool:
    many, one = tp["40 sites"], tp["1 site"]
    print(f"\nsummary: medians of {len(many)}; ratio = 40 sites (400 agents) / 1 site (10 agents)")
    for key, label, fmt in (
        ("rate", f"events/s ({EVENTS} a message), publish -> stored", "{:,.0f}"),
        ("msg_rate", "messages/s, publish -> stored", "{:,.0f}"),
        ("cpu_us", "collector CPU us an event", "{:.1f}"),
        ("rss_idle", "RSS idle after start, MB", "{:.1f}"),
        ("rss_end", "RSS at the end, MB", "{:.1f}"),
        ("rss_peak", "RSS peak, MB", "{:.1f}"),
    ):
        a, b = med(many, key), med(one, key)
        runs = (
            "/".join(fmt.format(r[key]) for r in many)
            + " | "
            + "/".join(fmt.format(r[key]) for r in one)
        )
        print(f"  {label:44} 40 sites {fmt.format(a):>7}  1 site {fmt.format(b):>7}  ", end="")
        print(f"ratio {a / b:.2f}  ({runs})")
    print(f"  publisher alone: {med(many + one, 'pub_rate'):,.0f} messages/s")
    exact = all(r["exact"] for r in many + one)
    n = sum(many[0]["sent"].values())
    print(
        f"  stored = published per site, agent and direction: {'EXACT' if exact else 'NOT EXACT'} "
        f"({n:,} crossings a run, {len(many + one)} runs)"
    )
    return exact


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short try: fewer messages, 1 round")
    ap.add_argument("--phase", default=",".join(PHASES), help="batch50, series or both")
    ap.add_argument("--messages", type=int, help=f"{EVENTS}-event messages a run (default 5,000)")
    ap.add_argument("--rounds", type=int, help="runs per figure (default 3; --quick 1)")
    ap.add_argument("--keep", action="store_true", help="keep logs and data")
    args = ap.parse_args()
    phases = set(args.phase.split(","))
    if not phases or phases - set(PHASES):
        ap.error(f"--phase: one or more of {', '.join(PHASES)}")
    n = args.messages or (500 if args.quick else 5_000)
    rounds = args.rounds or (1 if args.quick or "batch50" not in phases else 3)
    work = Path(tempfile.mkdtemp(prefix="city-batch-"))
    (work / "sites").mkdir()
    for site in SITES:
        (work / "sites" / f"{site}.yaml").write_text(site_yaml(site))
    (work / "solo.yaml").write_text(site_yaml("solo"))
    print(
        f"{n:,} QoS 1 messages of {EVENTS} crossings a run, {rounds} round(s) alternated",
        flush=True,
    )
    tp = part_batch(work, n, rounds, "series" in phases)
    ok = all(r["exact"] for runs in tp.values() for r in runs if "exact" in r)
    if "batch50" in phases:
        ok &= report_batch(tp)
    if "series" in phases:
        ok &= report_series(tp["series"][0])
    if args.keep or not ok:
        print(f"logs and data kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
