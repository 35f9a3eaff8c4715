"""``build --keep-going``: one broken layout does not stop the others."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

GOOD = 'schema = 1\n[image.root]\ntype = "romfs"\ntree = "../tree"\n'
BROKEN_TO_LOAD = 'schema = 1\n[image.root]\ntype = "romfss"\ntree = "../tree"\n'
BROKEN_TO_PLAN = ('schema = 1\n[image.boot]\ntype = "fat"\ntree = "../tree"\n'
                  'size = "64KiB"\nfree = "1MiB"\n')


def _project(tmp_path: Path) -> Path:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "file").write_text("data\n")
    (tmp_path / "layouts").mkdir()
    for name, text in (("good", GOOD), ("typo", BROKEN_TO_LOAD), ("small", BROKEN_TO_PLAN)):
        (tmp_path / "layouts" / f"{name}.toml").write_text(text)
    return tmp_path


def test_without_it_nothing_is_built(tmp_path: Path) -> None:
    p = _project(tmp_path)
    proc = run_cli("build", cwd=p, check=False)
    assert proc.returncode == 1 and "romfss" in proc.stderr
    assert not (p / "build" / "good").exists()


def test_with_it_the_good_layout_is_built_and_the_others_reported(tmp_path: Path) -> None:
    p = _project(tmp_path)
    proc = run_cli("build", "--keep-going", cwd=p, check=False)
    assert proc.returncode == 1
    assert (p / "build" / "good" / "root.img").is_file()
    assert "layouts/typo.toml" in proc.stderr and "romfss" in proc.stderr
    assert "layouts/small.toml" in proc.stderr and "holds them" in proc.stderr
    assert "built    good:image.root" in proc.stdout and "2 layouts left out" in proc.stdout
    again = run_cli("build", "-k", "--json", cwd=p, check=False)
    data = json.loads(again.stdout)
    assert again.returncode == 1 and data["up_to_date"] == ["good:image.root"]
    assert {e["file"] for e in data["errors"]} == {"layouts/typo.toml", "layouts/small.toml"}
    (p / "layouts" / "typo.toml").write_text(GOOD.replace("root", "other"))
    (p / "layouts" / "small.toml").unlink()
    fixed = run_cli("build", "-k", cwd=p)
    assert "built    typo:image.other" in fixed.stdout and "left out" not in fixed.stdout
