"""Fixtures for the deployment tests: a password file with every kind of broker account
(agents, collector, dashboard, alerts, web), a private CA and server certificate from
deploy/mosquitto/make-certs, and a real Mosquitto running the repository's broker config
with both."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker_users import MOSQUITTO_DIR, RepoBroker, add_users

# username -> password
USERS = {
    "agent-a": "pw-agent-a",
    "agent-b": "pw-agent-b",
    "collector": "pw-collector",
    "dashboard": "pw-dashboard",
    "alerts": "pw-alerts",
    "web": "pw-web",
}


@pytest.fixture
def passwd(tmp_path: Path) -> Path:
    path = tmp_path / "passwd"
    add_users(path, USERS)
    return path


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    out = tmp_path / "tls"
    subprocess.run(
        [MOSQUITTO_DIR / "make-certs", "--host", "localhost", "--host", "127.0.0.1", "--out", out],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


@pytest.fixture
def broker(tmp_path: Path, passwd: Path, tls_dir: Path) -> Iterator[RepoBroker]:
    server = RepoBroker(tmp_path / "mosquitto", passwd, tls_dir)
    server.start()
    try:
        yield server
    finally:
        server.kill()
