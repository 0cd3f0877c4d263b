"""The alerts service's per-site gauges (docs/alerts.md, "Operations"): what the ticker
shows each turn, including what it must take back: a drained outbox channel reads 0,
not its last count, and a site no longer served leaves no series behind."""

from __future__ import annotations

from footfall_alerts.metrics import Metrics


def gauge(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(f"footfall_alerts_{name}", labels)


def test_gauges_per_site_follow_the_sites_and_their_outboxes() -> None:
    m = Metrics()
    m.show_sites(
        {"north": (1, 2), "south": (3, 3)},
        {"north": {"receiver:mail": (4, 1000), "receiver:hook": (1, 1000)}, "south": {}},
    )
    assert [gauge(m, "firing", site=s) for s in ("north", "south")] == [1, 3]
    assert [gauge(m, "open", site=s) for s in ("north", "south")] == [2, 3]
    assert gauge(m, "outbox_open", site="north", channel="receiver:mail") == 4
    assert gauge(m, "outbox_open", site="north", channel="receiver:hook") == 1

    # the mail went out, the hook's entry waits; south is no longer served
    m.show_sites({"north": (0, 1)}, {"north": {"receiver:hook": (1, 1000)}})
    assert gauge(m, "firing", site="north") == 0 and gauge(m, "open", site="north") == 1
    assert gauge(m, "outbox_open", site="north", channel="receiver:mail") == 0
    assert gauge(m, "outbox_open", site="north", channel="receiver:hook") == 1
    assert gauge(m, "firing", site="south") is None and gauge(m, "open", site="south") is None

    # a turn later the drained channel still reads 0; north gone: nothing of it is left
    m.show_sites({"north": (0, 0)}, {"north": {}})
    assert gauge(m, "outbox_open", site="north", channel="receiver:mail") == 0
    assert gauge(m, "outbox_open", site="north", channel="receiver:hook") == 0
    m.show_sites({}, {})
    names = {"footfall_alerts_firing", "footfall_alerts_open", "footfall_alerts_outbox_open"}
    left = [s for f in m.registry.collect() if f.name in names for s in f.samples]
    assert left == []
