"""The README's first command, `deploy/dev/demo.sh`, from a clean clone: it sets up,
starts the whole system, data reaches InfluxDB, the library's display shows a level
whatever the hour (the demo's copy of the site is in opening hours), no "count after
closing" alert, the board's Acknowledge and Silence reach the alerts service, Ctrl-C
stops everything it started; a second run reuses what the first one made.

First the demo's copy of the site on its own (`footfall_sim.demosite`), at every hour of
a week, checked with the contract's own `Site.is_open` and `Site.hours_on`."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from footfall_contract.site import Site, load_site
from footfall_contract.timefmt import format_ts
from footfall_contract.topics import agent_topic
from footfall_sim import demosite
from footfall_sim.localservices import free_port, port_open
from tests.support.collector import InfluxQuery, Publisher, now_ms, wait_for

REPO = Path(__file__).resolve().parents[2]
SITES = REPO / "deploy" / "sites"
LEVELS = ("quiet", "moderate", "busy", "very_busy")


# -- the demo's copy of the site ---------------------------------------------------------

MARGIN_BEFORE = dt.timedelta(minutes=89)  # open 1.5 h before now (the copy's promise)...
MARGIN_AFTER = dt.timedelta(minutes=179)  # ...and 3 h after; times below end in :17


def open_throughout(site: Site, now: dt.datetime) -> bool:
    """Every zone open now, 1.5 h before and 3 h after, by the contract's own rule."""
    return all(
        site.is_open(t, z.id)
        for z in site.zones
        for t in (now - MARGIN_BEFORE, now, now + MARGIN_AFTER)
    )


def turn_of(copy: Site, source: Site) -> int | None:
    """The k for which every zone's hours on each day of the copy are the source's hours
    k days later; None when the copy is not the source's week turned."""
    monday = dt.date(2026, 11, 30)
    for k in range(7):
        if all(
            copy.hours_on(monday + dt.timedelta(days=d), z.id)
            == source.hours_on(monday + dt.timedelta(days=d + k), z.id)
            for z in source.zones
            for d in range(7)
        ):
            return k
    return None


def without_clock(site: Site) -> dict[str, Any]:
    data = site.model_dump()
    data.pop("timezone")
    data.pop("opening_hours")
    for zone in data["zones"]:
        zone.pop("opening_hours")
    return data


@pytest.mark.parametrize("name", ["iso-omena", "kalajarvi"])
def test_demo_copy_is_in_opening_hours_at_every_hour_of_a_week(name: str, tmp_path: Path) -> None:
    source_path = SITES / f"{name}.yaml"
    source = load_site(source_path)
    # a week from Monday 00:17 UTC, and the night the clocks went forward in spring
    start = dt.datetime(2026, 11, 30, 0, 17, tzinfo=dt.UTC)
    spring = dt.datetime(2026, 3, 28, 12, 17, tzinfo=dt.UTC)
    instants = [start + dt.timedelta(hours=h) for h in range(168)]
    instants += [spring + dt.timedelta(hours=h) for h in range(24)]
    own_zone = turned = 0
    for i, now in enumerate(instants):
        new, path, _, _ = demosite.prepare(source_path, tmp_path / str(i), now)
        assert new
        copy = load_site(path)
        assert open_throughout(copy, now), (now, copy.timezone)
        k = turn_of(copy, source)
        assert k is not None, f"{now}: the copy's hours are not the site's week turned"
        assert without_clock(copy) == without_clock(source)  # zones, doors, names, ...
        if open_throughout(source, now):
            # open in its own time zone: the demo is the real thing, wall clock included
            assert (copy.timezone, k) == (source.timezone, 0), now
            own_zone += 1
        else:
            assert (copy.timezone, k) != (source.timezone, 0), now
        turned += k != 0
        rules = path.with_name(f"{name}.alerts.yaml")
        assert rules.read_bytes() == (SITES / f"{name}.alerts.yaml").read_bytes()
    assert own_zone and turned  # both cases were seen (own clock by day, Sundays turned)


def run_demosite(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = demosite.main(list(args))
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_copy_is_kept_while_open_and_written_again_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "iso-omena.yaml"
    source.write_text((SITES / "iso-omena.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "copy"
    noon = "2026-12-02T12:17+02:00"  # a Wednesday at Iso Omena: open 08:00-20:00
    code, text, _ = run_demosite(capsys, "--site", str(source), "--out", str(out), "--now", noon)
    assert code == 0
    assert text.splitlines()[0] == "new 2026-12-02"
    assert "its own time zone Europe/Helsinki, where it is now Wednesday 12:17" in text
    first = (out / "iso-omena.yaml").read_text(encoding="utf-8")
    # 18:47, over an hour to closing: the same copy, the same history
    later = "2026-12-02T18:47+02:00"
    code, text, _ = run_demosite(capsys, "--site", str(source), "--out", str(out), "--now", later)
    assert (code, text.splitlines()[0]) == (0, "kept 2026-12-02")
    assert (out / "iso-omena.yaml").read_text(encoding="utf-8") == first
    # 19:17, 43 minutes to closing: another clock, where it is open for hours
    evening = dt.datetime(2026, 12, 2, 19, 17, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    code, text, _ = run_demosite(
        capsys, "--site", str(source), "--out", str(out), "--now", evening.isoformat()
    )
    assert code == 0 and text.startswith("new ")
    copy = load_site(out / "iso-omena.yaml")
    assert copy.timezone != "Europe/Helsinki"
    assert open_throughout(copy, evening)
    # an edited site file is never hidden behind an old copy
    source.write_text(
        source.read_text(encoding="utf-8").replace("capacity: 350", "capacity: 360"),
        encoding="utf-8",
    )
    code, text, _ = run_demosite(
        capsys, "--site", str(source), "--out", str(out), "--now", evening.isoformat()
    )
    assert code == 0 and text.startswith("new ")
    assert load_site(out / "iso-omena.yaml").zone("library").capacity == 360


def test_demo_copy_bad_input_says_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "copy")
    code, _, err = run_demosite(capsys, "--site", str(tmp_path / "nope.yaml"), "--out", out)
    assert code == 2
    assert "nope.yaml" in err and "no such site file" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("site: x\nzones: [\n", encoding="utf-8")
    code, _, err = run_demosite(capsys, "--site", str(broken), "--out", out)
    assert code == 2 and re.search(r"broken\.yaml:\d+:", err), err
    site = str(SITES / "iso-omena.yaml")
    code, _, err = run_demosite(capsys, "--site", site, "--out", out, "--now", "2026-12-02T12:00")
    assert code == 2 and "--now" in err and "UTC offset" in err
    code, _, err = run_demosite(capsys, "--site", site, "--out", out, "--now", "noon")
    assert code == 2 and "--now" in err and "'noon'" in err


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("FOOTFALL_DEMO_VISITS", "real", "FOOTFALL_DEMO_VISITS must be a number"),
        ("FOOTFALL_DEMO_VISITS", "0", "above 0"),
        ("FOOTFALL_DEMO_VISITS", "-5", "not '-5'"),
        ("FOOTFALL_DEMO_BACKFILL_DAYS", "a week", "FOOTFALL_DEMO_BACKFILL_DAYS must be a whole"),
    ],
)
def test_demo_refuses_bad_settings_before_it_starts_anything(
    name: str, value: str, says: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    env[name] = value
    run = subprocess.run(
        [str(REPO / "deploy/dev/demo.sh")], env=env, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 2, run
    assert says in run.stderr and "setting up" not in run.stdout, run


@pytest.mark.services
def test_forget_data_deletes_only_the_site(influx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new clock makes the old history wrong: every point of the site goes, raw and
    rollups; another site's stay."""
    monkeypatch.setenv("FOOTFALL_INFLUX__URL", influx.url)
    demosite.forget_data("iso-omena")  # no database yet: nothing to delete, no error
    query = InfluxQuery(influx.url)
    query.rows("CREATE DATABASE footfall")
    query.rows('CREATE RETENTION POLICY "rollups" ON "footfall" DURATION INF REPLICATION 1')
    t = time.time_ns()
    lines = [f"crossing,site={s},door=d,dir=in,agent=a count=1i {t}" for s in ("iso-omena", "x")]
    rollups = [f"visits_daily,site={s},zone=z entries=3i {t}" for s in ("iso-omena", "x")]
    for rp, body in (("autogen", lines), ("rollups", rollups)):
        request = urllib.request.Request(
            f"{influx.url}/write?db=footfall&rp={rp}", data="\n".join(body).encode()
        )
        with urllib.request.urlopen(request, timeout=10):
            pass
    demosite.forget_data("iso-omena")
    left = query.rows('SELECT count("count") FROM "crossing" GROUP BY "site"')
    assert [r["site"] for r in left] == ["x"]
    left = query.rows('SELECT count("entries") FROM "rollups"."visits_daily" GROUP BY "site"')
    assert [r["site"] for r in left] == ["x"]


# -- the demo itself ----------------------------------------------------------------------


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A clean clone of what is committed, as a newcomer gets it."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    target = tmp_path / "footfall"
    subprocess.run(["git", "clone", "-q", str(REPO), str(target)], check=True, timeout=120)
    return target


class Demo:
    """deploy/dev/demo.sh in its own session, as a terminal would run it."""

    def __init__(self, clone: Path, env: dict[str, str]) -> None:
        self.log = clone / "demo-test.out"
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        self.logs = clone / "var" / "demo"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["deploy/dev/demo.sh"],
                cwd=clone,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_bytes()[self.offset :].decode(errors="replace")

    def wait_running(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while "demo: running" not in self.output():
            assert self.proc.poll() is None, f"the demo exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"the demo did not start:\n{self.output()}"
            time.sleep(0.5)

    def ctrl_c(self, timeout_s: float = 60.0) -> None:
        """SIGINT to the whole process group: what Ctrl-C in a terminal does."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            ps = subprocess.run(
                ["ps", "-o", "pid,stat,wchan:20,args", "-g", str(self.proc.pid)],
                capture_output=True,
                text=True,
            ).stdout
            raise AssertionError(
                f"the demo did not stop within {timeout_s} s\n{ps}\n{self.output()}"
            ) from None
        logs = {p.name: p.read_text(errors="replace")[-3000:] for p in self.logs.glob("*.log")}
        assert "did not stop" not in self.output(), f"{self.output()}\n{logs}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def http_post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    """(status, JSON answer) of a POST, error statuses included."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def board_state(web: str) -> dict[str, Any]:
    """The state the board page carries for its script (its CSRF token among it)."""
    with urllib.request.urlopen(f"{web}/", timeout=10) as response:
        page = response.read().decode()
    found = re.search(r'<script type="application/json" id="state">(.*?)</script>', page, re.S)
    assert found, page[:2000]
    state: dict[str, Any] = json.loads(found.group(1))
    return state


def after_closing(alerts: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in alerts["alerts"] if a["kind"] == "drift_after_close"]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture
def demo_env(clone: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOOTFALL_", "VIRTUAL_ENV"))}
    env.update(
        FOOTFALL_DEMO_MQTT_PORT=str(free_port()),
        FOOTFALL_DEMO_INFLUX_PORT=str(free_port()),
        FOOTFALL_DEMO_COLLECTOR_PORT=str(free_port()),
        FOOTFALL_DEMO_WEB_PORT=str(free_port()),
        FOOTFALL_DEMO_ALERTS_PORT=str(free_port()),
        FOOTFALL_DEMO_SMTP_PORT=str(free_port()),
        FOOTFALL_DEMO_WEBHOOK_PORT=str(free_port()),
        FOOTFALL_DEMO_BACKFILL_DAYS="2",
        # busier than the usual crowd, so that live crossings come within seconds even on
        # a quiet morning; over capacity only after an hour or more
        FOOTFALL_DEMO_VISITS="20000",
    )
    yield env
    # Whatever happened, nothing the demo started outlives the test.
    subprocess.run(
        [
            str(clone / "deploy/dev/services.sh"),
            "stop",
            "--mqtt-port",
            env["FOOTFALL_DEMO_MQTT_PORT"],
            "--influx-port",
            env["FOOTFALL_DEMO_INFLUX_PORT"],
        ],
        cwd=clone,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.services
@pytest.mark.timeout(900)
def test_demo_from_a_clean_clone_runs_and_stops(clone: Path, demo_env: dict[str, str]) -> None:
    influx = InfluxQuery(f"http://127.0.0.1:{demo_env['FOOTFALL_DEMO_INFLUX_PORT']}")
    collector_port = int(demo_env["FOOTFALL_DEMO_COLLECTOR_PORT"])
    demo = Demo(clone, demo_env)
    try:
        demo.wait_running(timeout_s=600)  # the first run creates the virtual environment
        running = time.monotonic()
        out = demo.output()
        assert "writing 2 days of simulated history" in out
        assert "http://127.0.0.1:" in out  # it says where to look
        # whatever the hour, the demo runs on a copy of the site that is open now
        assert re.search(
            r"var/demo/site/iso-omena\.yaml \(new\): the site in .* where it is now", out
        )
        copy = load_site(clone / "var/demo/site/iso-omena.yaml")
        now = dt.datetime.now(dt.UTC)
        assert all(copy.is_open(now, z.id) for z in copy.zones), copy.timezone
        # History from the backfill, live crossings from the simulated agents, occupancy
        # from the collector: the whole chain runs.
        wait_for(
            lambda: bool(influx.rows("SELECT count(*) FROM crossing WHERE time < now() - 1d")),
            timeout_s=30,
            what="backfilled crossings in InfluxDB",
        )
        wait_for(
            lambda: bool(
                influx.rows(
                    "SELECT count(*) FROM crossing WHERE time > now() - 10m AND agent =~ /^sim-/"
                )
            ),
            timeout_s=120,
            what="live crossings from the simulated agents in InfluxDB",
        )
        wait_for(
            lambda: bool(influx.rows("SELECT last(count) FROM occupancy WHERE time > now() - 10m")),
            timeout_s=60,
            what="occupancy written by the collector",
        )
        assert port_open(collector_port)
        # The web board serves the site's live occupancy; the alerts service answers.
        web = f"http://127.0.0.1:{demo_env['FOOTFALL_DEMO_WEB_PORT']}"
        wait_for(lambda: port_open(int(demo_env["FOOTFALL_DEMO_WEB_PORT"])), 60, "the web board")
        zones = http_json(f"{web}/api/v1/sites/iso-omena/occupancy")
        assert "library" in json.dumps(zones)
        alerts_api = f"http://127.0.0.1:{demo_env['FOOTFALL_DEMO_ALERTS_PORT']}"
        alerts = f"{alerts_api}/api/v1/alerts"
        wait_for(lambda: port_open(int(demo_env["FOOTFALL_DEMO_ALERTS_PORT"])), 60, "alerts")
        assert http_json(alerts)["site"] == "iso-omena"

        # The library's public display at whatever hour the test runs: open, with a level.
        crowding = f"{web}/api/v1/public/sites/iso-omena/zones/library/crowding?lang=en"
        wait_for(lambda: http_json(crowding)["state"] == "open", 60, "the library's display")
        view = http_json(crowding)
        assert view["level"] in LEVELS, view
        with urllib.request.urlopen(f"{web}/crowding/iso-omena/library?lang=en") as response:
            page = response.read().decode()
        assert f"state-open level-{view['level']}" in page
        shown = re.search(r'<p id="level" class="level">([^<]*)</p>', page)
        assert shown and shown.group(1) == view["label"] != "Closed", shown

        # The board's Acknowledge and Silence reach footfall-alerts: a test Pi reports a
        # blocked beam at the Kela door, and the board acts on the alert it raises.
        publisher = Publisher(int(demo_env["FOOTFALL_DEMO_MQTT_PORT"]))
        fault = {"seq": 0, "ts": format_ts(now_ms()), "source": "kela-door/outer"}
        fault |= {"fault": "beam_blocked", "active": True}
        publisher.send(
            agent_topic("iso-omena", "demo-test-pi", "fault"),
            json.dumps({"epoch": "demo-test", "events": [fault]}),
        )
        publisher.close()

        def blocked() -> list[dict[str, Any]]:
            return [
                a
                for a in http_json(alerts)["alerts"]
                if a["kind"] == "beam_blocked" and a["scope"].get("agent") == "demo-test-pi"
            ]

        wait_for(lambda: [a["state"] for a in blocked()] == ["firing"], 30, "beam_blocked alert")
        alert_id = blocked()[0]["id"]
        state = board_state(web)
        assert state["actions"] == {"iso-omena": True}  # the board shows the buttons
        csrf = {"X-CSRF-Token": state["csrf"]}
        act = f"{web}/api/v1/sites/iso-omena/alerts/{alert_id}"
        status, answer = http_post(f"{act}/ack", {"reason": "demo test"}, csrf)
        assert status == 200, answer
        assert blocked()[0]["acknowledged_by"] == "local"  # on loopback without a login
        status, answer = http_post(f"{act}/silence", {"hours": 1}, csrf)
        assert status == 201, answer
        silences = http_json(f"{alerts_api}/api/v1/silences")
        assert [(s["matchers"], s["by"]) for s in silences] == [({"alert": alert_id}, "local")]
        until = dt.datetime.fromisoformat(silences[0]["until"])
        assert abs(until - dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)) < dt.timedelta(
            minutes=2
        )
        assert blocked()[0]["silenced_until"] is not None
        # an alert that is not firing: footfall-alerts' own answer comes back
        status, answer = http_post(
            f"{web}/api/v1/sites/iso-omena/alerts/nothing-here/ack", {}, csrf
        )
        assert status == 404 and answer["detail"].startswith("footfall-alerts: no firing alert")

        # No "count after closing" in the first minute (the alerts wait 30 s to group),
        # neither raised nor sent.
        while time.monotonic() - running < 65:
            assert after_closing(http_json(alerts)) == []
            time.sleep(3)
        assert after_closing(http_json(alerts)) == []
        sent = (clone / "var/demo/alerts-sent.log").read_text(errors="replace")
        assert "after closing" not in sent, sent[-3000:]
        demo.ctrl_c()
        assert not group_alive(demo.proc.pid), "a process of the demo outlived Ctrl-C"
        assert not port_open(int(demo_env["FOOTFALL_DEMO_MQTT_PORT"]))
        assert not port_open(int(demo_env["FOOTFALL_DEMO_INFLUX_PORT"]))
        for name in ("COLLECTOR", "WEB", "ALERTS", "SMTP", "WEBHOOK"):
            assert not port_open(int(demo_env[f"FOOTFALL_DEMO_{name}_PORT"])), name
        assert "stopping" in demo.output()

        # A second run reuses the environment, the data and today's history.
        demo = Demo(clone, demo_env)
        demo.wait_running(timeout_s=120)
        second = demo.output()
        assert "iso-omena.yaml (kept)" in second  # the same clock, so the same history
        assert "history: already written today" in second
        assert "installing the project" not in second
        demo.ctrl_c()
        assert not group_alive(demo.proc.pid)
    finally:
        demo.kill()
