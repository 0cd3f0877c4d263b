"""A pytest plugin (loaded by tests/conftest.py): under CI (`CI` set to true, as
`.ci/run` does), a test skipped because a tool or module is missing fails instead, so
that a machine without Chromium, openssl, systemd-analyze or mosquitto_sub cannot leave
whole groups of tests unrun behind a green run. deploy/dev/setup.sh installs them all.
Skips for other reasons (the hour of the day, not a git checkout) stay skips."""

from __future__ import annotations

import os
import re
from collections.abc import Generator
from typing import Any

import pytest

MISSING = re.compile(r"\bis not installed\b|\bcould not import\b|\bno module named\b", re.I)
"""What the skip reasons of tests/ say when something the tests need is absent."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason of a skip report: pytest keeps it as (path, line, "Skipped: why")."""
    longrepr: Any = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_missing(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail") or not in_ci():
        return
    reason = skip_reason(report)
    if MISSING.search(reason):
        report.outcome = "failed"
        report.longrepr = (
            f"CI is set and a test needs something missing: {reason}. "
            "Install it (deploy/dev/setup.sh does) rather than skip in CI."
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    _fail_missing(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    """Module-level skips and importorskip() happen while collecting."""
    outcome = yield
    _fail_missing(outcome.get_result())
