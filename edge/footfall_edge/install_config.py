"""The edge configuration a new Pi gets, written by `deploy/edge/install.sh` (the one
installer path: docs/operations.md): `edge.example.toml` with this agent's site, id,
broker host, port and TLS filled in and its doors and presence sensors in place of the
example's, every id checked against the site file first, so that a typo in a site or
door id stops the installation instead of making an agent whose events the collector
refuses.

    python -m footfall_edge.install_config --example deploy/edge/edge.example.toml \\
        --sites-dir deploy/sites --site iso-omena --agent library-pi-1 \\
        --broker mqtt.example.net:8883 --door library-main=17,27 --presence study-room-2=24

prints the configuration (or writes it with --out); every bad input ends with exit 2
and one line naming what is wrong."""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from footfall_contract.site import Site, SiteError, load_site, site_files
from footfall_contract.topics import ID_PATTERN
from footfall_runtime.config import ConfigError

from .settings import load_config_here

MAX_ID = 64
SERVICE_USERS = ("collector", "dashboard", "alerts", "web")
"""Broker users of the services (deploy/mosquitto/acl): no agent may take these names."""
TLS_PORT = 8883
"""The default broker port, with TLS; deploy/mosquitto/add-agent uses the same."""

_ID = re.compile(ID_PATTERN)
_HOST = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]")
_PIN = re.compile(r"[0-9]{1,3}|[A-Za-z][A-Za-z0-9_]{0,31}")


class InstallError(ValueError):
    """A bad option: the message names the option, the value and what is wrong."""


@dataclass(frozen=True)
class DoorSpec:
    id: str
    outer: int | str
    inner: int | str
    invert: bool = False


@dataclass(frozen=True)
class PresenceSpec:
    id: str
    pin: int | str


def check_id(value: str, option: str) -> str:
    if not _ID.fullmatch(value) or len(value) > MAX_ID:
        raise InstallError(
            f"{option} {value!r}: use lowercase letters, digits and '-', starting with a "
            f"letter or digit, at most {MAX_ID} characters"
        )
    return value


def check_agent(agent: str) -> str:
    check_id(agent, "--agent")
    if agent in SERVICE_USERS:
        raise InstallError(f"--agent {agent!r} is the broker user of a service, not an agent")
    return agent


def _pin(text: str, option: str) -> int | str:
    if not _PIN.fullmatch(text):
        raise InstallError(
            f"{option}: pin {text!r} is not a BCM number (17) or a gpiozero pin name (GPIO17)"
        )
    return int(text) if text.isdigit() else text


def parse_door(spec: str) -> DoorSpec:
    """`ID=OUTER,INNER` or `ID=OUTER,INNER,invert` (beams mounted the other way round)."""
    door, sep, pins = spec.partition("=")
    parts = pins.split(",")
    option = f"--door {spec}"
    if not sep or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "invert"):
        raise InstallError(
            f"{option}: expected ID=OUTER_PIN,INNER_PIN[,invert] (library-main=17,27)"
        )
    check_id(door, option + ": door id")
    return DoorSpec(door, _pin(parts[0], option), _pin(parts[1], option), len(parts) == 3)


def parse_presence(spec: str) -> PresenceSpec:
    """`ID=PIN`."""
    sensor, sep, pin = spec.partition("=")
    option = f"--presence {spec}"
    if not sep:
        raise InstallError(f"{option}: expected ID=PIN (study-room-2=24)")
    check_id(sensor, option + ": sensor id")
    return PresenceSpec(sensor, _pin(pin, option))


def parse_broker(spec: str, port: int | None = None) -> tuple[str, int]:
    """`HOST`, `HOST:PORT` or `[IPv6]:PORT`; the port defaults to `port`, else 8883."""
    host, port_text = spec, ""
    if spec.startswith("["):
        host, _, rest = spec.partition("]")
        host += "]"
        port_text = rest.removeprefix(":") if rest.startswith(":") else rest
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
    if not _HOST.fullmatch(host):
        raise InstallError(f"--broker {spec!r}: expected HOST or HOST:PORT (mqtt.example.net:8883)")
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise InstallError(f"--broker {spec!r}: the port must be 1..65535")
        if port is not None and int(port_text) != port:
            raise InstallError(f"--broker {spec!r} and --port {port} disagree")
        port = int(port_text)
    return host.strip("[]"), port if port is not None else TLS_PORT


def find_site(sites_dir: Path, site_id: str) -> Site:
    check_id(site_id, "--site")
    files = {p.stem: p for p in site_files(sites_dir) if p.is_file()}
    if site_id not in files:
        known = ", ".join(files) or "none"
        raise InstallError(
            f"--site {site_id!r}: no site file {sites_dir / (site_id + '.yaml')} "
            f"(sites in {sites_dir}: {known})"
        )
    try:
        site = load_site(files[site_id])
    except SiteError as exc:
        raise InstallError(f"--site {site_id!r}: {exc}") from None
    if site.site != site_id:
        raise InstallError(
            f"--site {site_id!r}: {files[site_id]} is site {site.site!r} (its `site:` field)"
        )
    return site


def check_against_site(site: Site, doors: list[DoorSpec], presence: list[PresenceSpec]) -> None:
    if not doors and not presence:
        raise InstallError(
            "give the doors (--door ID=OUTER,INNER) and presence sensors (--presence ID=PIN) "
            f"this Pi serves; site {site.site}: doors {', '.join(d.id for d in site.doors)}"
            + (
                f"; presence sensors {', '.join(p.id for p in site.presence)}"
                if site.presence
                else ""
            )
        )
    known_doors = [d.id for d in site.doors]
    known_sensors = [p.id for p in site.presence]
    for d in doors:
        if d.id not in known_doors:
            raise InstallError(
                f"--door {d.id}: site {site.site} has no door {d.id!r} "
                f"(its doors: {', '.join(known_doors) or 'none'})"
            )
    for p in presence:
        if p.id not in known_sensors:
            raise InstallError(
                f"--presence {p.id}: site {site.site} has no presence sensor {p.id!r} "
                f"(its sensors: {', '.join(known_sensors) or 'none'})"
            )
    for what, ids in (("--door", [d.id for d in doors]), ("--presence", [p.id for p in presence])):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise InstallError(f"{what} {twice[0]} is given twice")


def _toml(value: int | str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a TOML basic string for these characters


def _set(text: str, pattern: str, line: str) -> str:
    new, count = re.subn(pattern, line.replace("\\", "\\\\"), text, flags=re.M)
    if count != 1:
        raise InstallError(f"the example configuration has changed shape: cannot set {line!r}")
    return new


def render(
    example: str,
    site: Site,
    agent: str,
    host: str,
    port: int,
    tls: bool,
    doors: list[DoorSpec],
    presence: list[PresenceSpec],
    ca_certs: str | None = None,
) -> str:
    """The example with these values; its [[doors]] and [[presence]] tables replaced."""
    text = example
    for pattern, line in (
        (r'^site = ".*"$', f"site = {_toml(site.site)}"),
        (r'^agent = ".*"$', f"agent = {_toml(agent)}"),
        (r'^host = ".*"$', f"host = {_toml(host)}"),
        (r"^port = [0-9]+$", f"port = {port}"),
        (r'^username = ".*"$', f"username = {_toml(agent)}"),
        (r"^tls = (true|false)$", f"tls = {_toml(tls)}"),
    ):
        text = _set(text, pattern, line)
    if ca_certs is not None:
        text = _set(text, r'^# *ca_certs = ".*"$', f"ca_certs = {_toml(ca_certs)}")
    lines = text.splitlines()
    if "[[doors]]" not in lines:
        raise InstallError("the example configuration has changed shape: no [[doors]] table")
    cut = lines.index("[[doors]]")
    while cut > 0 and lines[cut - 1].startswith("#"):
        cut -= 1  # keep the comment that explains the door tables
    head, doc = lines[:cut], []
    while lines[cut].startswith("#"):
        doc.append(lines[cut])
        cut += 1
    out = [
        lines[0],
        f"# Written by deploy/edge/install.sh for agent {agent} of site {site.site}; its door and",
        f"# sensor ids are checked against the site file ({site.site}.yaml).",
        *head[1:],
        *doc,
    ]
    for d in doors:
        door = site.door(d.id)
        out += [
            f"# {d.id}: from {door.outside or 'outside the site'} into {door.inside}",
            "[[doors]]",
            f"id = {_toml(d.id)}",
            f"outer_pin = {_toml(d.outer)}",
            f"inner_pin = {_toml(d.inner)}",
            "# true if the beams were mounted the other way round: swaps in and out.",
            f"invert = {_toml(d.invert)}",
            "pull_up = true",
            'blocked_when = "high"',
            "",
        ]
    if presence:
        out += ["# One [[presence]] table per presence sensor (PIR or mmWave OUT pin)."]
    for p in presence:
        out += [
            f"# {p.id}: in {site.sensor(p.id).zone}",
            "[[presence]]",
            f"id = {_toml(p.id)}",
            f"pin = {_toml(p.pin)}",
            "hold_s = 120.0",
            "pull_up = false",
            'active_when = "high"',
            "",
        ]
    return "\n".join(out).rstrip("\n") + "\n"


def validate_rendered(text: str) -> None:
    """The agent's own loader must take the result (pins used twice, bad pin names)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "edge.toml"
        path.write_text(text)
        try:
            load_config_here(path)
        except ConfigError as exc:
            lines = str(exc).replace(f"{path}: ", "").splitlines()
            raise InstallError(
                "the configuration would not load: " + "; ".join(x.strip() for x in lines)
            ) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m footfall_edge.install_config",
        description="Write an edge.toml for one agent, checked against its site file.",
    )
    p.add_argument("--example", type=Path, required=True, help="edge.example.toml")
    p.add_argument("--sites-dir", type=Path, required=True, help="the folder of SITE.yaml files")
    p.add_argument("--site", required=True, help="the site id (a SITE.yaml in --sites-dir)")
    p.add_argument("--agent", required=True, help="this Pi's agent id, also its MQTT username")
    p.add_argument("--broker", required=True, help=f"HOST or HOST:PORT (default port {TLS_PORT})")
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--tls", action="store_true", default=None, help="TLS on")
    tls.add_argument("--no-tls", dest="tls", action="store_false", help="TLS off")
    p.add_argument("--ca-certs", help="where the Pi keeps the broker's CA certificate")
    p.add_argument(
        "--door",
        action="append",
        default=[],
        metavar="ID=OUTER,INNER[,invert]",
        help="a door of the site this Pi serves, with its beams' pins (repeatable)",
    )
    p.add_argument(
        "--presence",
        action="append",
        default=[],
        metavar="ID=PIN",
        help="a presence sensor of the site this Pi reads (repeatable)",
    )
    p.add_argument("--out", type=Path, help="write here instead of standard output")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        agent = check_agent(args.agent)
        site = find_site(args.sites_dir, args.site)
        host, port = parse_broker(args.broker)
        tls = args.tls if args.tls is not None else port == TLS_PORT
        if args.ca_certs and not tls:
            raise InstallError("--ca-certs needs TLS (--tls, or the broker's port 8883)")
        doors = [parse_door(s) for s in args.door]
        presence = [parse_presence(s) for s in args.presence]
        check_against_site(site, doors, presence)
        try:
            example = args.example.read_text()
        except OSError as exc:
            raise InstallError(f"--example {args.example}: {exc.strerror}") from None
        text = render(example, site, agent, host, port, tls, doors, presence, args.ca_certs)
        validate_rendered(text)
    except InstallError as exc:
        print(f"install: {exc}", file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
