"""The broker's access control and policy (deploy/mosquitto: mosquitto.conf,
conf.d/footfall.conf, acl) in a real Mosquitto: an agent publishes only as itself, the
collector reads agents and writes zones, the alerts service reads agents and zones and
writes alerts, dashboards only read zones and alerts, the web board only reads zone
occupancy, alerts and agent status, only the collector and the web board may clear an
agent's status (retirement), and nobody gets in anonymously.

Mosquitto drops a denied MQTT 3.1.1 publish silently (the publisher still gets its PUBACK),
so "denied" is checked where it matters: the subscriber that would have received it never
does. To know when to stop waiting, a legitimate message follows the denied ones: the
broker routes a publish before it acknowledges it and delivers to one subscriber in order,
so once the legitimate message has arrived, a wrongly allowed one would have too."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from footfall_contract.timefmt import format_ts
from footfall_contract.topics import AGENT_KINDS, agent_topic, alert_topic, zone_occupancy_topic
from footfall_runtime.config import MqttSettings
from footfall_sim.localservices import free_port
from footfall_web.live import MAX_PACKET_BYTES, LiveState
from tests.deploy.conftest import USERS
from tests.support.broker_users import (
    MOSQUITTO_DIR,
    REPO,
    RepoBroker,
    User,
    UserRecorder,
    Variant,
)
from tests.support.collector import now_ms
from tests.support.waiting import eventually
from tests.support.web import ALWAYS_OPEN, site_with_hours

pytestmark = pytest.mark.services

SITE = "s"
OWN = agent_topic(SITE, "agent-a", "crossing")
ZONE = zone_occupancy_topic(SITE, "library")
ALERT = alert_topic(SITE, "over-capacity-library")
NOT_AUTHORIZED = 135  # MQTT v5 reason code

Connect = Callable[..., User]
Listen = Callable[[str, str], UserRecorder]


@pytest.fixture
def connect(broker: RepoBroker) -> Iterator[Connect]:
    """connect(username or None, password=USERS[username], port=plain listener, ...)."""
    made: list[User] = []

    def make(username: str | None, password: str | None = None, **kw: Any) -> User:
        if password is None and username is not None:
            password = USERS.get(username)
        port = kw.pop("port", broker.port)
        user = User(port, username, password, **kw)
        made.append(user)
        return user

    yield make
    for user in made:
        user.close()


@pytest.fixture
def listen(broker: RepoBroker) -> Iterator[Listen]:
    """listen(username, topic filter): a recording subscriber logged in as that user."""
    made: list[UserRecorder] = []

    def make(username: str, topic: str) -> UserRecorder:
        rec = UserRecorder(broker.port, username, USERS[username], topic)
        made.append(rec)
        return rec

    yield make
    for rec in made:
        rec.close()


def payloads(rec: UserRecorder) -> list[bytes]:
    with rec._lock:
        return [m.payload for m in rec.messages]


def arrived(rec: UserRecorder, payload: bytes) -> Callable[[], bool]:
    return lambda: payload in payloads(rec)


# -- who gets in ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password", "v5"),
    [
        (None, None, False),
        (None, None, True),
        ("agent-a", "wrong", False),
        ("agent-a", "", True),
        ("nobody", "pw-agent-a", False),
    ],
    ids=["anonymous", "anonymous-v5", "wrong-password", "empty-password-v5", "unknown-user"],
)
def test_clients_without_valid_credentials_are_refused(
    connect: Connect, username: str | None, password: str | None, v5: bool
) -> None:
    client = connect(username, password, v5=v5)
    assert client.connack is not None and client.connack.is_failure, client.connack
    assert client.connack.value in (134, 135), client.connack  # bad credentials / not authorized


def test_every_account_logs_in(connect: Connect) -> None:
    for username in USERS:
        assert connect(username).accepted, username


# -- agents -------------------------------------------------------------------------------


def test_agent_publishes_its_own_topics_to_the_collector(connect: Connect, listen: Listen) -> None:
    collector = listen("collector", f"footfall/v1/{SITE}/agent/+/+")  # as the collector does
    agent = connect("agent-a")
    kinds = AGENT_KINDS  # status, crossing, presence, fault, health
    for kind in kinds:
        topic = agent_topic(SITE, "agent-a", kind)
        agent.publish(topic, kind, qos=0 if kind == "health" else 1, retain=kind == "status")
    collector.wait_until(lambda: len(collector.messages) == len(kinds), 10)
    assert collector.topics() == [agent_topic(SITE, "agent-a", k) for k in kinds]


def test_agent_cannot_publish_as_another_agent_or_into_zones(
    connect: Connect, listen: Listen
) -> None:
    collector = listen("collector", "footfall/v1/+/agent/#")
    dashboard = listen("dashboard", "footfall/v1/+/zone/#")
    agent = connect("agent-a")  # MQTT 3.1.1, as the edge agent: denials are silent
    forged = [
        agent_topic(SITE, "agent-b", "crossing"),
        agent_topic(SITE, "agent-b", "status"),
        agent_topic("other-site", "agent-b", "crossing"),
        f"{OWN}/deeper",  # only one level (the kind) under its own id
        f"footfall/v1/{SITE}/agent/agent-a",
    ]
    for topic in forged:
        agent.publish(topic, "forged")
    agent.publish(zone_occupancy_topic(SITE, "kela"), "forged", retain=True)
    agent.publish(ZONE, "forged")

    agent.publish(OWN, "legit")
    collector.wait_until(arrived(collector, b"legit"), 10)
    connect("collector").publish(ZONE, "zone-legit", retain=True)
    dashboard.wait_until(arrived(dashboard, b"zone-legit"), 10)

    assert collector.topics() == [OWN]
    assert payloads(dashboard) == [b"zone-legit"]
    # Nothing forged was retained either: a dashboard subscribing now gets the real zone only.
    late = listen("dashboard", "footfall/v1/+/zone/#")
    late.wait_until(arrived(late, b"zone-legit"), 10)
    late.sync()  # every retained message it gets is in
    assert late.topics() == [ZONE]


def test_mqtt5_agent_is_told_not_authorized(connect: Connect) -> None:
    agent = connect("agent-a", v5=True)
    own = agent.publish(OWN)
    assert own is not None and not own.is_failure, own
    for topic in (agent_topic(SITE, "agent-b", "crossing"), ZONE):
        rc = agent.publish(topic)
        assert rc is not None and rc.value == NOT_AUTHORIZED, (topic, rc)


def test_only_the_collector_reads_agent_messages(connect: Connect, listen: Listen) -> None:
    spies = [listen("agent-b", "#"), listen("dashboard", "footfall/v1/+/agent/#")]
    collector = listen("collector", "footfall/v1/+/agent/#")
    connect("agent-a").publish(OWN, "private")
    collector.wait_until(arrived(collector, b"private"), 10)
    for spy in spies:  # routed to them at the same time as to the collector, if at all
        spy.sync()
    assert [payloads(spy) for spy in spies] == [[], []]


def test_last_will_is_delivered_only_on_the_agents_own_status(
    connect: Connect, listen: Listen
) -> None:
    status_a = agent_topic(SITE, "agent-a", "status")
    collector = listen("collector", f"footfall/v1/{SITE}/agent/+/status")
    liar = connect("agent-b", client_id="footfall-s-agent-b", will=(status_a, "forged"))
    honest = connect("agent-a", client_id="footfall-s-agent-a", will=(status_a, "offline"))
    assert honest.accepted
    # Mosquitto 2.0 accepts a Will it may not send and drops it when the client dies;
    # a refusal at CONNECT would be as good.
    if liar.accepted:
        liar.die()
    time.sleep(0.2)
    honest.die()
    collector.wait_until(arrived(collector, b"offline"), 10)
    collector.sync()
    assert payloads(collector) == [b"offline"]
    late = listen("collector", f"footfall/v1/{SITE}/agent/+/status")
    late.wait_until(lambda: bool(late.messages), 10)
    assert [(m.payload, m.retain) for m in late.messages] == [(b"offline", True)]


# -- collector and dashboards ---------------------------------------------------------------


def test_collector_publishes_zone_occupancy_that_dashboards_read(
    connect: Connect, listen: Listen
) -> None:
    dashboard = listen("dashboard", "footfall/v1/+/zone/#")
    collector = connect("collector", v5=True)  # the collector speaks MQTT v5
    rc = collector.publish(ZONE, '{"count": 3}', retain=True)
    assert rc is not None and not rc.is_failure, rc
    dashboard.wait_until(arrived(dashboard, b'{"count": 3}'), 10)
    late = listen("dashboard", ZONE)
    late.wait_until(lambda: bool(late.messages), 10)
    assert late.messages[0].retain


def test_collector_and_dashboard_cannot_pose_as_agents(connect: Connect, listen: Listen) -> None:
    # The agent pattern (footfall/v1/+/agent/%u/+) applies to every user: the acl's deny
    # lines stop "collector" and "dashboard" from publishing as agents of those names.
    collector_rx = listen("collector", "footfall/v1/+/agent/#")
    dashboard_rx = listen("dashboard", "footfall/v1/+/zone/#")
    dashboard = connect("dashboard", v5=True)
    collector = connect("collector", v5=True)
    attempts = [
        (dashboard, agent_topic(SITE, "dashboard", "crossing")),
        (dashboard, agent_topic(SITE, "agent-a", "crossing")),
        (dashboard, ZONE),
        (collector, agent_topic(SITE, "collector", "crossing")),
        (collector, agent_topic(SITE, "collector", "status")),
        (collector, agent_topic(SITE, "agent-a", "crossing")),
        (collector, agent_topic(SITE, "agent-a", "health")),
    ]
    for client, topic in attempts:
        rc = client.publish(topic, "forged")
        assert rc is not None and rc.value == NOT_AUTHORIZED, (topic, rc)
    connect("agent-a").publish(OWN, "legit")
    collector.publish(ZONE, "zone-legit")
    collector_rx.wait_until(arrived(collector_rx, b"legit"), 10)
    dashboard_rx.wait_until(arrived(dashboard_rx, b"zone-legit"), 10)
    assert payloads(collector_rx) == [b"legit"]
    assert payloads(dashboard_rx) == [b"zone-legit"]


def test_only_collector_and_web_may_clear_an_agents_status(
    connect: Connect, listen: Listen
) -> None:
    """Retiring an agent is an empty retained message on its status topic
    (footfall_collector.retire): the collector's and the web board's accounts may send it,
    the alerts service, dashboards and other agents may not."""
    status = {a: agent_topic(SITE, a, "status") for a in ("agent-a", "agent-b")}
    agent_a, agent_b = connect("agent-a"), connect("agent-b")
    agent_a.publish(status["agent-a"], "a-offline", retain=True)
    agent_b.publish(status["agent-b"], "b-offline", retain=True)
    for user in ("alerts", "dashboard", "agent-b"):
        rc = connect(user, v5=True).publish(status["agent-a"], "", retain=True)
        assert rc is not None and rc.value == NOT_AUTHORIZED, (user, rc)
    watcher = listen("web", "footfall/v1/+/agent/+/status")
    watcher.wait_until(lambda: len(payloads(watcher)) >= 2, 10)
    for user, agent in (("collector", "agent-a"), ("web", "agent-b")):
        rc = connect(user, v5=True).publish(status[agent], "", retain=True)
        assert rc is not None and not rc.is_failure, (user, rc)
    watcher.wait_until(lambda: payloads(watcher).count(b"") == 2, 10)
    # Nothing retained is left: a late reader gets no status at all.
    late = listen("alerts", "footfall/v1/+/agent/+/status")
    connect("agent-a").publish(OWN, "after")
    late.sync()
    assert payloads(late) == []


def test_alerts_reads_agents_and_zones_and_publishes_alerts_dashboards_read(
    connect: Connect, listen: Listen
) -> None:
    alerts_rx = listen("alerts", f"footfall/v1/{SITE}/agent/+/+")  # as footfall-alerts does
    zones_rx = listen("alerts", f"footfall/v1/{SITE}/zone/+/occupancy")
    board = listen("dashboard", "footfall/v1/+/alert/#")
    status = agent_topic(SITE, "agent-a", "status")
    connect("agent-a").publish(status, "agent-status", retain=True)
    connect("collector", v5=True).publish(ZONE, "zone-count", retain=True)
    alerts_rx.wait_until(arrived(alerts_rx, b"agent-status"), 10)
    zones_rx.wait_until(arrived(zones_rx, b"zone-count"), 10)

    alerts = connect("alerts", v5=True)  # footfall-alerts speaks MQTT v5
    rc = alerts.publish(ALERT, '{"state": "firing"}', retain=True)
    assert rc is not None and not rc.is_failure, rc
    board.wait_until(arrived(board, b'{"state": "firing"}'), 10)
    late = listen("dashboard", ALERT)  # the board starting later sees the retained alert
    late.wait_until(lambda: bool(late.messages), 10)
    assert late.messages[0].retain


def test_alerts_cannot_count_or_pose_as_an_agent_and_nobody_else_writes_alerts(
    connect: Connect, listen: Listen
) -> None:
    agents_rx = listen("collector", "footfall/v1/+/agent/#")
    zones_rx = listen("dashboard", "footfall/v1/+/zone/#")
    board = listen("dashboard", "footfall/v1/+/alert/#")
    alerts = connect("alerts", v5=True)
    for topic in (
        agent_topic(SITE, "alerts", "crossing"),
        agent_topic(SITE, "agent-a", "status"),
        ZONE,
    ):
        rc = alerts.publish(topic, "forged")
        assert rc is not None and rc.value == NOT_AUTHORIZED, (topic, rc)
    for user in ("collector", "dashboard", "agent-a"):
        rc = connect(user, v5=True).publish(ALERT, "forged", retain=True)
        assert rc is not None and rc.value == NOT_AUTHORIZED, (user, rc)
    connect("agent-a").publish(OWN, "legit")
    alerts.publish(ALERT, "alert-legit")
    agents_rx.wait_until(arrived(agents_rx, b"legit"), 10)
    board.wait_until(arrived(board, b"alert-legit"), 10)
    assert payloads(agents_rx) == [b"legit"]
    assert payloads(zones_rx) == []
    assert payloads(board) == [b"alert-legit"]


# -- the web board ----------------------------------------------------------------------------

WEB_SITE = site_with_hours(ALWAYS_OPEN, SITE)  # zones library, kela, ... of site "s"


def _status(state: str) -> str:
    return json.dumps({"state": state, "epoch": "e1", "ts": format_ts(now_ms()), "sw": "0.1.0"})


def _occupancy(count: int) -> str:
    return json.dumps(
        {"count": count, "capacity": 250, "ratio": count / 250, "ts": format_ts(now_ms())}
    )


def _alert(alert_id: str) -> str:
    ts = format_ts(now_ms())
    return json.dumps(
        {
            "id": alert_id,
            "rule": "library over capacity",
            "kind": "over_capacity",
            "severity": "critical",
            "state": "firing",
            "scope": {"zone": "library"},
            "summary": "Library over capacity",
            "started": ts,
            "ts": ts,
        }
    )


def test_web_board_reads_occupancy_alerts_and_agent_status_with_its_own_client(
    broker: RepoBroker, connect: Connect
) -> None:
    """footfall-web's own MQTT client (footfall_web.live.LiveState: its subscriptions,
    MQTT v5, clean start) logged in as `web` gets the retained live state."""
    connect("agent-a").publish(
        agent_topic(SITE, "agent-a", "status"), _status("online"), retain=True
    )
    connect("collector", v5=True).publish(ZONE, _occupancy(42), retain=True)
    connect("alerts", v5=True).publish(ALERT, _alert("over-capacity-library"), retain=True)
    settings = MqttSettings(host="127.0.0.1", port=broker.port, username="web", password="pw-web")
    live = LiveState(settings, [WEB_SITE], None)

    def ready() -> bool:
        snap = live.snapshot([SITE])[SITE]
        return bool(snap["agents"] and snap["alerts"] and live.reading(SITE, "library"))

    def agents() -> dict[str, bool]:
        return {a["agent"]: a["online"] for a in live.snapshot([SITE])[SITE]["agents"]}

    live.start()
    try:
        eventually(ready, 10, "the agent, the alert and the zone on the board")
        assert live.connected.is_set()
        reading = live.reading(SITE, "library")
        assert reading is not None and reading.count == 42
        snap = live.snapshot([SITE])[SITE]
        assert [(a["agent"], a["online"]) for a in snap["agents"]] == [("agent-a", True)]
        assert [a["id"] for a in snap["alerts"]] == ["over-capacity-library"]
        # A Last Will (the agent's retained "offline") reaches the board too.
        pi = connect(
            "agent-b",
            client_id="footfall-s-agent-b",
            will=(agent_topic(SITE, "agent-b", "status"), _status("offline")),
        )
        pi.publish(agent_topic(SITE, "agent-b", "status"), _status("online"), retain=True)
        pi.die()
        eventually(lambda: agents().get("agent-b") is False, 10, "agent-b's Last Will")
        assert agents() == {"agent-a": True, "agent-b": False}
    finally:
        live.stop()


def test_web_reads_no_agent_data_and_publishes_nothing(connect: Connect, listen: Listen) -> None:
    """`web` reads only zone occupancy, alerts and agent status: with the widest filters
    it still gets no crossing, presence, fault or health, nor other zone topics; and
    nothing it publishes, as MQTT v5 (refused) or 3.1.1 (dropped silently), gets through."""
    wide = [listen("web", "#"), listen("web", "footfall/v1/+/agent/#")]
    exact = listen("web", agent_topic(SITE, "agent-a", "crossing"))
    agents_rx = listen("collector", "footfall/v1/+/agent/#")
    zones_rx = listen("dashboard", "footfall/v1/+/zone/#")
    alerts_rx = listen("dashboard", "footfall/v1/+/alert/#")
    agent = connect("agent-a")
    for kind in AGENT_KINDS:
        if kind != "status":
            agent.publish(agent_topic(SITE, "agent-a", kind), f"private-{kind}")
    collector = connect("collector", v5=True)
    collector.publish(f"footfall/v1/{SITE}/zone/library/other", "not-occupancy")
    agent.publish(agent_topic(SITE, "agent-a", "status"), "status-legit", retain=True)
    collector.publish(ZONE, "zone-legit", retain=True)
    for rec in (*wide, agents_rx):
        rec.wait_until(arrived(rec, b"status-legit"), 10)
    wide[0].wait_until(arrived(wide[0], b"zone-legit"), 10)
    assert payloads(wide[0]) == [b"status-legit", b"zone-legit"]
    assert payloads(wide[1]) == [b"status-legit"]
    assert payloads(exact) == []

    forged = [
        agent_topic(SITE, "web", "crossing"),  # the agent pattern, closed by the deny line
        agent_topic(SITE, "web", "status"),
        agent_topic(SITE, "agent-a", "crossing"),
        ZONE,
        ALERT,
        "footfall/v1/other",
        "something/else",
    ]
    web5 = connect("web", v5=True)
    for topic in forged:
        rc = web5.publish(topic, "forged", retain=True)
        assert rc is not None and rc.value == NOT_AUTHORIZED, (topic, rc)
    web3 = connect("web")  # MQTT 3.1.1, as footfall-web: a denial is silent
    for topic in forged:
        web3.publish(topic, "forged-311", retain=True)
    agent.publish(OWN, "after")
    collector.publish(ZONE, "zone-after")
    connect("alerts", v5=True).publish(ALERT, "alert-after")
    agents_rx.wait_until(arrived(agents_rx, b"after"), 10)
    zones_rx.wait_until(arrived(zones_rx, b"zone-after"), 10)
    alerts_rx.wait_until(arrived(alerts_rx, b"alert-after"), 10)
    wide[0].wait_until(arrived(wide[0], b"alert-after"), 10)
    for rec in (agents_rx, zones_rx, alerts_rx, *wide):
        assert not any(p.startswith(b"forged") for p in payloads(rec)), payloads(rec)
    # Nor was anything retained: a late reader of every topic sees only the real ones.
    late = listen("alerts", "footfall/v1/#")
    late.wait_until(lambda: len(late.messages) >= 2, 10)
    late.sync()
    assert sorted(payloads(late)) == [b"status-legit", b"zone-legit"]


def test_broker_keeps_an_absent_collectors_backlog_across_a_restart(
    broker: RepoBroker, connect: Connect
) -> None:
    """More than Mosquitto's default 1,000 queued messages wait for the collector's
    persistent session (max_queued_messages) and survive a broker restart (persistence)."""
    n = 2500
    received: list[bytes] = []
    got_all = threading.Event()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        received.append(bytes(msg.payload))
        if len(received) >= n:
            got_all.set()

    def session() -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="footfall-collector-s", protocol=mqtt.MQTTv5
        )
        client.username_pw_set("collector", USERS["collector"])
        client.on_message = on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
        return client

    subscribed = threading.Event()
    first = session()
    first.on_subscribe = lambda *_: subscribed.set()
    first.on_connect = lambda c, *_: c.subscribe(f"footfall/v1/{SITE}/agent/+/+", qos=1)
    first.loop_start()
    assert subscribed.wait(10), "no SUBACK"
    first.disconnect()
    first.loop_stop()

    agent = connect("agent-a")
    infos = [agent.client.publish(OWN, str(i), qos=1) for i in range(n)]
    for info in infos:
        info.wait_for_publish(10)
    assert all(info.is_published() for info in infos)
    agent.close()

    broker.restart()  # SIGTERM saves the queues; the new process loads them

    second = session()
    second.loop_start()
    try:
        assert got_all.wait(20), f"{len(received)} of {n} queued messages arrived"
    finally:
        second.disconnect()
        second.loop_stop()
    assert received[:3] == [b"0", b"1", b"2"] and len(set(received)) == n


# -- message size (docs/spec.md §2: payloads of at most 256 KiB) -----------------------------


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


def send_oversized(port: int, topic: str, size: int) -> tuple[bool, bool]:
    """An agent (MQTT 3.1.1, as the edge) publishing `size` bytes, QoS 1, retained:
    (acknowledged, disconnected by the broker)."""
    acked, gone = threading.Event(), threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.username_pw_set("agent-a", USERS["agent-a"])
    client.reconnect_delay_set(60, 60)  # no second try within the test
    client.on_publish = lambda *_: acked.set()
    client.on_disconnect = lambda *_: gone.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, b"x" * size, qos=1, retain=True)
        gone.wait(20)
        return acked.is_set(), gone.is_set()
    finally:
        client.loop_stop()


def connack_maximum_packet_size(port: int) -> int | None:
    """What the broker tells an MQTT v5 client about the largest packet it takes."""
    got: list[Any] = []
    done = threading.Event()

    def on_connect(_c: Any, _u: Any, _f: Any, _rc: Any, props: Any) -> None:
        got.append(getattr(props, "MaximumPacketSize", None))
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("agent-a", USERS["agent-a"])
    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(10), "no CONNACK"
        return got[0] if isinstance(got[0], int) else None
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("variant", ["container", "distro"])
def test_broker_refuses_messages_over_the_contract_limit(
    tmp_path: Path, passwd: Path, variant: Variant
) -> None:
    """max_packet_size (conf.d/footfall.conf, in both deployments): a 1 MB or 32 MB
    message is refused before the broker reads it (the publisher is disconnected, gets no
    PUBACK, nobody receives or retains it, the broker's memory does not grow); 200 KiB
    and the contract's 256 KiB pass. The board asks for the same limit (MQTT v5)."""
    server = RepoBroker(tmp_path / variant, passwd, None, variant=variant)
    server.start()
    collector = UserRecorder(server.port, "collector", USERS["collector"], "footfall/v1/+/agent/#")
    web = UserRecorder(server.port, "web", USERS["web"], "footfall/v1/+/agent/+/status")
    agent: User | None = None
    status_topic = agent_topic(SITE, "agent-a", "status")
    try:
        assert connack_maximum_packet_size(server.port) == MAX_PACKET_BYTES
        assert server.proc is not None
        pid = server.proc.pid
        baseline = peak_rss_bytes(pid)
        for size in (1024 * 1024, 32 * 1024 * 1024):
            acked, disconnected = send_oversized(server.port, status_topic, size)
            assert disconnected and not acked, size
        agent = User(server.port, "agent-a", USERS["agent-a"])
        for size in (200 * 1024, 256 * 1024):
            agent.publish(OWN, "x" * size)
        agent.publish(status_topic, "legit-status", retain=True)
        web.wait_until(arrived(web, b"legit-status"), 10)
        collector.wait_until(arrived(collector, b"legit-status"), 10)
        # truth: exactly what was sent within the limit, in order
        assert [len(p) for p in payloads(collector)] == [200 * 1024, 256 * 1024, 12]
        assert payloads(web) == [b"legit-status"]
        late = UserRecorder(server.port, "web", USERS["web"], status_topic)
        try:  # nothing oversized was retained either
            late.wait_until(lambda: len(late.messages) >= 1, 10)
            late.sync()
            assert payloads(late) == [b"legit-status"]
        finally:
            late.close()
        grown = peak_rss_bytes(pid) - baseline
        assert grown < 8 * 1024 * 1024, f"the broker's peak memory grew by {grown} bytes"
        assert "disconnected due to oversize packet" in server.log()
    finally:
        if agent is not None:
            agent.close()
        collector.close()
        web.close()
        server.kill()


# -- TLS, the distro variant, the compose healthcheck -----------------------------------------


def test_tls_listener_takes_agents_and_refuses_anonymous(
    broker: RepoBroker, tls_dir: Path, connect: Connect, listen: Listen
) -> None:
    collector = listen("collector", "footfall/v1/+/agent/#")
    tls = {"port": broker.tls_port, "ca_certs": tls_dir / "ca.crt", "host": "localhost"}
    agent = connect("agent-a", **tls)
    assert agent.accepted
    agent.publish(OWN, "over-tls")
    collector.wait_until(arrived(collector, b"over-tls"), 10)
    anonymous = connect(None, **tls)
    assert anonymous.connack is not None and anonymous.connack.is_failure


def test_distro_package_variant(tmp_path: Path, passwd: Path, tls_dir: Path) -> None:
    """debian/footfall-listeners.conf + conf.d/footfall.conf + acl, as docs/deployment.md
    installs them into a distro Mosquitto."""
    server = RepoBroker(tmp_path / "distro", passwd, tls_dir, variant="distro")
    server.start()
    clients: list[User] = []
    collector = UserRecorder(server.port, "collector", USERS["collector"], "footfall/v1/+/agent/#")
    try:
        anonymous = User(server.port)
        clients.append(anonymous)
        assert anonymous.connack is not None and anonymous.connack.is_failure
        assert server.tls_port is not None
        agent = User(
            server.tls_port,
            "agent-a",
            USERS["agent-a"],
            ca_certs=tls_dir / "ca.crt",
            host="localhost",
        )
        clients.append(agent)
        agent.publish(agent_topic(SITE, "agent-b", "crossing"), "forged")
        agent.publish(OWN, "legit")
        collector.wait_until(arrived(collector, b"legit"), 10)
        assert payloads(collector) == [b"legit"]
    finally:
        for client in clients:
            client.close()
        collector.close()
        server.kill()


def test_compose_healthcheck_tells_a_running_broker_from_a_dead_one(broker: RepoBroker) -> None:
    if shutil.which("mosquitto_sub") is None:
        pytest.skip("mosquitto_sub (mosquitto-clients) is not installed")
    compose = yaml.safe_load((REPO / "deploy" / "server" / "docker-compose.yml").read_text())
    kind, command = compose["services"]["mosquitto"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL" and "-p 1883" in command

    def check(port: int) -> int:
        cmd = command.replace("-p 1883", f"-p {port}")
        return subprocess.run(["sh", "-c", cmd], capture_output=True, timeout=20).returncode

    assert check(broker.port) == 0
    assert check(free_port()) != 0


def test_policy_settings() -> None:
    """What the deployment relies on, stated once in conf.d/footfall.conf."""
    settings: dict[str, str] = {}
    for line in (MOSQUITTO_DIR / "conf.d" / "footfall.conf").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            settings[key] = value
    assert settings["allow_anonymous"] == "false"
    assert settings["per_listener_settings"] == "false"
    assert settings["persistence"] == "true"
    # A day's outage of the collector is a few tens of thousands of QoS 1 messages.
    assert int(settings["max_queued_messages"]) >= 100_000
    assert settings["persistent_client_expiration"].endswith(("d", "w"))
    # the contract's 256 KiB payload plus room for topic and headers, what the board asks
    # for too; not message_size_limit (acknowledges and drops an MQTT 3.1.1 message)
    assert int(settings["max_packet_size"]) == MAX_PACKET_BYTES == 256 * 1024 + 4096
    assert "message_size_limit" not in settings
    main = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    assert "\ninclude_dir /mosquitto/config/conf.d" in main
