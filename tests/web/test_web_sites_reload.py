"""footfall-web over a folder of sites changed while it runs (docs/web.md, "Sites from a
folder"): `footfall-web run --sites-dir DIR` as a process, the way users start it, against
a real Mosquitto and InfluxDB, and an open board in Chromium. A site file added, changed,
broken and removed, each read on SIGHUP (or within `sites.poll_s`): what the API, the
board, the public display and the live stream answer is checked against the files
written here."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from footfall_contract.site import parse_site
from footfall_sim.localservices import Influx, Mosquitto
from footfall_web.state import Web
from tests.support.collector import SITE_YAML, Publisher
from tests.support.waiting import eventually
from tests.support.web import occupancy, screenshot_path, web_process, web_server, web_settings

pytestmark = pytest.mark.services
ROOT = Path(__file__).resolve().parents[2]


def site_yaml(site_id: str, library: str = "Library", capacity: int = 250) -> str:
    """The tests' site under another id, its library's name and capacity chosen (the
    library is line 8 of the file), with a public display for the library."""
    text = SITE_YAML.replace("site: test-site", f"site: {site_id}")
    old = "{id: library, name: Library, parent: centre, capacity: 250}"
    assert old in text
    new = f"{{id: library, public: true, name: {library}, parent: centre, capacity: {capacity}}}"
    text = text.replace(old, new)
    assert text.splitlines()[7].lstrip().startswith("- {id: library")
    return text


def zones(http: httpx.Client, site: str) -> dict[str, dict[str, Any]] | None:
    """The site's zones as /api/v1/sites lists them; None while it is not listed."""
    for s in http.get("/api/v1/sites").json()["sites"]:
        if s["site"] == site:
            return {z["id"]: z for z in s["zones"]}
    return None


def library(http: httpx.Client, site: str) -> tuple[str, int] | None:
    found = zones(http, site)
    return None if found is None else (found["library"]["name"], found["library"]["capacity"])


def public_name(http: httpx.Client, site: str) -> str:
    """The library's name on its public display (its JSON)."""
    r = http.get(f"/api/v1/public/sites/{site}/zones/library/crowding")
    assert r.status_code == 200, r.text
    name: str = r.json()["name"]
    return name


def count(http: httpx.Client, site: str, zone: str) -> int | None:
    r = http.get(f"/api/v1/sites/{site}/occupancy")
    if r.status_code != 200:
        return None
    found: int | None = next(z["count"] for z in r.json()["zones"] if z["zone"] == zone)
    return found


def events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """(event name, data) of a server-sent event stream, until it ends."""
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: "))


def next_sites(got: Iterator[tuple[str, Any]]) -> Any:
    """The next `sites` event's data (a changed site's retained figures, sent again on
    subscribing anew, may come before it)."""
    return next(data for kind, data in got if kind == "sites")


def test_sites_follow_the_folder_on_sighup(
    mosquitto: Mosquitto, influx: Influx, tmp_path: Path
) -> None:
    folder = tmp_path / "sites"
    folder.mkdir()
    (folder / "alpha.yaml").write_text(site_yaml("alpha"))
    log = tmp_path / "web.log"
    pub = Publisher(mosquitto.port)
    try:
        # the collector's retained figure for the site not yet on the board
        pub.send("footfall/v1/beta/zone/library/occupancy", occupancy(31), retain=True)
        with web_process(
            ["--sites-dir", str(folder)], mosquitto, influx, log, FOOTFALL_SITES__POLL_S="3600"
        ) as (proc, http):
            assert [s["site"] for s in http.get("/api/v1/sites").json()["sites"]] == ["alpha"]
            assert http.get("/api/v1/sites/beta/occupancy").status_code == 404

            # added: read at once on SIGHUP (poll_s is an hour), with its zones and the
            # retained occupancy the broker sends a new subscription
            (folder / "beta.yaml").write_text(site_yaml("beta", "Kirjasto"))
            proc.send_signal(signal.SIGHUP)
            assert eventually(lambda: library(http, "beta"), 15, "beta listed") == (
                "Kirjasto",
                250,
            )
            assert eventually(lambda: count(http, "beta", "library"), 15, "beta's figure") == 31
            board = http.get("/")
            assert board.status_code == 200
            assert '"beta"' in board.text and "Kirjasto" in board.text
            assert http.get("/crowding/beta/library").status_code == 200
            assert public_name(http, "beta") == "Kirjasto"
            assert http.get("/crowding/alpha/library").status_code == 200

            with http.stream("GET", "/api/v1/stream", params={"site": "beta"}) as stream:
                got = events(stream.iter_lines())
                kind, snap = next(got)
                assert kind == "snapshot" and snap["sites"]["beta"]["zones"][1]["count"] == 31
                # a live figure published for the new site reaches its stream
                pub.send("footfall/v1/beta/zone/library/occupancy", occupancy(77), retain=True)
                kind, data = next(got)
                assert kind == "occupancy"
                assert (data["site"], data["zone"], data["count"]) == ("beta", "library", 77)
                assert count(http, "beta", "library") == 77

                # changed: renamed and its capacity changed
                (folder / "beta.yaml").write_text(site_yaml("beta", "Bibliotek", 300))
                proc.send_signal(signal.SIGHUP)
                # the board reloads for it
                assert next_sites(got) == {
                    "added": [],
                    "changed": ["beta"],
                    "removed": [],
                    "version": 2,
                }
                assert library(http, "beta") == ("Bibliotek", 300)
                assert count(http, "beta", "library") == 77
                assert public_name(http, "beta") == "Bibliotek"

                # broken: refused with file:line, the last good version still served
                (folder / "beta.yaml").write_text(site_yaml("beta", "Broken", -5))
                proc.send_signal(signal.SIGHUP)
                refusal = eventually(
                    lambda: [x for x in log.read_text().splitlines() if "refused" in x],
                    15,
                    "the refusal logged",
                )
                assert (
                    len(refusal) == 1
                    and (
                        f"site file refused: {folder / 'beta.yaml'}:8: zones[1].capacity: "
                        "Input should be greater than 0 (site beta keeps its last good version)"
                    )
                    in refusal[0]
                ), refusal
                assert library(http, "beta") == ("Bibliotek", 300)
                assert library(http, "alpha") == ("Library", 250)  # the other site untouched

                # removed: its stream says so and ends, and it answers 404
                (folder / "beta.yaml").unlink()
                proc.send_signal(signal.SIGHUP)
                assert next_sites(got) == {
                    "added": [],
                    "changed": [],
                    "removed": ["beta"],
                    "version": 3,
                }
                assert list(got) == []  # the stream ended
            assert http.get("/api/v1/sites/beta/occupancy").status_code == 404
            assert http.get("/api/v1/stream", params={"site": "beta"}).status_code == 404
            assert http.get("/crowding/beta/library").status_code == 404
            public = http.get("/api/v1/public/sites/beta/zones/library/crowding")
            assert public.status_code == 404
            assert [s["site"] for s in http.get("/api/v1/sites").json()["sites"]] == ["alpha"]
            text = log.read_text()
            assert "site beta added" in text and "site beta changed" in text
            assert "site beta removed from the folder: no longer served" in text
    finally:
        pub.close()


def test_a_new_file_is_read_within_poll_s_without_a_signal(
    mosquitto: Mosquitto, influx: Influx, tmp_path: Path
) -> None:
    folder = tmp_path / "sites"
    folder.mkdir()
    (folder / "alpha.yaml").write_text(site_yaml("alpha"))
    with web_process(
        ["--sites-dir", str(folder)],
        mosquitto,
        influx,
        tmp_path / "web.log",
        FOOTFALL_SITES__POLL_S="0.5",
    ) as (_, http):
        (folder / "gamma.yaml").write_text(site_yaml("gamma", capacity=120))
        assert eventually(lambda: library(http, "gamma"), 10, "gamma listed") == (
            "Library",
            120,
        )


def test_live_state_follows_the_sites_and_keeps_nothing_of_removed_ones(
    mosquitto: Mosquitto, influx: Influx
) -> None:
    """In process, to see inside: removing a site drops what was kept of it and its
    subscription (a figure published meanwhile is not taken), adding it again brings the
    retained figure back; many turns leave no listener and no entry behind."""
    alpha = parse_site(site_yaml("alpha"), "alpha.yaml")
    beta = parse_site(site_yaml("beta"), "beta.yaml")
    pub = Publisher(mosquitto.port)
    try:
        pub.send("footfall/v1/beta/zone/library/occupancy", occupancy(12), retain=True)
        settings = web_settings(mosquitto.port, influx.url)
        with web_server(settings, [alpha, beta]) as server:
            web: Web = server.web
            live = web.live
            taken: list[str] = []  # every topic the broker delivers to the web's session
            on_message = live.client.on_message
            assert on_message is not None

            def record(client: Any, userdata: Any, msg: Any) -> None:
                taken.append(msg.topic)
                on_message(client, userdata, msg)

            live.client.on_message = record
            eventually(lambda: live.reading("beta", "library"), 10, "beta's figure")
            for turn in range(30):
                web.set_sites([alpha])
                assert live.reading("beta", "library") is None
                assert "beta" not in web.sites and "beta" not in live.sites
                web.set_sites([alpha, beta])
                reading = eventually(
                    lambda: live.reading("beta", "library"), 10, f"beta again ({turn})"
                )
                assert reading is not None and reading.count == 12
            web.set_sites([alpha])
            alpha_topic = "footfall/v1/alpha/zone/library/occupancy"

            def only_alpha_delivered() -> list[str] | None:
                """Unsubscribed: the broker sends beta's figure no more (delivered in
                order, it would come before alpha's, published after it)."""
                taken.clear()
                pub.send("footfall/v1/beta/zone/library/occupancy", occupancy(99), retain=True)
                pub.send(alpha_topic, occupancy(5), retain=True)
                eventually(lambda: alpha_topic in taken, 10, "alpha's figure")
                return None if taken != [alpha_topic] else taken

            # the unsubscription reaches the broker a moment after set_sites returns
            eventually(only_alpha_delivered, 10, "beta unsubscribed")
            assert live.reading("beta", "library") is None
            assert live.rejected_counts() == {}
            assert len(live._listeners) == 0  # no stream left listening
            assert {k[0] for k in live._occupancy} == {"alpha"}
    finally:
        pub.close()


def reload_with_stream_held(page: Page, meanwhile: Callable[[], None]) -> None:
    """The page loaded again with its stream held back until `meanwhile` has run: a
    change after the page was made and before its stream started."""
    held: list[Route] = []
    page.route("**/api/v1/stream?*", lambda route: held.append(route))
    with page.expect_request("**/api/v1/stream?*"):
        page.reload()
    for _ in range(400):  # the route handler runs as Playwright's events are taken
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1
    meanwhile()
    held[0].continue_()
    page.unroute("**/api/v1/stream?*")


def test_an_open_board_reloads_for_the_sites_that_came_changed_or_went(
    browser: Browser, mosquitto: Mosquitto, influx: Influx
) -> None:
    """The board of every site in Chromium: a site added, then renamed, then removed
    (what the folder's reload does, `Web.set_sites`) shows without anyone reloading,
    also when the change lands while the board is loading."""
    alpha = parse_site(site_yaml("alpha"), "alpha.yaml")
    beta = parse_site(site_yaml("beta", "Kirjasto"), "beta.yaml")
    renamed = parse_site(site_yaml("beta", "Bibliotek", 300), "beta.yaml")
    again = parse_site(site_yaml("beta", "Boksamling", 300), "beta.yaml")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    try:
        with web_server(web_settings(mosquitto.port, influx.url), [alpha]) as server:
            page = context.new_page()
            page.goto(server.url + "/")
            expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
            expect(page.locator("section.site")).to_have_count(1)
            server.web.set_sites([alpha, beta])
            expect(page.locator("#zone-beta-library .zone-link")).to_have_text(
                "Kirjasto", timeout=10_000
            )
            server.web.set_sites([alpha, renamed])
            expect(page.locator("#zone-beta-library .zone-link")).to_have_text(
                "Bibliotek", timeout=10_000
            )
            # Renamed while the board is loading: no `sites` event reaches it, but its
            # stream's first snapshot carries a newer `sites_version`: loaded again.
            reload_with_stream_held(page, lambda: server.web.set_sites([alpha, again]))
            expect(page.locator("#zone-beta-library .zone-link")).to_have_text(
                "Boksamling", timeout=10_000
            )
            expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
            # Removed while it is loading: the stream is refused (404, the site is gone)
            # and the board loads again, without beta.
            reload_with_stream_held(page, lambda: server.web.set_sites([alpha]))
            expect(page.locator("#site-beta")).to_have_count(0, timeout=10_000)
            expect(page.locator("#zone-alpha-library .zone-link")).to_have_text("Library")
            expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
            page.screenshot(path=screenshot_path("board-sites-reloaded"))
    finally:
        context.close()


def test_a_refused_stream_reloads_the_board_only_once_the_page_is_served(
    browser: Browser, mosquitto: Mosquitto, influx: Influx
) -> None:
    """A stream refused for good (here a 503 from a proxy while footfall-web restarts)
    must not leave a wall display on a browser error page: the board keeps what it
    shows, asks for its page again later and later, and loads it only once it is
    served."""
    alpha = parse_site(site_yaml("alpha"), "alpha.yaml")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    try:
        with web_server(web_settings(mosquitto.port, influx.url), [alpha]) as server:
            page = context.new_page()
            asked: list[int] = []  # the page's answers while the board asks for it again
            serving = False

            def board(route: Route) -> None:
                if route.request.resource_type == "fetch":
                    asked.append(200 if serving else 502)
                if route.request.resource_type == "fetch" and not serving:
                    route.fulfill(status=502, body="Bad Gateway")
                else:
                    route.continue_()

            page.route(server.url + "/", board)
            page.route("**/api/v1/stream?*", lambda route: route.fulfill(status=503))
            page.goto(server.url + "/")
            page.evaluate("window.loadedOnce = true")
            expect(page.locator("#conn")).to_contain_text("reconnecting")
            for _ in range(200):  # the first question, 2 s after the refusal
                if asked:
                    break
                page.wait_for_timeout(50)
            assert asked == [502]
            page.wait_for_timeout(500)
            assert page.evaluate("window.loadedOnce") is True  # not loaded on a 502
            expect(page.locator("#zone-alpha-library .zone-link")).to_have_text("Library")
            serving = True
            page.unroute("**/api/v1/stream?*")
            # asked again 4 s after the first (doubling): served, so loaded, and live
            expect(page.locator("#conn")).to_have_text("live", timeout=15_000)
            assert page.evaluate("window.loadedOnce") is None
            assert asked == [502, 200]
    finally:
        context.close()
