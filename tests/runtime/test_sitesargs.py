"""The flags that choose which sites a server program serves, fed wrong to the three
programs that take them (footfall_runtime.sitesargs): each refused alike, with exit 2 and
a line naming the flag, before anything connects or is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from footfall_alerts.cli import main as alerts_main
from footfall_collector.cli import main as collector_main
from footfall_web.cli import main as web_main

ROOT = Path(__file__).resolve().parents[2]
SITES = ROOT / "deploy" / "sites"
PROGRAMS: dict[str, Callable[[list[str]], int]] = {
    "footfall-collector": collector_main,
    "footfall-alerts": alerts_main,
    "footfall-web": web_main,
}


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--site", str(SITES / "iso-omena.yaml"), "--shard", "1/2"],
            "--shard and --only go with --sites-dir, not --site",
        ),
        (
            ["--site", str(SITES / "iso-omena.yaml"), "--only", "iso-omena"],
            "--shard and --only go with --sites-dir, not --site",
        ),
        (
            ["--sites-dir", str(SITES), "--shard", "3/2"],
            "--shard: shard '3/2': K must be at most N (there are 2 shards)",
        ),
        (
            ["--sites-dir", str(SITES), "--shard", "two"],
            "--shard: shard 'two' must be K/N, e.g. 2/4",
        ),
        (["--sites-dir", str(SITES), "--only", " , "], "--only names no site"),
        (["--sites-dir", "/nonexistent/sites"], "/nonexistent/sites: no such sites folder"),
    ],
)
def test_bad_site_flags_are_refused_by_name(
    program: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert PROGRAMS[program](["run", *args]) == 2
    err = capsys.readouterr().err
    assert f"{program}: " in err and message in err, err


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--site", str(SITES / "iso-omena.yaml"), "--site", str(SITES / "kalajarvi.yaml")],
            "--site is given twice: it takes one; for several sites put their files in one "
            "folder and give --sites-dir",
        ),
        (
            ["--sites-dir", str(SITES), "--sites-dir", str(SITES)],
            "--sites-dir is given twice",
        ),
        (
            ["--site", str(SITES / "iso-omena.yaml"), "--sites-dir", str(SITES)],
            "argument --sites-dir: not allowed with argument --site",
        ),
        ([], "one of the arguments --site --sites-dir is required"),
    ],
)
def test_site_flag_combinations_are_refused_alike(
    program: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second --site (footfall-web once took several) would silently replace the first."""
    with pytest.raises(SystemExit) as exited:
        PROGRAMS[program](["run", *args])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{program} run: error: " in err and message in err, err
