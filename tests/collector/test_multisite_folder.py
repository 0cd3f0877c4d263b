"""footfall_contract.sitefolder: what each scan of a sites folder serves and reports."""

from __future__ import annotations

from pathlib import Path

from footfall_contract.shards import parse_shard, shard_of
from footfall_contract.sitefolder import SiteFolder
from tests.support.collector import SITE_YAML


def site_text(site: str, capacity: int = 600) -> str:
    return SITE_YAML.replace("site: test-site", f"site: {site}").replace(
        "capacity: 600", f"capacity: {capacity}"
    )


def test_added_changed_broken_duplicated_removed(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(site_text("a"))
    (tmp_path / "b.yaml").write_text(site_text("b"))
    (tmp_path / "a.alerts.yaml").write_text("not: a site")  # a companion, not read
    folder = SiteFolder(tmp_path)
    scan = folder.scan()
    assert sorted(scan.sites) == ["a", "b"] and scan.added == ["a", "b"] and not scan.errors

    (tmp_path / "a.yaml").write_text(site_text("a", 700))  # changed
    (tmp_path / "b.yaml").write_text(site_text("b").replace("inside: kela}", "inside: x}"))
    scan = folder.scan()
    assert scan.changed == ["a"] and not scan.added and not scan.removed
    line = site_text("b").splitlines().index("  - {id: kela-door, outside: centre, inside: kela}")
    assert next(iter(scan.new_errors.values())).startswith(f"{tmp_path / 'b.yaml'}:{line + 1}: ")
    assert scan.sites["b"][1].zone("centre").capacity == 600  # the last good version
    assert folder.scan().new_errors == {}  # reported once

    (tmp_path / "c.yaml").write_text(site_text("a"))  # a second file for site a
    scan = folder.scan()
    assert set(scan.new_errors) == {tmp_path / "a.yaml", tmp_path / "c.yaml"}
    assert scan.sites["a"][1].zone("centre").capacity == 700 and not scan.changes

    (tmp_path / "c.yaml").unlink()
    (tmp_path / "b.yaml").unlink()
    (tmp_path / "new.yaml").write_text("site: [")  # new and broken: not served
    scan = folder.scan()
    assert scan.removed == ["b"] and sorted(scan.sites) == ["a"]
    assert set(scan.errors) == {tmp_path / "new.yaml"}


def test_shard_and_only(tmp_path: Path) -> None:
    ids = [f"s{i}" for i in range(8)]
    for i in ids:
        (tmp_path / f"{i}.yaml").write_text(site_text(i))
    one, two = (SiteFolder(tmp_path, parse_shard(f"{k}/2")).scan() for k in (1, 2))
    assert sorted([*one.sites, *two.sites]) == ids and not set(one.sites) & set(two.sites)
    assert all(shard_of(i, 2) == 1 for i in one.sites)
    only = SiteFolder(tmp_path, only=["s1", "s3", "zz"]).scan()
    assert sorted(only.sites) == ["s1", "s3"] and only.missing == ["zz"]
