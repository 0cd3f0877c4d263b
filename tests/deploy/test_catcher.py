"""The demo's stand-ins for the mail server and the chat webhook (deploy/dev/catcher.py):
what the alerts send is printed, and Ctrl-C ends it at once. Its stop once hung the
demo for 20 s: a Python signal handler that set a threading.Event deadlocked on the lock
the main thread held inside Event.wait. It now takes its signals with sigwait."""

from __future__ import annotations

import json
import signal
import smtplib
import subprocess
import sys
import time
import urllib.request
from email.message import EmailMessage
from pathlib import Path

from footfall_sim.localservices import free_port, wait_port

CATCHER = Path(__file__).resolve().parents[2] / "deploy/dev/catcher.py"


def start_catcher() -> tuple[subprocess.Popen[str], int, int]:
    smtp_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(CATCHER),
            "--smtp-port",
            str(smtp_port),
            "--http-port",
            str(http_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("catching e-mail on 127.0.0.1:"), first
    wait_port(http_port)
    return proc, smtp_port, http_port


def test_the_catcher_prints_what_it_is_sent_and_stops_on_ctrl_c() -> None:
    proc, smtp_port, http_port = start_catcher()
    try:
        mail = EmailMessage()
        mail["Subject"] = "Library: 212 people, over capacity"
        mail["From"], mail["To"] = "footfall@example.org", "facilities@example.org"
        mail.set_content("since 10:18 (Europe/Helsinki)")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.send_message(mail)
        body = json.dumps({"text": "Library: over capacity"}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/hook", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "e-mail to facilities@example.org: Library: 212 people, over capacity" in out
    assert "since 10:18 (Europe/Helsinki)" in out
    assert "webhook /hook" in out and '"Library: over capacity"' in out


def test_a_burst_of_signals_stops_the_catcher_at_once() -> None:
    """The demo's stop: Ctrl-C reaches the whole process group, then the script's
    SIGTERM follows; neither may hang it, whenever they land."""
    for _ in range(4):
        proc, _, _ = start_catcher()
        try:
            t0 = time.monotonic()
            for _ in range(20):
                proc.send_signal(signal.SIGINT)
                proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=10)
            assert proc.returncode == 0
            assert time.monotonic() - t0 < 5
        finally:
            proc.kill()
