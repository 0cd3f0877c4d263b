"""One simulated window end to end, without I/O: visits planned, bodies rendered into
beam traces, traces counted by the real detectors. Seeds are derived from the run's seed,
the site and the window, so a day simulated alone, accelerated or in a backfill is the
same day."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from dataclasses import dataclass

from footfall_edge.detection import DetectorConfig
from footfall_edge.simulation.doorway import DoorwayProfile

from .crowd import (
    CROWD,
    CrowdTrace,
    Detected,
    accuracy,
    detect_crowd,
    detected_counts,
    render_crowd,
)
from .visitors import Plan, VisitorModel


@dataclass
class Simulated:
    plan: Plan
    crowd: CrowdTrace
    events: list[Detected]

    def true_counts(self) -> dict[str, dict[str, int]]:
        return self.crowd.true_counts()

    def detected_counts(self) -> dict[str, dict[str, int]]:
        return detected_counts(self.events, self.crowd.doors)

    def accuracy(self) -> float:
        return accuracy(self.true_counts(), self.detected_counts())


def rngs(
    model: VisitorModel, start_s: float, end_s: float, seed: int | str
) -> tuple[random.Random, random.Random]:
    """The visitor model's and the doors' generators for a window."""
    key = f"{seed}:{model.site.site}:{start_s:.3f}:{end_s:.3f}"
    return random.Random(key), random.Random(f"{key}:doors")


def simulate(
    model: VisitorModel,
    start_s: float,
    end_s: float,
    seed: int | str,
    profile: DoorwayProfile = CROWD,
    detectors: Mapping[str, DetectorConfig] | None = None,
) -> Simulated:
    """Traffic arriving in [start, end), everyone gone by `end`, counted by the detectors."""
    plan_rng, door_rng = rngs(model, start_s, end_s, seed)
    plan = model.plan(start_s, end_s, plan_rng)
    crowd = render_crowd(plan, [d.id for d in model.site.doors], door_rng, profile)
    return Simulated(plan, crowd, detect_crowd(crowd, detectors))


def day_window(model: VisitorModel, day: dt.date) -> tuple[float, float]:
    """Local midnight to midnight, in epoch seconds."""
    return model.day_window(day)


def simulate_day(
    model: VisitorModel,
    day: dt.date,
    seed: int | str,
    profile: DoorwayProfile = CROWD,
    detectors: Mapping[str, DetectorConfig] | None = None,
) -> Simulated:
    start, end = day_window(model, day)
    return simulate(model, start, end, seed, profile, detectors)
