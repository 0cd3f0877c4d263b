"""The alerts tests' real local receivers: an SMTP server (aiosmtpd) and an HTTP server
for webhooks (tests/alerts/sinks.py), one of each per test that asks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.alerts.sinks import SmtpSink, WebhookSink


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def hook() -> Iterator[WebhookSink]:
    sink = WebhookSink()
    yield sink
    sink.close()
