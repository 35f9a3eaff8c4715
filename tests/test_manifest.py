"""The manifest beside every disk (OUTPUT.json): valid against the schema dfsbuild ships
(``dfsbuild schema --manifest``, checked by the jsonschema package), and in agreement with
``sfdisk --json`` and ``blkid -p`` on every field they share, and with the files it names."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import ROOT, need_tool, run_cli

SAMPLES = ["sdcard-mbr", "efi-gpt", "legacy-embr", "sample", "verity-gpt"]


def _schema() -> dict[str, object]:
    schema: dict[str, object] = json.loads(run_cli("schema", "--manifest").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _build(name: str, tmp_path: Path) -> tuple[dict[str, object], Path]:
    build = tmp_path / "build"
    run_cli("build", f"layouts/{name}.toml", "--build-dir", str(build), cwd=ROOT)
    out = build / name
    found = [p for p in out.glob("*.json")]
    assert len(found) == 1, found
    return json.loads(found[0].read_text()), out


def _blkid(disk: Path, offset: int, size: int) -> dict[str, str]:
    """What ``blkid -p`` finds in ``size`` bytes of the disk at ``offset``."""
    out = subprocess.run([need_tool("blkid"), "-p", "-o", "export", "-O", str(offset),
                          "-S", str(size), str(disk)], capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _sha(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def test_the_shipped_schema_is_the_one_dfsbuild_prints() -> None:
    assert json.loads((ROOT / "schema" / "manifest.schema.json").read_text()) == _schema()


@pytest.mark.tool
@pytest.mark.parametrize("name", SAMPLES)
def test_the_manifest_is_valid_and_agrees_with_sfdisk_and_blkid(name: str,
                                                                 tmp_path: Path) -> None:
    manifest, out = _build(name, tmp_path)
    jsonschema.validate(manifest, _schema())
    disk = out / str(manifest["disk"]["file"])          # type: ignore[index]
    assert disk.stat().st_size == manifest["disk"]["size"]  # type: ignore[index]
    images = []          # (image, where blkid probes it on the disk: offset, size)
    table = manifest["partitiontable"]
    if table is not None:
        assert isinstance(table, dict)
        if table["label"] != "embr":                    # sfdisk does not read eMBR
            sfdisk = json.loads(subprocess.run(
                [need_tool("sfdisk"), "--json", str(disk)], capture_output=True, text=True,
                check=True).stdout)["partitiontable"]
            for key in ("label", "id", "unit", "sectorsize", "firstlba", "lastlba"):
                assert table.get(key) == sfdisk.get(key), key
            assert len(table["partitions"]) == len(sfdisk["partitions"])
            for ours, theirs in zip(table["partitions"], sfdisk["partitions"], strict=True):
                assert theirs["node"].endswith(str(ours["number"]))
                for key in set(theirs) - {"node"}:
                    assert ours[key] == theirs[key], (key, ours, theirs)
        ss = table["sectorsize"]
        images += [(p["image"], p["start"] * ss, p["size"] * ss) for p in table["partitions"]
                   if p["image"] is not None]
    images += [(r["image"], r["start"], r["size"])
               for r in manifest["regions"]]              # type: ignore[attr-defined]
    if manifest["whole"] is not None:
        images.append((manifest["whole"], 0, disk.stat().st_size))
    assert images
    plan = json.loads(run_cli("plan", "--json", f"layouts/{name}.toml", "--build-dir",
                              str(tmp_path / "build"), cwd=ROOT).stdout)
    keys = {i["name"]: i["key"] for lp in plan for i in lp["images"]}
    # plan --json names what the manifest names with the same words.
    planned = {i["name"]: i for lp in plan for i in lp["images"]}
    disk_plan = plan[0]["disk"]
    if table is not None:
        for ours, mine in zip([p for p in table["partitions"] if p["image"] is not None],
                              [p for p in disk_plan["partitions"] if p["image"] is not None],
                              strict=True):
            assert (ours["start"], ours["size"], ours["name"]) == \
                (mine["start"], mine["size"], mine["name"])
    for region in manifest["regions"]:                    # type: ignore[attr-defined]
        mine = next(r for r in disk_plan["regions"] if r["name"] == region["name"])
        assert (region["start"], region["size"]) == (mine["start"], mine["size"])
    compared = 0
    for image, offset, size in images:
        path = out / image["file"]
        assert path.stat().st_size == image["size"]
        assert _sha(path) == image["sha256"]
        assert keys[image["name"]] == image["key"]
        assert planned[image["name"]]["file"] == image["file"]
        assert planned[image["name"]]["size"] == image["size"]
        probed = _blkid(disk, offset, size)
        fs = image["filesystem"] or {}
        if "TYPE" not in probed and size <= 1024:       # blkid probes nothing that small
            continue
        assert {k.lower(): v for k, v in probed.items()
                if k in ("TYPE", "UUID", "LABEL")} == fs, (image["name"], probed)
        compared += bool(fs)
    # The other two samples hold only a 1 KiB romfs, in a partition as small as it.
    assert compared or name in ("sample", "legacy-embr"), "blkid recognised nothing"
    for entry in manifest["files"].values():             # type: ignore[attr-defined]
        for item in entry.values() if isinstance(entry, dict) and "file" not in entry \
                else [entry]:
            if item is not None:
                assert _sha(out / item["file"]) == item["sha256"]


def test_the_manifest_names_the_companion_files(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.txt").write_text("a\n")
    layout = tmp_path / "card.toml"
    layout.write_text('schema = 1\n[image.fs]\ntype = "fat"\ntree = "tree"\nlabel = "CARD"\n'
                      '[disk]\ntable = "gpt"\nsize = "8MiB"\nbmap = true\nsparse = true\n'
                      'compress = "xz"\n[[disk.partition]]\nname = "fs"\nimage = "fs"\n'
                      'sparse = true\n')
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"))
    out = tmp_path / "b" / "card"
    manifest = json.loads((out / "card.json").read_text())
    jsonschema.validate(manifest, _schema())
    files = manifest["files"]
    assert files["bmap"]["file"] == "card.img.bmap"
    assert files["sparse"]["file"] == "card.simg"
    assert files["compressed"]["file"] == "card.img.xz"
    assert files["partition_sparse"]["fs"]["file"] == "card.fs.simg"
    for item in (files["bmap"], files["sparse"], files["compressed"],
                 files["partition_sparse"]["fs"]):
        assert _sha(out / item["file"]) == item["sha256"]
        assert (out / item["file"]).stat().st_size == item["size"]
    part = manifest["partitiontable"]["partitions"][0]
    assert part["name"] == "fs" and part["image"]["filesystem"]["label"] == "CARD"
    # Turned off, it is gone; a damaged one fails the schema.
    layout.write_text(layout.read_text().replace("compress", "manifest = false\ncompress"))
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"))
    assert not (out / "card.json").exists()
    del manifest["files"]["bmap"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(manifest, _schema())
