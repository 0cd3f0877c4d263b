"""What an operator meets around footfall-web: `hash-password` from a script or a
terminal, and a board under many requests at once (InfluxDB connections reused, no
"Connection pool is full" warnings)."""

from __future__ import annotations

import logging
import os
import pty
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from footfall_contract.timefmt import format_ts
from footfall_sim.localservices import Influx, Mosquitto
from footfall_web.app import THREADS
from footfall_web.auth import verify_password
from tests.support.web import ALWAYS_OPEN, seed_occupancy, site_with_hours, web_server, web_settings

SITE = site_with_hours(ALWAYS_OPEN)


def hash_password_cli(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "footfall_web.cli", "hash-password", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hash_password_reads_piped_input_without_a_traceback() -> None:
    for args in ((), ("--stdin",)):
        r = hash_password_cli(*args, stdin="correct horse battery\n")
        assert r.returncode == 0, r.stderr
        assert verify_password("correct horse battery", r.stdout.strip())
        assert r.stderr == ""
    # Only the first line is the password; CRLF from a Windows file is not part of it.
    r = hash_password_cli(stdin="tr0ub4dor&3 x\r\nsecond line\n")
    assert r.returncode == 0 and verify_password("tr0ub4dor&3 x", r.stdout.strip())


@pytest.mark.parametrize("stdin", ["", "\n", "\r\n"])
def test_hash_password_names_empty_input(stdin: str) -> None:
    for args in ((), ("--stdin",)):
        r = hash_password_cli(*args, stdin=stdin)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.startswith("footfall-web: no password on standard input"), r.stderr
        assert "Traceback" not in r.stderr


def test_hash_password_too_short_from_a_pipe() -> None:
    r = hash_password_cli(stdin="short\n")
    assert r.returncode == 2 and "shorter than 8 characters" in r.stderr


def _on_terminal(*answers: bytes) -> tuple[int, str, str]:
    """hash-password with a pseudo-terminal as its standard input: each answer is typed
    once its prompt is on standard error (getpass flushes what was typed before)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "footfall_web.cli", "hash-password"],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # no controlling terminal: getpass uses standard input
    )
    assert proc.stderr is not None and proc.stdout is not None
    err = b""
    try:
        for prompt, answer in zip((b"Password: ", b"Again: "), answers, strict=False):
            deadline = time.monotonic() + 30
            while not err.endswith(prompt):
                assert time.monotonic() < deadline, err
                chunk = os.read(proc.stderr.fileno(), 1024)
                assert chunk, err
                err += chunk
            time.sleep(0.1)  # past getpass's flush of the terminal's input
            os.write(leader, answer)
        out = proc.stdout.read().decode()
        err += proc.stderr.read()
        return proc.wait(30), out, err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        os.close(follower)
        os.close(leader)


def test_hash_password_at_a_terminal_asks_twice() -> None:
    rc, out, err = _on_terminal(b"correct horse battery\n", b"correct horse battery\n")
    assert rc == 0, err
    assert verify_password("correct horse battery", out.strip())
    rc, out, err = _on_terminal(b"correct horse battery\n", b"correct horse battery!\n")
    assert rc == 2 and out == "" and "the passwords differ" in err
    rc, out, err = _on_terminal(b"correct horse battery\n", b"\x04")  # Ctrl-D
    assert rc == 2 and out == "" and "no password given" in err and "Traceback" not in err


@pytest.mark.services
def test_many_requests_at_once_reuse_influx_connections(
    mosquitto: Mosquitto, influx: Influx, caplog: pytest.LogCaptureFixture
) -> None:
    """More concurrent history requests than the board has threads: every one answers
    the seeded truth and urllib3 never discards a connection."""
    start = time.time() - 3 * 3600
    start -= start % 3600
    # one point every 5 minutes for 2 hours, the count rising by 3: the highest is 69
    seeded = [(start + 600 + k * 300, 3 * k) for k in range(24)]
    seed_occupancy(influx.url, SITE, "library", seeded)
    frm, to = format_ts(int(start * 1000)), format_ts(int((start + 3 * 3600) * 1000))
    url = f"/api/v1/sites/{SITE.site}/zones/library/history?from={frm}&to={to}&every=1h"
    caplog.set_level(logging.WARNING, logger="urllib3")
    with web_server(web_settings(mosquitto.port, influx.url), [SITE]) as web:
        assert web.web.influx._http.connection_pool_kw["maxsize"] == THREADS  # type: ignore[attr-defined]

        def get(_: int) -> tuple[int, list[int | None]]:
            r = httpx.get(web.url + url, timeout=60)
            return r.status_code, [p["max"] for p in r.json()["points"]]

        with ThreadPoolExecutor(THREADS + 20) as pool:
            answers = list(pool.map(get, range(3 * THREADS)))
    # Truth by hand: point k is at start + 10 min + 5 k min, so the first hour holds
    # k = 0..9 (highest 27), the second k = 10..21 (63) and the third k = 22, 23 (69).
    assert answers == [(200, [27, 63, 69])] * (3 * THREADS), answers[:3]
    full = [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()]
    assert full == []
