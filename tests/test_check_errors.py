"""dfsbuild check: every error of every layout in one run, unknown keys first with the
likeliest key, partitions named, and --json as a list of objects."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

BAD = """schema = 1
[image.a]
tpye = "romfs"
tree = "."
[image.b]
type = "romfs"
tre = "."
[disks]
table = "mbr"
"""

BAD2 = """schema = 1
[image.a]
type = "romfs"
tree = "."
[disk]
table = "mbr"
[[disk.partition]]
name = "rootfs"
image = "a"
size = "1x"
[[disk.partition]]
name = "two"
"""

GOOD = """schema = 1
[image.a]
type = "romfs"
tree = "."
files."x" = { file = "good.toml", mode = "0600" }
"""


def _layouts(tmp_path: Path) -> list[str]:
    for name, text in (("bad", BAD), ("bad2", BAD2), ("good", GOOD)):
        (tmp_path / f"{name}.toml").write_text(text)
    return [str(tmp_path / f"{n}.toml") for n in ("bad", "bad2", "good")]


def test_check_reports_every_error_of_every_layout(tmp_path: Path) -> None:
    proc = run_cli("check", *_layouts(tmp_path), check=False)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 5, proc.stderr
    text = proc.stderr
    assert "bad.toml: disks: unknown key" in text and "did you mean 'disk'?" in text
    # The misspelt key comes before the "type is required" it causes.
    assert "image.a.tpye: unknown key" in text and "did you mean 'type'?" in text
    assert "image.b.tre: unknown key" in text and "did you mean 'tree'?" in text
    assert "disk.partition[0].size (rootfs): '1x': unknown unit 'x'" in text
    assert "disk.partition[1].size (two): is required" in text
    assert "5 errors in 2 layouts" in text


def test_check_json_lists_errors_and_warnings(tmp_path: Path) -> None:
    paths = _layouts(tmp_path)
    proc = run_cli("check", "--json", *paths, check=False)
    assert proc.returncode == 1
    found = json.loads(proc.stdout)
    assert {tuple(sorted(item)) for item in found} == {
        ("file", "hint", "key", "rule", "severity", "value")}
    size = next(e for e in found if e["key"] == "disk.partition[0].size")
    assert size["value"] == "1x" and size["severity"] == "error"
    proc = run_cli("check", "--json", paths[2])
    assert proc.returncode == 0 and proc.stderr == ""
    (warning,) = json.loads(proc.stdout)
    assert warning["severity"] == "warning" and warning["key"] == 'image.a.files.x.mode'
    (tmp_path / "good.toml").write_text(GOOD.replace('"0600"', '"0644"'))
    assert json.loads(run_cli("check", "--json", paths[2]).stdout) == []


def test_build_json_says_why_it_failed(tmp_path: Path) -> None:
    paths = _layouts(tmp_path)
    out = str(tmp_path.parent / (tmp_path.name + "-b"))
    proc = run_cli("build", "--json", paths[1], "--build-dir", out,
                   check=False)
    assert proc.returncode == 1 and "error:" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["outputs"] == [] and [e["key"] for e in doc["errors"]] == [
        "disk.partition[0].size", "disk.partition[1].size"]
    doc = json.loads(run_cli("build", "--json", paths[2], "--build-dir",
                             str(tmp_path.parent / (tmp_path.name + "-b"))).stdout)
    assert doc["errors"] == [] and doc["built"] == ["good:image.a"]


def test_plan_json_is_a_list_with_a_format_version(tmp_path: Path) -> None:
    paths = _layouts(tmp_path)
    plan = json.loads(run_cli("plan", "--json", paths[2], "--build-dir",
                              str(tmp_path.parent / (tmp_path.name + "-b"))).stdout)
    assert isinstance(plan, list) and [p["format-version"] for p in plan] == [1]


def test_file_size_limits_come_from_stat_before_hashing(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    big = tree / "big.bin"
    with open(big, "wb") as f:
        f.truncate(5 << 30)               # sparse: 5 GiB that would take long to hash
    (tmp_path / "r.toml").write_text('schema = 1\n[image.r]\ntype = "romfs"\ntree = "tree"\n')
    (tmp_path / "f.toml").write_text('schema = 1\n[image.f]\ntype = "fat"\nfiles."x" = '
                                     '{ file = "tree/big.bin" }\n')
    out = str(tmp_path.parent / (tmp_path.name + "-b"))
    proc = run_cli("check", str(tmp_path / "r.toml"), str(tmp_path / "f.toml"), "--build-dir",
                   out, check=False)
    assert proc.returncode == 1
    assert "image.r.tree: " in proc.stderr and "big.bin: 5368709120 bytes; the image holds " \
        "files up to 4294967295 bytes (romfs); refused before reading it" in proc.stderr
    assert 'image.f.files.x.file: ' in proc.stderr and "(fat)" in proc.stderr
