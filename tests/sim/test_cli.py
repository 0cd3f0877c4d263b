"""`footfall-sim` command line: bad input exits 2 with the reason; a dry run simulates
and counts without services."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from footfall_contract.site import load_site
from footfall_sim import cli

SITES = Path(__file__).parents[2] / "deploy" / "sites"
KALAJARVI = str(SITES / "kalajarvi.yaml")


def today() -> dt.date:
    return dt.datetime.now(load_site(KALAJARVI).tz).date()


def test_dry_run_of_a_past_day(capsys: pytest.CaptureFixture[str]) -> None:
    day = today() - dt.timedelta(days=3)
    assert cli.main(["--site", KALAJARVI, "--day", day.isoformat(), "--dry-run"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["site"] == "kalajarvi" and summary["mode"] == "accelerated"
    doors = {d.id for d in load_site(KALAJARVI).doors}
    assert set(summary["true"]) == set(summary["detected"]) == doors
    if summary["visits"]:  # a Sunday is closed
        assert summary["accuracy"] > 0.98
        assert "visits" in captured.err
    # Same seed, same day: the same crowd.
    cli.main(["--site", KALAJARVI, "--day", day.isoformat(), "--dry-run"])
    assert json.loads(capsys.readouterr().out)["true"] == summary["true"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--site", "no/such/site.yaml"], "no such site file"),
        (["--day", "+5"], "in the future"),
        (["--day", "-450"], "older than the raw retention"),
        (["--backfill", "450"], "at most"),
        (["--mode", "realtime", "--day", "-1"], "only be today"),
        (["--agents", "single", "--site", "BIG", "--ignore-hours"], "--agents door"),
    ],
)
def test_bad_input_exits_2(
    args: list[str], reason: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if "--day" in args:
        i = args.index("--day") + 1
        args[i] = (today() + dt.timedelta(days=int(args[i]))).isoformat()
    if "BIG" in args:  # more doors than one mock Pi has pins for
        doors = "".join(f"  - {{id: d{i}, outside: null, inside: hall}}\n" for i in range(14))
        big = tmp_path / "big.yaml"
        big.write_text(
            "site: big\nname: Big\ntimezone: Europe/Helsinki\n"
            f"zones:\n  - {{id: hall, name: Hall}}\ndoors:\n{doors}"
        )
        args[args.index("BIG")] = str(big)
    if "--site" not in args:
        args = ["--site", KALAJARVI, *args]
    assert cli.main(args) == 2
    assert reason in capsys.readouterr().err


@pytest.mark.parametrize(
    ("local_now", "retention", "days"),
    [
        # The oldest day's history starts at the reset (03:00) the day before it.
        (dt.datetime(2026, 12, 1, 12, 0), "400d", 398),
        (dt.datetime(2026, 12, 1, 2, 0), "400d", 399),
        (dt.datetime(2026, 12, 1, 12, 0), "10d", 8),
        (dt.datetime(2026, 12, 1, 12, 0), "72h", 1),
        (dt.datetime(2026, 12, 1, 12, 0), "1d", 0),
        (dt.datetime(2026, 12, 1, 12, 0), "INF", None),
        (dt.datetime(2026, 12, 1, 12, 0), None, None),
    ],
)
def test_days_kept_by_the_raw_retention(
    local_now: dt.datetime, retention: str | None, days: int | None
) -> None:
    """Days before today that `--backfill` and `--day` may write: the collector accepts
    events within the raw retention, 400 days by default, and InfluxDB drops older ones."""
    site = load_site(SITES / "iso-omena.yaml")  # reset_at 03:00, Europe/Helsinki
    now_ms = int(local_now.replace(tzinfo=site.tz).timestamp() * 1000)
    assert cli.days_kept(site, now_ms, retention) == days


@pytest.mark.parametrize(
    "args",
    [["--day", "2026-13-01"], ["--speed", "-1"], ["--hours", "0"], ["--day", "x", "--hours", "1"]],
)
def test_bad_arguments_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--site", KALAJARVI, *args])
    assert exc.value.code == 2
    assert "footfall-sim: error" in capsys.readouterr().err
