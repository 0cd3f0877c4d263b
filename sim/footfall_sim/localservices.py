"""Real local services for the demo, the tests and the benchmarks: Mosquitto and InfluxDB
started as the current user on loopback ports with their data in a given folder. The one
place that knows how to start, stop, kill and restart them, so that every user of a local
broker or database gets the same configuration; `deploy/dev/services.sh` runs `main()`
below. Standard library only (no test framework): it ships in footfall_sim, which every
install has."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout_s: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(port, host):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s} s")


def find_binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"{name} is not installed: run deploy/dev/setup.sh")


class Service:
    """A child process with a port; start/stop/kill/restart keep the same port."""

    name = "service"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._may_move = port is None
        """Ports chosen here may change until the first start succeeds: another process
        can take a free port between `free_port()` and the service's bind."""

    def choose_ports(self) -> None:
        self.port = free_port()

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout_s: float = 15.0) -> None:
        """Started and answering; a port of its own choosing that another process took
        meanwhile is chosen again (twice at most), a port given to it is kept."""
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} already running"
        for attempt in range(3):
            last = attempt == 2 or not self._may_move
            if port_open(self.port):
                if last:
                    raise RuntimeError(f"{self.name}: port {self.port} is already in use")
                self.choose_ports()
                continue
            out = self.workdir / f"{self.name}.out"
            seen = out.stat().st_size if out.exists() else 0
            with open(out, "ab") as log:
                self.proc = subprocess.Popen(
                    self.command(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.workdir,
                    start_new_session=True,
                )
            (self.workdir / f"{self.name}.pid").write_text(str(self.proc.pid))
            try:
                self.wait_ready(timeout_s)
            except TimeoutError:
                self.kill()
                with open(out, "rb") as log:
                    log.seek(seen)
                    taken = b"address already in use" in log.read().lower()
                if last or not taken:
                    raise
                self.choose_ports()
                continue
            self._may_move = False
            return

    def wait_ready(self, timeout_s: float) -> None:
        wait_port(self.port, timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Mosquitto(Service):
    name = "mosquitto"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra_config: str = "",
        anonymous: bool = True,
    ) -> None:
        super().__init__(workdir, port)
        self.extra_config = extra_config
        self.anonymous = anonymous

    def command(self) -> list[str]:
        conf = self.workdir / "mosquitto.conf"
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
            "persistence true",
            f"persistence_location {data}/",
            "autosave_interval 1",
            "max_queued_messages 1000000",
            "max_inflight_messages 100",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise it drops to 'mosquitto' and cannot write here
        conf.write_text("\n".join(lines) + "\n" + self.extra_config + "\n")
        return [find_binary("mosquitto"), "-c", str(conf)]


class Influx(Service):
    """InfluxDB 1.x (`influxd`): HTTP on `port`, everything else bound to loopback."""

    name = "influxd"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.rpc_port = free_port()

    def choose_ports(self) -> None:
        super().choose_ports()
        self.rpc_port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        conf = self.workdir / "influxdb.conf"
        d = self.workdir
        conf.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[logging]
  level = "warn"
"""
        )
        return [find_binary("influxd"), "run", "-config", str(conf)]

    def wait_ready(self, timeout_s: float) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=0.5) as r:
                    if r.status == 204:
                        return
            except OSError:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise TimeoutError(f"influxd did not answer /ping on {self.url}")


# -- `deploy/dev/services.sh start|stop|status`: long-lived instances for the demo ---------


def _pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="services.sh", description="local Mosquitto and InfluxDB")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--dir", type=Path, default=Path("var/services"))
    p.add_argument("--mqtt-port", type=int, default=18830)
    p.add_argument("--influx-port", type=int, default=18086)
    args = p.parse_args(argv)
    services: list[Service] = [
        Mosquitto(args.dir.resolve() / "mosquitto", args.mqtt_port),
        Influx(args.dir.resolve() / "influxdb", args.influx_port),
    ]
    rc = 0
    for svc in services:
        pid_file = svc.workdir / f"{svc.name}.pid"
        pid = _pid_alive(pid_file)
        if args.action == "start":
            if pid:
                print(f"{svc.name}: already running (pid {pid}, port {svc.port})")
                continue
            svc.start()
            pid = svc.proc.pid if svc.proc else None
            print(f"{svc.name}: started on 127.0.0.1:{svc.port} (pid {pid}, data in {svc.workdir})")
        elif args.action == "stop":
            if not pid:
                print(f"{svc.name}: not running")
                continue
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not _pid_alive(pid_file):
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
            pid_file.unlink(missing_ok=True)
            print(f"{svc.name}: stopped")
        else:
            print(f"{svc.name}: " + (f"running (pid {pid}, port {svc.port})" if pid else "stopped"))
            rc = rc or (0 if pid else 3)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
