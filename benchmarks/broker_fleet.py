"""Real edge agents by the thousand for `benchmarks/broker_restart.py`: each the
simulator's virtual Pi (`footfall_sim.runner.VirtualAgent`: the edge's own SQLite outbox
and paho publisher), fed a crossing every 10-30 s, in worker processes of up to 100."""

from __future__ import annotations

import contextlib
import heapq
import logging
import multiprocessing
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

from benchmarks.city import DOORS, SITES, Agent
from benchmarks.city_batch import Truth
from footfall_edge.detection import Crossing, Direction
from footfall_runtime.config import MqttSettings
from footfall_sim.crowd import Detected
from footfall_sim.runner import VirtualAgent, edge_config

INTERVAL_S = (10.0, 30.0)
"""A crossing an agent every this many seconds (uniform)."""


def agents(n: int) -> list[Agent]:
    """`n` agents over the 40 sites, `pi-0` of every site first (as `city.agents_of`)."""
    return [(s, j) for j in range(-(-n // len(SITES))) for s in SITES][:n]


class Fleet:
    """Some of the agents, in one process, and the producer thread feeding their outboxes."""

    def __init__(self, port: int, state: Path, who: list[Agent], seed: int) -> None:
        mqtt = MqttSettings(host="127.0.0.1", port=port)
        self.agents = {
            a: VirtualAgent(edge_config(a[0], f"pi-{a[1]}", [DOORS[a[1] % 4]], mqtt, state / a[0]))
            for a in who
        }
        self.made: list[tuple[Agent, int, str]] = []  # (agent, ts_ms, dir)
        self.seqs: Counter[Agent] = Counter()
        self.rng = random.Random(seed)
        self.on, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._produce, daemon=True)

    def start(self) -> float:
        """Every agent started; seconds until all are connected."""
        t0 = time.time()
        for a in self.agents.values():
            a.start()
        while self.connected() < len(self.agents):
            if time.time() > t0 + 300:
                raise TimeoutError(f"{self.connected()} of {len(self.agents)} agents connected")
            time.sleep(0.1)
        self.on.set()
        self.thread.start()
        return time.time() - t0

    def _produce(self) -> None:
        now = time.monotonic()
        due = [(now + self.rng.uniform(0, INTERVAL_S[1]), a) for a in self.agents]
        heapq.heapify(due)
        while not self.done.is_set():
            t, a = due[0]
            if t > time.monotonic():
                self.done.wait(min(0.05, t - time.monotonic()))
                continue
            heapq.heapreplace(due, (t + self.rng.uniform(*INTERVAL_S), a))
            if not self.on.is_set():
                continue  # paused: this crossing is not made
            door = DOORS[a[1] % 4]
            direction: Direction = "in" if self.seqs[a] % 2 == 0 else "out"
            ts = int(time.time() * 1000)
            self.agents[a].store([Detected(ts, Crossing(ts, door, direction))])
            self.made.append((a, ts, direction))
            self.seqs[a] += 1

    def connected(self) -> int:
        return sum(a.publisher.connected for a in self.agents.values())

    def marks(self) -> dict[Agent, int]:
        """Each agent's next seq: every event below it was made before now."""
        return {k: a.outbox.next_seq for k, a in self.agents.items()}

    def drained(self, marks: dict[Agent, int]) -> dict[Agent, int]:
        """`marks` without the agents whose events below their mark are acknowledged."""
        out = {}
        for k, mark in marks.items():
            if k not in self.agents:
                continue  # another process's
            oldest = self.agents[k].outbox.pending(-1, 1)
            if oldest and oldest[0].seq < mark:
                out[k] = mark
        return out

    def depth(self) -> int:
        return sum(a.outbox.depth for a in self.agents.values())

    def made_before(self, ms: int) -> int:
        return sum(1 for _, ts, _ in list(self.made) if ts < ms)

    def truth(self) -> Truth:
        return Counter((s, f"pi-{j}", d) for (s, j), _, d in list(self.made))

    def pause(self, paused: bool) -> None:
        (self.on.clear if paused else self.on.set)()

    def figures(self) -> dict[str, int]:
        p = psutil.Process()
        return {"threads": p.num_threads(), "fds": p.num_fds(), "made": len(self.made)}

    def stop(self) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join(10)
        with ThreadPoolExecutor(32) as pool:  # each stop flushes, says offline, disconnects
            list(pool.map(_stop, self.agents.values()))


def _stop(agent: VirtualAgent) -> None:
    with contextlib.suppress(Exception):  # one that never connected has no paho thread
        agent.stop()


def serve(conn: Connection, port: int, state: Path, who: list[Agent], seed: int, log: Path) -> None:
    """A worker process: its Fleet's methods called over `conn` until `stop`."""
    logging.basicConfig(filename=log, level=logging.WARNING)
    fleet = Fleet(port, state, who, seed)
    while True:
        method, args = conn.recv()
        try:
            conn.send(getattr(fleet, method)(*args))
        except Exception as exc:  # told to the main process, which stops
            conn.send(exc)
        if method == "stop":
            return


class Fleets:
    """The agents in processes of at most `per_process` each. paho waits on its sockets
    with select(), which takes no file descriptor above 1023, and an agent holds about 6
    (socket, paho's wake-up pair, the outbox's SQLite file, -wal and -shm): past ~150
    agents in one process none can connect (a Pi runs one). A Fleet's methods, summed."""

    def __init__(self, port: int, state: Path, who: list[Agent], per_process: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.n, self.conns, self.procs = len(who), [], []
        for i in range(0, len(who), per_process):
            mine, theirs = ctx.Pipe()
            args = (theirs, port, state, who[i : i + per_process], i, state / f"agents-{i}.log")
            p = ctx.Process(target=serve, args=args, daemon=True)
            p.start()
            self.conns.append(mine)
            self.procs.append(p)

    def call(self, method: str, *args: Any) -> list[Any]:
        for c in self.conns:
            c.send((method, args))
        out = [c.recv() for c in self.conns]
        for x in out:
            if isinstance(x, Exception):
                raise x
        return out

    def start(self) -> float:
        return float(max(self.call("start")))

    def connected(self) -> int:
        return sum(self.call("connected"))

    def marks(self) -> dict[Agent, int]:
        return {k: v for m in self.call("marks") for k, v in m.items()}

    def drained(self, marks: dict[Agent, int]) -> dict[Agent, int]:
        return {k: v for m in self.call("drained", marks) for k, v in m.items()}

    def depth(self) -> int:
        return sum(self.call("depth"))

    def made_before(self, ms: int) -> int:
        return sum(self.call("made_before", ms))

    def truth(self) -> Truth:
        return sum(self.call("truth"), Counter())

    def pause(self, paused: bool) -> None:
        self.call("pause", paused)

    def figures(self) -> dict[str, int]:
        figs = self.call("figures")
        return {k: sum(f[k] for f in figs) for k in figs[0]} | {"processes": len(figs)}

    def stop(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.call("stop")
        for p in self.procs:
            p.join(60)
            if p.is_alive():
                p.kill()
