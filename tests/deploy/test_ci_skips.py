"""Under CI a test skipped for a missing tool fails the run (tests/support/ci_skips.py):
a small suite run in a subprocess with and without CI=true, and every skip written in
tests/ either names what is missing in words the hook knows or is a known other reason."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.ci_skips import MISSING

REPO = Path(__file__).resolve().parents[2]

CONFTEST = """
from tests.support.ci_skips import pytest_make_collect_report, pytest_runtest_makereport
"""

SUITE = """
import pytest

@pytest.fixture
def openssl():
    pytest.skip("openssl is not installed")

def test_tool_in_body():
    pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium); never downloaded")

def test_tool_in_fixture(openssl):
    pass

@pytest.mark.skipif(True, reason="mosquitto_sub (mosquitto-clients) is not installed")
def test_tool_in_marker():
    pass

def test_module_missing():
    pytest.importorskip("no_such_module_for_footfall")

def test_other_reason():
    pytest.skip("at this hour of the day the window starts inside the retention")

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_xfail():
    assert False

def test_passes():
    pass
"""

MODULE_SKIP = """
import pytest
pytest.skip("systemd-analyze is not installed", allow_module_level=True)

def test_never_runs():
    pass
"""

MISSING_TESTS = {
    "test_tool_in_body",
    "test_tool_in_fixture",
    "test_tool_in_marker",
    "test_module_missing",
}

OTHER_SKIPS = {
    "at this hour of the day the window starts inside the retention",
    "not a git checkout",
}
"""The skips in tests/ that are not about a missing tool: they stay skips in CI."""


def run_suite(tmp_path: Path, ci: str | None, module: str = SUITE) -> dict[str, str]:
    """Outcome per test ("passed", "failed", "error", "skipped") of a test module, from
    the JUnit report, and pytest's exit status."""
    suite = tmp_path / "suite"
    shutil.rmtree(suite, ignore_errors=True)
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "test_module.py").write_text(module)
    report = tmp_path / "report.xml"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", suite,
         "-c", os.devnull, f"--junitxml={report}", str(suite)],
        cwd=suite, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).iter("testcase"):
        name = case.get("name", "")
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}.get(
            kinds[0] if kinds else "", "passed"
        )
        outcomes[name] = outcome
    outcomes["exit"] = str(proc.returncode)
    return outcomes


def test_missing_tools_fail_only_under_ci(tmp_path: Path) -> None:
    local = run_suite(tmp_path, None)
    assert local == {
        **dict.fromkeys(MISSING_TESTS, "skipped"),
        "test_other_reason": "skipped",
        "test_xfail": "skipped",  # JUnit writes an xfail as skipped
        "test_passes": "passed",
        "exit": "0",
    }
    assert run_suite(tmp_path, "false") == local
    # A whole module skipped while collecting: pytest then stops at the collection error.
    # (exit 5: no test ran)
    assert run_suite(tmp_path, None, MODULE_SKIP) == {"test_module": "skipped", "exit": "5"}
    assert run_suite(tmp_path, "true", MODULE_SKIP) == {"test_module": "error", "exit": "2"}
    for value in ("true", "1", "TRUE"):
        ci = run_suite(tmp_path, value)
        # A skip raised in a fixture is reported at setup: JUnit calls it an error.
        assert ci == {
            "test_tool_in_body": "failed",
            "test_tool_in_fixture": "error",
            "test_tool_in_marker": "error",
            "test_module_missing": "failed",
            "test_other_reason": "skipped",
            "test_xfail": "skipped",
            "test_passes": "passed",
            "exit": "1",
        }, value


def _skip_reasons() -> list[tuple[str, str]]:
    """(file:line, reason) of every pytest.skip(...) and skipif(reason=...) in tests/;
    an f-string's placeholders become "{}"."""
    found = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            texts: list[ast.expr] = []
            if node.func.attr == "skip" and node.args:
                texts = [node.args[0]]
            elif node.func.attr == "skipif":
                texts = [k.value for k in node.keywords if k.arg == "reason"]
            for text in texts:
                if isinstance(text, ast.Constant) and isinstance(text.value, str):
                    reason = text.value
                elif isinstance(text, ast.JoinedStr):
                    reason = "".join(
                        str(v.value) if isinstance(v, ast.Constant) else "{}" for v in text.values
                    )
                else:
                    continue
                found.append((f"{path.relative_to(REPO)}:{node.lineno}", reason))
    return found


def test_every_skip_in_the_suite_is_known() -> None:
    reasons = _skip_reasons()
    here = str(Path(__file__).relative_to(REPO))
    theirs = [(where, why) for where, why in reasons if not where.startswith(here)]
    tools = {why for _, why in theirs if MISSING.search(why)}
    # What the suite skips for when a tool is absent: all of it fails under CI.
    assert {"openssl is not installed", "systemd-analyze is not installed"} <= tools
    assert "mosquitto_sub (mosquitto-clients) is not installed" in tools
    assert any("chromium" in why for why in tools)
    unknown = [(where, why) for where, why in theirs if why not in tools | OTHER_SKIPS]
    assert unknown == [], "a new skip: say 'X is not installed' for a missing tool"


@pytest.mark.parametrize(
    ("package", "tool"),
    [
        ("chromium", "chromium"),
        ("openssl", "openssl"),
        ("systemd", "systemd-analyze"),
        ("mosquitto-clients", "mosquitto_sub"),
        ("mosquitto", "mosquitto"),
        ("influxdb", "influxd"),
    ],
)
def test_setup_installs_what_the_tests_need(package: str, tool: str) -> None:
    """deploy/dev/setup.sh asks apt-get for the package of every tool a test needs,
    when the tool is missing."""
    setup = (REPO / "deploy" / "dev" / "setup.sh").read_text()
    assert f"command -v {tool} " in setup and f"need+=({package})" in setup
    assert "export CI=" in (REPO / ".ci" / "run").read_text()
