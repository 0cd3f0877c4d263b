"""Fixtures of the report tests: one InfluxDB with the CLI tests' known data for the
whole package run (started only when a test asks for it), and the settings that point
footfall-report at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.report.cli_world import World, running_world


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("report")) as w:
        yield w


@pytest.fixture
def report_env(world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """footfall-report's settings: that InfluxDB, and a state folder of the test's own."""
    monkeypatch.setenv("FOOTFALL_INFLUX__URL", world.url)
    monkeypatch.setenv("FOOTFALL_STATE_DIR", str(tmp_path / "state"))
