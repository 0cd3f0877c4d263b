"""Receivers against real servers on loopback: SMTP with STARTTLS and login, webhooks in
the generic, Slack and Teams shapes, and which failures are retried."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from footfall_alerts.receivers import Refused, Retryable, smtp
from footfall_alerts.receivers.webhook import WebhookSender
from footfall_alerts.rules import WebhookReceiver
from footfall_runtime.smtp import SmtpSettings
from footfall_sim.localservices import free_port
from tests.alerts.sinks import SmtpSink, WebhookSink
from tests.support.broker_users import MOSQUITTO_DIR

NOTIFICATION: dict[str, Any] = {
    "site": "test-site",
    "site_name": "Test Service Centre",
    "receiver": "r",
    "rule": "pi-offline",
    "event": "firing",
    "ts_ms": 1_795_000_000_000,
    "link": "https://grafana.example.org/d/footfall",
    "alerts": [
        {
            "id": f"pi-offline-pi-{i}",
            "rule": "pi-offline",
            "kind": "agent_offline",
            "severity": "warning",
            "state": "firing",
            "scope": {"agent": f"pi-{i}"},
            "summary": f"Sensor pi-{i} offline",
            "started": "2026-11-24T08:00:00.000Z",
            "ts": "2026-11-24T08:05:00.000Z",
            "value": 1.0,
            "acknowledged_by": None,
            "silenced_until": None,
        }
        for i in (1, 2)
    ],
}


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    out = tmp_path / "tls"
    subprocess.run(
        [MOSQUITTO_DIR / "make-certs", "--host", "127.0.0.1", "--out", out],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


def test_smtp_starttls_with_login(tls_dir: Path) -> None:
    server = SmtpSink(tls_dir, credentials=("alerts", "s3cret"))
    server.start()
    try:
        settings = SmtpSettings(
            host="127.0.0.1",
            port=server.port,
            security="starttls",
            username="alerts",
            password="s3cret",
            sender="footfall@example.org",
            ca_certs=tls_dir / "ca.crt",
        )
        smtp.send(settings, ["a@example.org", "b@example.org"], NOTIFICATION, "test-site-7")
        assert server.subjects() == ["[test-site] FIRING: 2 × agent offline (pi-offline)"]
        (msg,) = server.messages
        assert msg["Message-ID"] == "<test-site-7@footfall-alerts>"
        assert server.recipients == [["a@example.org", "b@example.org"]]
        body = server.bodies()[0]
        assert "Sensor pi-1 offline" in body and "Sensor pi-2 offline" in body
        assert "https://grafana.example.org/d/footfall" in body
        wrong = settings.model_copy(update={"password": None})
        with pytest.raises(Retryable, match="login refused"):
            smtp.send(wrong, ["a@example.org"], NOTIFICATION, "k")
        untrusted = settings.model_copy(update={"ca_certs": None})
        with pytest.raises(Retryable, match="CERTIFICATE_VERIFY_FAILED"):
            smtp.send(untrusted, ["a@example.org"], NOTIFICATION, "k")
    finally:
        server.stop()


# aiosmtpd counts only STARTTLS as TLS for its AUTH check; this connection is TLS from
# the first byte.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_implicit_tls_with_login(tls_dir: Path) -> None:
    server = SmtpSink(tls_dir, credentials=("alerts", "s3cret"), implicit_tls=True)
    server.start()
    try:
        settings = SmtpSettings(
            host="127.0.0.1",
            port=server.port,
            security="tls",
            username="alerts",
            password="s3cret",
            ca_certs=tls_dir / "ca.crt",
        )
        smtp.send(settings, ["a@example.org"], NOTIFICATION, "test-site-8")
        assert server.subjects() == ["[test-site] FIRING: 2 × agent offline (pi-offline)"]
    finally:
        server.stop()


def test_smtp_server_away_is_retryable() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), security="none", timeout_s=2)
    with pytest.raises(Retryable, match="Connection refused"):
        smtp.send(settings, ["a@example.org"], NOTIFICATION, "k")


def test_webhook_formats(hook: WebhookSink) -> None:
    sender = WebhookSender()
    try:
        for fmt in ("json", "slack", "teams"):
            receiver = WebhookReceiver(
                type="webhook", url=hook.url(f"/{fmt}"), format=fmt, headers={"X-Token": "t"}
            )
            sender.send(receiver, NOTIFICATION, "test-site-9")
        generic, slack, teams = (hook.bodies(f"/{f}")[0] for f in ("json", "slack", "teams"))
        assert generic["event"] == "firing" and len(generic["alerts"]) == 2
        assert generic["alerts"][0]["id"] == "pi-offline-pi-1"
        assert slack["text"].endswith("[test-site] FIRING: 2 × agent offline (pi-offline)")
        assert "Sensor pi-2 offline" in slack["blocks"][0]["text"]["text"]
        card = teams["attachments"][0]
        assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
        texts = [b["text"] for b in card["content"]["body"]]
        assert texts[0] == "[test-site] FIRING: 2 × agent offline (pi-offline)"
        assert any("Sensor pi-1 offline" in t for t in texts)
        _, headers, _ = hook.requests[0]
        assert headers["Idempotency-Key"] == "test-site-9" and headers["X-Token"] == "t"

        receiver = WebhookReceiver(type="webhook", url=hook.url())
        hook.status = 503
        with pytest.raises(Retryable, match="503"):
            sender.send(receiver, NOTIFICATION, "k")
        hook.status = 400
        with pytest.raises(Refused, match="400"):
            sender.send(receiver, NOTIFICATION, "k")
        gone = WebhookReceiver(type="webhook", url=f"http://127.0.0.1:{free_port()}/x")
        with pytest.raises(Retryable, match="unreachable"):
            sender.send(gone, NOTIFICATION, "k")
    finally:
        sender.close()
