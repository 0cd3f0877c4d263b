"""Fixtures: simulated GPIO through gpiozero's MockFactory, real services on loopback
(footfall_sim.localservices) and Debian's Chromium (tests/support/browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from footfall_sim.localservices import Influx, Mosquitto
from tests.support.browser import browser  # noqa: F401  (the session's Chromium)
from tests.support.ci_skips import (  # noqa: F401  (hooks: under CI a missing tool fails)
    pytest_make_collect_report,
    pytest_runtest_makereport,
)


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    """gpiozero's sanctioned stand-in for the Pi's pins."""
    factory = MockFactory()
    previous = Device.pin_factory
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto on a free loopback port, its data in this test's folder."""
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[Influx]:
    """A real InfluxDB 1.x on a free loopback port, its data in this test's folder."""
    server = Influx(tmp_path / "influxdb")
    server.start()
    try:
        yield server
    finally:
        server.kill()
