"""The doors between two places of a site: the zone tree as a graph (a door joins its
inside zone to its outside one, or to the street), searched breadth-first through the
zones open at the time, never through the street. Apart from the visitor model because
it knows only the site's doors, not who wants to go where or when."""

from __future__ import annotations

import random
from collections import deque

from footfall_contract.site import Site
from footfall_edge.detection import Direction

Node = str | None  # a zone id, or None for the street / the mall
Step = tuple[str, Direction]  # (door, direction) of one crossing


class Routes:
    """Ways through one site's doors; distances cached per set of open zones."""

    def __init__(self, site: Site) -> None:
        self._adj: dict[str, list[tuple[str, str, Direction]]] = {z.id: [] for z in site.zones}
        self._entries: list[tuple[str, str]] = []  # (door, inside) from the street
        for d in site.doors:
            if d.outside is None:
                self._entries.append((d.id, d.inside))
            else:
                self._adj[d.outside].append((d.id, d.inside, "in"))
                self._adj[d.inside].append((d.id, d.outside, "out"))
        self._dist_cache: dict[tuple[str, frozenset[str]], dict[str, int]] = {}

    def dist(self, target: str, allowed: frozenset[str]) -> dict[str, int]:
        """Doors between each allowed zone and `target`, never through the street."""
        key = (target, allowed)
        cached = self._dist_cache.get(key)
        if cached is not None:
            return cached
        dist = {target: 0}
        queue = deque([target])
        while queue:
            z = queue.popleft()
            for _, other, _ in self._adj[z]:
                if other in allowed and other not in dist:
                    dist[other] = dist[z] + 1
                    queue.append(other)
        self._dist_cache[key] = dist
        return dist

    def zone_path(
        self, src: str, dst: str, allowed: frozenset[str], rng: random.Random
    ) -> list[Step] | None:
        dist = self.dist(dst, allowed | {src, dst})
        if src not in dist:
            return None
        steps: list[Step] = []
        here = src
        while here != dst:
            nxt = [(d, o, dr) for d, o, dr in self._adj[here] if dist.get(o) == dist[here] - 1]
            door, here, direction = rng.choice(nxt)
            steps.append((door, direction))
        return steps

    def ends(self, zone: str, allowed: frozenset[str]) -> list[tuple[str, str, int]]:
        """Street doors usable to reach `zone` (or leave it): (door, inside, doors between)."""
        dist = self.dist(zone, allowed | {zone})
        return [(d, i, dist[i]) for d, i in self._entries if i in dist]

    def route(
        self, src: Node, dst: Node, allowed: frozenset[str], rng: random.Random
    ) -> list[Step] | None:
        """Doors from `src` to `dst` through allowed zones. From or to the street, the
        street door is drawn with weight 1/(1 + doors it leaves to walk), so a unit's own
        street door is the usual way in, the lobby's doors the other."""
        if src is not None and dst is not None:
            return self.zone_path(src, dst, allowed, rng)
        zone = dst if src is None else src
        if zone is None:
            return []
        ends = self.ends(zone, allowed)
        if not ends:
            return None
        door, inside, _ = rng.choices(ends, weights=[1.0 / (1 + n) for *_, n in ends])[0]
        if src is None:
            rest = self.zone_path(inside, zone, allowed, rng)
            return None if rest is None else [(door, "in"), *rest]
        rest = self.zone_path(zone, inside, allowed, rng)
        return None if rest is None else [*rest, (door, "out")]

    def hops(self, src: Node, dst: str, allowed: frozenset[str]) -> int | None:
        """Doors on the shortest way from `src` (None: the street) to `dst`."""
        if src is None:
            ends = self.ends(dst, allowed)
            return 1 + min(n for *_, n in ends) if ends else None
        return self.dist(dst, allowed | {src, dst}).get(src)

    def exit_hops(self, zone: str, allowed: frozenset[str]) -> int:
        ends = self.ends(zone, allowed)
        return 1 + max(n for *_, n in ends) if ends else 1
