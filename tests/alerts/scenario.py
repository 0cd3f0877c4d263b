"""Scenario helpers: the engine on the small test site in virtual time, with the effects
it produced kept for assertions."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from footfall_alerts.engine import Effect, Engine, Notification, Observation, Transition
from footfall_alerts.rules import parse_rules
from tests.support.collector import small_site

TZ = ZoneInfo("Europe/Helsinki")


def local_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Epoch ms of a wall-clock time at the test site (Europe/Helsinki)."""
    return int(datetime(year, month, day, hour, minute, tzinfo=TZ).timestamp() * 1000)


# Tuesday 2026-11-24, the site opens 08:00-20:00.
TUESDAY_10 = local_ms(2026, 11, 24, 10, 0)

RECEIVERS = """\
receivers:
  mail: {type: email, to: [facilities@example.org]}
  chat: {type: webhook, url: "http://127.0.0.1:9/hook", format: slack}
"""


class Scenario:
    """An engine, a virtual clock and everything the engine said."""

    def __init__(self, rules_yaml: str, start_ms: int = TUESDAY_10) -> None:
        self.site = small_site()
        self.rules = parse_rules(rules_yaml, self.site, "scenario.alerts.yaml")
        self.engine = Engine(self.site, self.rules)
        self.now = start_ms
        self.effects: list[Effect] = []

    def observe(self, obs: Observation) -> None:
        self.effects += self.engine.observe(obs, self.now)

    def advance(self, seconds: float, step_s: float = 1.0) -> None:
        """Let time pass, ticking every `step_s` as the service does."""
        end = self.now + round(seconds * 1000)
        while self.now < end:
            self.now = min(end, self.now + round(step_s * 1000))
            self.effects += self.engine.tick(self.now)

    def restart(self) -> None:
        """A new engine from the saved state, as after a service restart."""
        import json

        state = json.loads(json.dumps(self.engine.snapshot()))
        self.engine = Engine(self.site, self.rules, state)

    def notifications(self, receiver: str | None = None) -> list[Notification]:
        return [
            e
            for e in self.effects
            if isinstance(e, Notification) and (receiver is None or e.receiver == receiver)
        ]

    def transitions(self, state: str | None = None) -> list[Transition]:
        return [e for e in self.effects if isinstance(e, Transition) and state in (None, e.state)]

    def sent(self, receiver: str) -> list[tuple[str, list[str]]]:
        """(event, alert ids) per notification to `receiver`."""
        return [(n.event, [a["id"] for a in n.alerts]) for n in self.notifications(receiver)]

    def alert_states(self) -> dict[str, Any]:
        return {a.id: a.state for a in self.engine.alerts.values()}
