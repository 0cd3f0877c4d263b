"""Visits by event time, occupancy history and rollups, against real Mosquitto and
InfluxDB: one known stream published one event a message, in batches of 25, out of
order, and with a 500-event backlog hours late gives the same visits per zone and hour,
equal to the door algebra's truth computed here independently."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict
from collections.abc import Iterable

import pytest

from footfall_collector.history import HistoryWorker
from footfall_collector.influx import InfluxV1
from footfall_collector.points import Point
from footfall_collector.replay import bad_hours, hour_rows, minutes, replay
from footfall_collector.schema import (
    AGENT_STATUS,
    FAULT,
    ROLLUP_RP,
    ZONE_FLOW,
    crossing_point,
    history_pending_point,
    zone_flow_points,
)
from footfall_collector.service import Collector
from footfall_contract.hours import HOUR_MS, Window, window_of
from footfall_contract.site import Site
from footfall_contract.timefmt import format_ts
from footfall_report import load_report, parse_period
from footfall_sim.localservices import Influx, Mosquitto
from tests.support.collector import (
    InfluxQuery,
    Publisher,
    collector_settings,
    now_ms,
    small_site,
    wait_for,
)

SITE = small_site()
AGENT_OF = {
    "centre-main": "pi-1",
    "library-main": "pi-1",
    "kela-door": "pi-1",
    "library-mall": "pi-2",
    "youth-door": "pi-2",
}
TOPIC = "footfall/v1/test-site/agent/{}/crossing"

Event = tuple[str, int, int, str, str]  # agent, seq, ts_ms, door, dir


# -- the truth, computed without the project's door algebra or replay ----------------


def ancestors(zone: str | None) -> set[str]:
    parents = {z.id: z.parent for z in SITE.zones}
    out: set[str] = set()
    while zone is not None:
        out.add(zone)
        zone = parents[zone]
    return out


def moves(door: str, direction: str) -> tuple[set[str], set[str]]:
    d = next(x for x in SITE.doors if x.id == door)
    inside, outside = ancestors(d.inside), ancestors(d.outside)
    entered, left = inside - outside, outside - inside
    return (entered, left) if direction == "in" else (left, entered)


def hour_of(ts_ms: int) -> int:
    return ts_ms // HOUR_MS * HOUR_MS  # Helsinki is a whole number of hours from UTC


def truth(events: Iterable[Event]) -> dict[str, dict[tuple[str, int], int]]:
    """entries, exits and peak per (zone, hour); final levels per zone and window."""
    entries: dict[tuple[str, int], int] = defaultdict(int)
    exits: dict[tuple[str, int], int] = defaultdict(int)
    ordered = sorted(events, key=lambda e: (e[2], e[1]))
    zones = [z.id for z in SITE.zones]
    timeline: dict[str, list[tuple[int, int]]] = {z: [] for z in zones}  # (ms, level)
    level = dict.fromkeys(zones, 0)
    window = -1
    for _agent, _seq, ts, door, direction in ordered:
        w = window_of(SITE, ts).start_ms
        if w != window:  # the daily reset
            window = w
            for z in zones:
                level[z] = 0
                timeline[z].append((w, 0))
        entered, left = moves(door, direction)
        for z in entered:
            entries[(z, hour_of(ts))] += 1
            level[z] += 1
            timeline[z].append((ts, level[z]))
        for z in left:
            exits[(z, hour_of(ts))] += 1
            level[z] = max(0, level[z] - 1)
            timeline[z].append((ts, level[z]))
    peaks: dict[tuple[str, int], int] = {}
    for h in {hour_of(e[2]) for e in ordered}:
        for z, points in timeline.items():
            before = [lv for t, lv in points if t < h]
            # who was in at the hour's start, unless the daily reset is at that start
            carried = before[-1] if before and window_of(SITE, h).start_ms != h else 0
            peaks[(z, h)] = max([carried, *(lv for t, lv in points if h <= t < h + HOUR_MS)])
    final = {(z, window): level[z] for z in zones}
    return {"entries": dict(entries), "exits": dict(exits), "peak": peaks, "final": final}


def make_stream(n: int, span_ms: int, end_ms: int, seed: int = 7) -> list[Event]:
    """n crossings over [end - span, end), some in one millisecond, each agent's seq in
    time order."""
    rng = random.Random(seed)
    times = sorted(end_ms - rng.randrange(span_ms) for _ in range(n))
    for i in range(1, n, 17):
        times[i] = times[i - 1]  # two crossings in one millisecond
    seqs: dict[str, int] = defaultdict(int)
    out = []
    for t in times:
        door = rng.choice(list(AGENT_OF))
        direction = "in" if rng.random() < 0.55 else "out"
        agent = AGENT_OF[door]
        out.append((agent, seqs[agent], t, door, direction))
        seqs[agent] += 1
    return out


def messages(events: list[Event], size: int) -> list[tuple[str, bytes]]:
    """Consecutive events of one agent, up to `size` a message, in the given order."""
    out: list[tuple[str, bytes]] = []
    current: dict[str, list[Event]] = defaultdict(list)

    def flush(agent: str) -> None:
        evs = current.pop(agent)
        payload = {
            "epoch": f"epoch-{agent}",
            "events": [
                {"seq": s, "ts": format_ts(t), "door": d, "dir": dr} for _, s, t, d, dr in evs
            ],
        }
        out.append((TOPIC.format(agent), json.dumps(payload).encode()))

    for e in events:
        current[e[0]].append(e)
        if len(current[e[0]]) >= size:
            flush(e[0])
    for agent in list(current):
        flush(agent)
    return out


def arrivals(events: list[Event], mode: str) -> list[tuple[str, bytes]]:
    rng = random.Random(11)
    if mode == "single":
        return messages(events, 1)
    if mode == "batched":
        return messages(events, 25)
    if mode == "shuffled":
        shuffled = events[:]
        rng.shuffle(shuffled)
        msgs = messages(shuffled, 25)
        rng.shuffle(msgs)
        return msgs
    assert mode == "late"  # the oldest 500 arrive last, a backlog hours late
    return messages(events[500:], 25) + messages(events[:500], 50)


# -- reading back ----------------------------------------------------------------------


def stored(q: InfluxQuery) -> dict[str, dict[tuple[str, int], int]]:
    flows: dict[str, dict[tuple[str, int], int]] = {"in": {}, "out": {}}
    rows = q.rows(
        f'SELECT sum("count") AS "n" FROM "{ZONE_FLOW}" WHERE time > 0 '
        'GROUP BY time(1h), "zone", "dir" fill(none)'
    )
    for r in rows:
        flows[r["dir"]][(r["zone"], r["time"] // 1_000_000)] = r["n"]
    hourly = q.rows(f'SELECT * FROM "{ROLLUP_RP}"."visits_hourly"')
    last = q.rows('SELECT last("count") AS "n" FROM "occupancy_history" GROUP BY "zone"')
    window = max(r["time"] for r in q.rows('SELECT last("count") FROM "occupancy_history"'))
    return {
        "flow_in": flows["in"],
        "flow_out": flows["out"],
        "entries": {(r["zone"], r["time"] // 1_000_000): r["entries"] for r in hourly},
        "exits": {(r["zone"], r["time"] // 1_000_000): r["exits"] for r in hourly},
        "peak": {(r["zone"], r["time"] // 1_000_000): r["peak"] for r in hourly},
        "final": {(r["zone"], window_of(SITE, window // 1_000_000).start_ms): r["n"] for r in last},
    }


def count(q: InfluxQuery, measurement: str) -> int:
    rows = q.rows(f'SELECT count("count") FROM "{measurement}"')
    return int(rows[0]["count"]) if rows else 0


def pending(q: InfluxQuery) -> int:
    rows = q.rows('SELECT count("window_ms") FROM "history_pending"')
    return int(rows[0]["count"]) if rows else 0


def report_entries(
    db: InfluxV1, expected: dict[str, dict[tuple[str, int], int]]
) -> dict[tuple[str, dt.date], int]:
    """Entries per (zone, local day) from footfall-report, for the days of the stream."""
    days = {dt.datetime.fromtimestamp(h / 1000, SITE.tz).date() for _, h in expected["entries"]}
    now = dt.datetime.now(SITE.tz)
    out: dict[tuple[str, dt.date], int] = {}
    for day in days:
        report = load_report(db, SITE, parse_period(day.isoformat(), SITE, now))
        out.update({(z.zone, day): z.entries or 0 for z in report.zones})
    db.close()
    return out


def nonzero(table: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    return {k: v for k, v in table.items() if v}


@pytest.mark.services
def test_visits_are_the_same_for_every_arrival_order(mosquitto: Mosquitto, influx: Influx) -> None:
    end = now_ms() - 60_000
    events = make_stream(1200, 5 * HOUR_MS, end)
    expected = truth(events)
    results = {}
    reports = {}
    for mode in ("single", "batched", "shuffled", "late"):
        settings = collector_settings(mosquitto.port, influx.url)
        settings.influx.database = f"visits_{mode}"
        settings.history.interval_s = 0.3
        settings.client_id = f"collector-{mode}"
        collector = Collector(settings, SITE)
        collector.start()
        assert collector.ready.wait(10)
        pub = Publisher(mosquitto.port)
        q = InfluxQuery(influx.url, f"visits_{mode}")
        try:
            for topic, payload in arrivals(events, mode):
                pub.send(topic, payload)
            wait_for(
                lambda q=q: count(q, "crossing") == len(events),  # type: ignore[misc]
                what=f"{mode}: every crossing stored",
            )
            wait_for(
                lambda q=q: pending(q) == 0,  # type: ignore[misc]
                what=f"{mode}: history recomputed",
            )
            results[mode] = stored(q)
            reports[mode] = report_entries(InfluxV1(settings.influx), expected)
        finally:
            pub.close()
            collector.stop()
    for mode, got in results.items():
        assert got["flow_in"] == expected["entries"], mode
        assert got["flow_out"] == expected["exits"], mode
        assert nonzero(got["entries"]) == expected["entries"], mode
        assert nonzero(got["exits"]) == expected["exits"], mode
        assert got["final"] == expected["final"], mode  # occupancy history at event time
        assert {k: v for k, v in got["peak"].items() if k in expected["peak"]} == expected[
            "peak"
        ], mode
    # the report a manager files says the same, day by day
    by_day: dict[tuple[str, dt.date], int] = defaultdict(int)
    for (zone, h), n in expected["entries"].items():
        by_day[(zone, dt.datetime.fromtimestamp(h / 1000, SITE.tz).date())] += n
    for mode, got_days in reports.items():
        assert {k: v for k, v in got_days.items() if v} == dict(by_day), mode
    # every zone has a row for every hour written, zero or not: "0" differs from "no data"
    hours = {h for _, h in results["single"]["entries"]}
    assert len(results["single"]["entries"]) == len(hours) * len(SITE.zones)


@pytest.mark.services
def test_backlog_older_than_a_week_is_stored_once(mosquitto: Mosquitto, influx: Influx) -> None:
    end = now_ms() - 10 * 86_400_000
    events = make_stream(300, 4 * HOUR_MS, end, seed=3)
    expected = truth(events)
    settings = collector_settings(mosquitto.port, influx.url)
    settings.history.interval_s = 0.3
    collector = Collector(settings, SITE)
    collector.start()
    assert collector.ready.wait(10)
    pub = Publisher(mosquitto.port)
    q = InfluxQuery(influx.url)
    try:
        for _ in range(2):  # the second time is a re-delivery: nothing more
            for topic, payload in messages(events, 40):
                pub.send(topic, payload)
        wait_for(
            lambda: count(q, "crossing") == len(events),
            what="the old backlog stored",
        )
        wait_for(lambda: pending(q) == 0, what="history")
        got = stored(q)
        assert got["flow_in"] == expected["entries"]
        assert nonzero(got["entries"]) == expected["entries"]
        assert not q.rows('SELECT * FROM "rejected"')
        daily = q.rows(f'SELECT sum("entries") AS "n" FROM "{ROLLUP_RP}"."visits_daily"')
        assert daily[0]["n"] == sum(expected["entries"].values())
    finally:
        pub.close()
        collector.stop()


# -- the pure part and the estimate flags --------------------------------------------


def test_replay_clamps_like_the_live_engine_and_ties_enter_first() -> None:
    w = Window(0, 24 * HOUR_MS)
    flows = [(5_000_000, "a", "out"), (9_000_000, "a", "in"), (9_000_000, "a", "out")]
    levels = replay(["a"], w, flows)
    assert levels["a"] == [(0, 0, 0), (5_000_000, 0, 1), (9_000_000, 1, 1), (9_000_000, 0, 1)]
    rows = hour_rows(levels, flows, [0, HOUR_MS])
    assert (rows[("a", 0)].entries, rows[("a", 0)].exits, rows[("a", 0)].peak) == (1, 2, 1)
    assert rows[("a", HOUR_MS)].peak == 0


def test_history_has_a_point_a_minute_with_its_peak() -> None:
    w = Window(0, 24 * HOUR_MS)
    m = 60_000_000_000  # a minute in ns
    flows = [(5, "a", "in"), (6, "a", "in"), (7, "a", "out"), (m + 1, "a", "out")]
    flows += [(3 * m, "a", "in")]
    levels = replay(["a"], w, flows)
    assert minutes(w, levels["a"], 0) == [(0, 1, 2, 0), (60_000, 0, 1, 0), (180_000, 1, 1, 0)]
    # from the third minute on: the window's start, then what changed
    assert minutes(w, levels["a"], 150_000) == [(0, 1, 2, 0), (180_000, 1, 1, 0)]


def test_dst_windows_have_23_and_25_hours() -> None:
    spring = window_of(SITE, int(dt.datetime(2026, 3, 29, 12, tzinfo=SITE.tz).timestamp() * 1000))
    autumn = window_of(SITE, int(dt.datetime(2026, 10, 25, 12, tzinfo=SITE.tz).timestamp() * 1000))
    assert len(spring.hours()) == 23
    assert len(autumn.hours()) == 25
    # every hour start is a whole local hour
    for h in autumn.hours():
        assert dt.datetime.fromtimestamp(h / 1000, SITE.tz).minute == 0


def test_bad_hours() -> None:
    hours = [0, HOUR_MS, 2 * HOUR_MS, 3 * HOUR_MS]
    assert bad_hours(False, [(HOUR_MS + 5, True), (HOUR_MS + 9, False)], hours) == {HOUR_MS}
    assert bad_hours(True, [(2 * HOUR_MS + 1, False)], hours) == {0, HOUR_MS, 2 * HOUR_MS}
    assert bad_hours(False, [], hours) == set()


@pytest.mark.services
def test_hours_with_an_offline_agent_or_a_fault_are_estimated(influx: Influx) -> None:
    """pi-2 (library-mall, youth-door) offline 10:20-11:05, a fault on kela-door
    13:00-13:10: exactly those hours of exactly the zones those doors count are flagged."""
    site: Site = SITE
    day = dt.date(2026, 11, 10)

    def at(h: int, m: int = 0) -> int:
        return int(dt.datetime.combine(day, dt.time(h, m), tzinfo=site.tz).timestamp() * 1000)

    settings = collector_settings(1, influx.url)
    db = InfluxV1(settings.influx)
    db.ensure_database()
    lines = [
        Point(
            "crossing",
            {"site": "test-site", "door": d, "dir": "in", "agent": a},
            {"count": 1},
            at(9) * 1_000_000 + i,
        ).line()
        for i, (d, a) in enumerate(AGENT_OF.items())
    ]
    status = [(at(10, 20), 0), (at(11, 5), 1)]
    lines += [
        Point(
            AGENT_STATUS,
            {"site": "test-site", "agent": "pi-2"},
            {"value": v, "online": v == 1},
            t * 1_000_000,
        ).line()
        for t, v in status
    ]
    lines += [
        Point(
            FAULT,
            {
                "site": "test-site",
                "agent": "pi-1",
                "source": "kela-door/outer",
                "fault": "beam_blocked",
            },
            {"value": v, "active": v == 1},
            t * 1_000_000,
        ).line()
        for t, v in [(at(13), 1), (at(13, 10), 0)]
    ]
    db.write(lines)
    HistoryWorker(db, site).rebuild(day, day, now_ms())
    q = InfluxQuery(influx.url)
    flagged = {
        (r["zone"], dt.datetime.fromtimestamp(r["time"] / 1e9, site.tz).hour)
        for r in q.rows(f'SELECT * FROM "{ROLLUP_RP}"."visits_hourly" WHERE "estimated" = true')
    }
    # library-mall moves library and centre; youth-door moves youth only (library holds both)
    pi2 = {(z, h) for z in ("library", "centre", "youth") for h in (10, 11)}
    assert flagged == pi2 | {("kela", 13)}
    daily = {
        r["zone"]: r["estimated_hours"]
        for r in q.rows(f'SELECT * FROM "{ROLLUP_RP}"."visits_daily"')
        if dt.datetime.fromtimestamp(r["time"] / 1e9, site.tz).date() == day
    }
    assert daily == {"centre": 2, "library": 2, "youth": 2, "kela": 1}
    db.close()


@pytest.mark.services
def test_a_window_older_than_the_raw_retention_is_done_not_retried(influx: Influx) -> None:
    """Events just inside a 48 h raw retention whose window starts outside it: the
    history is written (bar the window's start, which InfluxDB refuses) and the marks
    are cleared instead of failing every round."""
    settings = collector_settings(1, influx.url)
    settings.influx.retention_duration = "48h"
    db = InfluxV1(settings.influx)
    db.ensure_database()
    now = now_ms()
    events = make_stream(50, 30 * 60_000, now - 47 * HOUR_MS, seed=5)
    window = window_of(SITE, events[0][2])
    if window.start_ms > now - 48 * HOUR_MS:
        pytest.skip("at this hour of the day the window starts inside the retention")
    lines = []
    for agent, seq, ts, door, direction in events:
        t = ts * 1_000_000 + seq
        entered, left = moves(door, direction)
        lines.append(crossing_point("test-site", door, direction, agent, t).line())
        lines += [
            p.line() for p in zone_flow_points("test-site", tuple(entered), tuple(left), agent, t)
        ]
    lines.append(
        history_pending_point("test-site", window.start_ms, events[0][2], now * 1_000_000).line()
    )
    db.write(lines)
    worker = HistoryWorker(db, SITE)
    assert worker.run_once(now) == 1
    assert worker.pending().windows == {}
    q = InfluxQuery(influx.url)
    got = stored(q)
    assert nonzero(got["entries"]) == truth(events)["entries"]
    db.close()
