"""Direction detection for a door with two IR beams (docs/spec.md §1).

Pure logic: it is fed `(t_ms, beam, blocked)` and keeps no clock or GPIO of its own, so a
recorded trace replays in virtual time and the GPIO adapter only forwards edges.

The model: every body in the doorway first blocks the beam on the side it comes from
(its *lead* interval) and then the other beam (its *trail* interval). A crossing is
counted when the trail beam clears after the lead beam has cleared, that is when the body
has passed fully through both beams in order. A body whose trail clears first has backed
off (nothing counted); one that never reaches the other beam turned back. Bodies move
through a doorway first-in first-out, which is what lets a tailgater (second body on the
outer beam while the first still blocks the inner one) be counted on its own.

One pattern is ambiguous from the edges alone: A on the inner beam only, the outer beam
blocks again, A's inner beam clears, the outer beam clears. Either B tailgated and turned
back, or A stepped back out. The crossing of A is then held until B either reaches the
inner beam (tailgate: A counted) or turns back (A counted as backed out: nothing),
because a deep turn-back is far more common than a tailgater who also turns back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

Beam = Literal["outer", "inner"]
Direction = Literal["in", "out"]
BEAMS: tuple[Beam, Beam] = ("outer", "inner")
OUTER, INNER = 0, 1


@dataclass(frozen=True)
class DetectorConfig:
    debounce_ms: int = 20
    """A new level must be held this long (chatter inside it aside) to count as a change;
    pulses shorter than this are contact chatter and ignored."""
    glitch_ms: int | None = None
    """A return to the old level shorter than this does not cancel a change in progress
    (bounce right after an edge); default half the debounce time."""
    blocked_ms: int = 30_000
    """A beam blocked this long raises `beam_blocked` and its interval counts nothing."""
    gap_ms: int = 250
    """How long a body shallower than the beam spacing may take to reach the second beam."""
    flap_changes: int = 50
    """Raw level changes within `flap_window_ms` that mean the beam chatters (`beam_flapping`)."""
    flap_window_ms: int = 5_000
    invert: bool = False
    """The door is wired the other way round: swap in and out."""

    def __post_init__(self) -> None:
        if self.glitch_ms is not None and not 0 <= self.glitch_ms <= self.debounce_ms:
            raise ValueError("glitch_ms must be between 0 and debounce_ms")
        for name in ("debounce_ms", "gap_ms", "flap_window_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.blocked_ms <= self.debounce_ms:
            raise ValueError("blocked_ms must be longer than debounce_ms")
        if self.flap_changes < 4:
            raise ValueError("flap_changes must be at least 4")


@dataclass(frozen=True)
class Crossing:
    t_ms: int
    door: str
    dir: Direction


@dataclass(frozen=True)
class Fault:
    t_ms: int
    door: str
    source: str
    fault: str
    active: bool


DoorEvent = Crossing | Fault


@dataclass(eq=False)
class _Body:
    origin: int  # the beam it came from
    lead_start: int
    lead_end: int | None = None
    trail_start: int | None = None
    held: Crossing | None = None  # a crossing of the body ahead that waits on this one
    left_trail_at: int | None = None  # its second beam cleared while the first stayed blocked


@dataclass
class _BeamState:
    stable: bool = False
    since: int = 0
    pending: int | None = None  # start of an unconfirmed change to `not stable`
    held: int = 0  # ms the new level was held during the pending change, up to raw_since
    raw: bool = False
    raw_since: int = 0
    body: _Body | None = None  # the body whose interval is open on this beam
    blocked_fault: bool = False
    flapping: bool = False
    changes: deque[int] = field(default_factory=deque)


class DoorDetector:
    """Counts crossings and raises beam faults for one door."""

    def __init__(self, door: str, config: DetectorConfig | None = None) -> None:
        self.door = door
        self.config = config or DetectorConfig()
        self._beams = (_BeamState(), _BeamState())
        self._bodies: list[_Body] = []
        self._now = 0

    # -- input -----------------------------------------------------------------------

    def feed(self, t_ms: int, beam: Beam, blocked: bool) -> list[DoorEvent]:
        """One raw level reading of one beam; returns what became certain up to t_ms."""
        b = _beam_index(beam)
        out = self.advance(t_ms)
        t = self._now
        state = self._beams[b]
        if blocked == state.raw:
            return out
        if state.pending is not None and blocked == state.stable:
            state.held += t - state.raw_since
        elif state.pending is None and blocked != state.stable:
            state.pending, state.held = t, 0
        state.raw, state.raw_since = blocked, t
        self._note_change(b, t, out)
        return out

    def advance(self, t_ms: int) -> list[DoorEvent]:
        """Let virtual time run to t_ms: confirms debounced edges and fires time-outs."""
        out: list[DoorEvent] = []
        self._now = max(self._now, int(t_ms))
        t = self._now
        while True:
            # The earliest thing that is certain by `t`: a debounced edge, or a time-out
            # that no unconfirmed earlier edge could still precede.
            horizon = t
            best: tuple[int, int, int] | None = None  # (time, kind, beam)
            for b, s in enumerate(self._beams):
                if s.pending is None:
                    continue
                due, confirms = self._pending_due(s)
                if due > t:
                    horizon = min(horizon, s.pending)
                elif not confirms:
                    s.pending = None  # the old level came back for good: it was chatter
                elif best is None or s.pending < best[0]:
                    best = (s.pending, 0, b)
            if best is not None and best[0] > horizon:
                best = None
            timer = self._next_timer()
            if timer is not None and timer[0] <= horizon and (best is None or timer[0] < best[0]):
                best = timer
            if best is None:
                return out
            when, kind, b = best
            if kind == 0:
                self._confirm(b, when, out)
            else:
                self._fire(kind, b, when, out)

    def _pending_due(self, s: _BeamState) -> tuple[int, bool]:
        """When the pending change of a beam settles, and whether it is then confirmed."""
        cfg = self.config
        if s.raw != s.stable:  # the new level is held now
            return s.raw_since + cfg.debounce_ms - s.held, True
        glitch = cfg.debounce_ms // 2 if cfg.glitch_ms is None else cfg.glitch_ms
        return s.raw_since + glitch, False

    def finish(self, t_ms: int) -> list[DoorEvent]:
        """End of a trace: settle what is certain; bodies still in the doorway count nothing."""
        out = self.advance(t_ms)
        settling = sorted(
            (s.pending, b) for b, s in enumerate(self._beams) if s.pending is not None
        )
        for start, b in settling:
            if self._beams[b].raw != self._beams[b].stable:
                self._confirm(b, start, out)
            self._beams[b].pending = None
        out.extend(self.advance(t_ms))
        for body in list(self._bodies):
            if body.lead_end is not None and body.trail_start is None:
                self._expire(body)
        return out

    @property
    def levels(self) -> tuple[bool, bool]:
        """Debounced (outer, inner) levels, for a live view."""
        return self._beams[OUTER].stable, self._beams[INNER].stable

    @property
    def active_faults(self) -> list[str]:
        names = []
        for beam, s in zip(BEAMS, self._beams, strict=True):
            if s.blocked_fault:
                names.append(f"{beam}: beam_blocked")
            if s.flapping:
                names.append(f"{beam}: beam_flapping")
        return names

    # -- timers ----------------------------------------------------------------------

    _BLOCKED, _GAP, _UNFLAP = 1, 2, 3

    def _next_timer(self) -> tuple[int, int, int] | None:
        cfg = self.config
        best: tuple[int, int, int] | None = None
        for b, s in enumerate(self._beams):
            if s.stable and not s.blocked_fault:
                cand = (s.since + cfg.blocked_ms, self._BLOCKED, b)
                best = cand if best is None or cand < best else best
            if s.flapping:
                keep = cfg.flap_changes // 5
                if len(s.changes) > keep:
                    due = s.changes[-(keep + 1)] + cfg.flap_window_ms
                else:
                    due = self._now
                cand = (due, self._UNFLAP, b)
                best = cand if best is None or cand < best else best
        for body in self._bodies:
            if body.lead_end is not None and body.trail_start is None:
                cand = (body.lead_end + cfg.gap_ms, self._GAP, body.origin)
                best = cand if best is None or cand < best else best
        return best

    def _fire(self, kind: int, b: int, when: int, out: list[DoorEvent]) -> None:
        s = self._beams[b]
        if kind == self._BLOCKED:
            s.blocked_fault = True
            out.append(Fault(when, self.door, self._source(b), "beam_blocked", True))
            body = s.body
            s.body = None
            if body is not None:
                self._drop(body, out)
        elif kind == self._GAP:
            for body in self._bodies:
                if (
                    body.lead_end is not None
                    and body.trail_start is None
                    and body.lead_end + self.config.gap_ms == when
                ):
                    self._expire(body)
                    break
        else:
            self._prune(s, when)
            s.flapping = False
            out.append(Fault(when, self.door, self._source(b), "beam_flapping", False))

    # -- edges -----------------------------------------------------------------------

    def _confirm(self, b: int, when: int, out: list[DoorEvent]) -> None:
        s = self._beams[b]
        s.pending = None
        s.stable = not s.stable
        s.since = when
        if s.stable:
            self._rise(b, when, out)
        elif s.blocked_fault:
            # The stuck interval was dropped when the fault was raised.
            s.blocked_fault = False
            out.append(Fault(when, self.door, self._source(b), "beam_blocked", False))
        else:
            self._fall(b, when, out)

    def _rise(self, b: int, t: int, out: list[DoorEvent]) -> None:
        other = 1 - b
        gap = self.config.gap_ms
        s = self._beams[b]
        for body in self._bodies:  # oldest first: bodies do not overtake in a doorway
            if (
                body.origin == other
                and body.trail_start is None
                and (body.lead_end is None or t - body.lead_end <= gap)
            ):
                body.trail_start = t
                s.body = body
                if body.held is not None:  # the body ahead really went through
                    out.append(body.held)
                    body.held = None
                if body.left_trail_at is not None and t - body.left_trail_at <= gap:
                    # The second beam blocks again at once under a first beam that never
                    # cleared: two bodies too close for the first beam to see the gap,
                    # and the one ahead went through when the second beam cleared.
                    out.append(Crossing(body.left_trail_at, self.door, self._dir(body)))
                body.left_trail_at = None
                return
        body = _Body(origin=b, lead_start=t)
        self._bodies.append(body)
        s.body = body

    def _fall(self, b: int, t: int, out: list[DoorEvent]) -> None:
        s = self._beams[b]
        body = s.body
        s.body = None
        if body is None:
            return
        if body.origin == b and body.lead_end is None:
            body.lead_end = t  # waits for its trail beam, or the gap time-out
            return
        if body.lead_end is None:
            # Backed off the second beam and still on the first, unless the second beam
            # blocks again before the first clears (see `_rise`).
            body.trail_start = None
            body.left_trail_at = t
            return
        self._bodies.remove(body)
        dir_ = self._dir(body)
        crossing = Crossing(t, self.door, dir_)
        held_by: _Body | None = None
        for other in list(self._bodies):
            if other.origin != body.origin or other.trail_start is not None:
                continue
            if other.lead_start < body.lead_end or other.held is not None:
                continue
            if other.lead_end is None:
                # Arrived on the first beam while `body` was on the second only: a
                # tailgater, or `body` stepping back; wait and see which.
                held_by = held_by or other
            else:
                # Left the first beam while the second was still blocked: it walked on
                # through the second beam hidden by `body`, and clears with it.
                self._bodies.remove(other)
                out.append(Crossing(t, self.door, dir_))
        if held_by is not None:
            held_by.held = crossing
        else:
            out.append(crossing)

    def _dir(self, body: _Body) -> Direction:
        return "in" if (body.origin == OUTER) != self.config.invert else "out"

    def _expire(self, body: _Body) -> None:
        """A body that never reached its second beam turned back: nothing counted, and a
        crossing it held is taken as the body ahead having stepped back."""
        self._bodies.remove(body)

    def _drop(self, body: _Body, out: list[DoorEvent]) -> None:
        """A body on a stuck beam: the stuck thing is an object, so release what it held."""
        if body in self._bodies:
            self._bodies.remove(body)
        for s in self._beams:
            if s.body is body:
                s.body = None
        if body.held is not None:
            out.append(body.held)
            body.held = None

    # -- flapping --------------------------------------------------------------------

    def _note_change(self, b: int, t: int, out: list[DoorEvent]) -> None:
        s = self._beams[b]
        s.changes.append(t)
        self._prune(s, t)
        if not s.flapping and len(s.changes) > self.config.flap_changes:
            s.flapping = True
            out.append(Fault(t, self.door, self._source(b), "beam_flapping", True))

    def _prune(self, s: _BeamState, t: int) -> None:
        cutoff = t - self.config.flap_window_ms
        while s.changes and s.changes[0] <= cutoff:
            s.changes.popleft()

    def _source(self, b: int) -> str:
        return f"{self.door}/{BEAMS[b]}"


def _beam_index(beam: str) -> int:
    if beam == "outer":
        return OUTER
    if beam == "inner":
        return INNER
    raise ValueError(f"beam must be 'outer' or 'inner', not {beam!r}")


__all__ = [
    "BEAMS",
    "Beam",
    "Crossing",
    "DetectorConfig",
    "Direction",
    "DoorDetector",
    "DoorEvent",
    "Fault",
]
