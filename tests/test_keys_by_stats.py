"""A build whose inputs are untouched takes each image's key from its inputs' stats alone (no
hashing, no tree, no manifest), and imports no writer, reader, doit or HTTP module; any change
an lstat can see (also a rewrite that keeps the size and the mtime: the ctime moves) keys the
image from its contents again. Short commands import only the type they touch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dfsbuild import plan as plan_module
from dfsbuild.engine import memo
from dfsbuild.trees.fstree import FsNode
from tests.conftest import ROOT, build_here, write_romfs
from tests.engine_project import make_project


@pytest.fixture
def aged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inputs taken as older than the racy-stat window, without waiting for it."""
    real = time.time_ns
    monkeypatch.setattr(memo.time, "time_ns", lambda: real() + 10 * 10**9)


def _no_keying(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> object:
        raise AssertionError("an image was keyed from its contents")
    monkeypatch.setattr(plan_module, "_key_image", refuse)


def test_an_untouched_build_keys_images_by_stats_alone(tmp_path: Path, aged: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path)
    first = build_here(project)
    assert len(first["built"]) == 4
    keys = json.loads((project / "build" / ".dfsbuild" / "keys.json").read_text())["keys"]
    assert set(keys) == {"board:image.inner", "board:image.outer", "board:image.other"}
    _no_keying(monkeypatch)
    again = build_here(project)
    assert len(again["up_to_date"]) == 4 and not again["built"]


def test_a_rewrite_that_keeps_size_and_mtime_is_seen(tmp_path: Path, aged: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path)
    build_here(project)
    victim = project / "trees" / "inner" / "sub" / "file.txt"
    st = victim.stat()
    time.sleep(0.01)                       # a ctime the filesystem can tell apart
    victim.write_text("INNER DATA\n")      # same size
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert victim.stat().st_size == st.st_size and victim.stat().st_mtime_ns == st.st_mtime_ns
    result = build_here(project)
    assert {"board:image.inner", "board:image.outer"} <= set(result["built"])
    assert "board:disk" in result["built"] + result["patched"]
    assert "board:image.other" in result["up_to_date"]


def test_young_inputs_are_not_remembered(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    build_here(project)                    # every input was written a moment ago
    path = project / "build" / ".dfsbuild" / "keys.json"
    assert not path.exists() or json.loads(path.read_text())["keys"] == {}


def test_a_wrong_memo_entry_costs_one_keying_never_a_wrong_answer(tmp_path: Path,
                                                                   aged: None) -> None:
    """A memo entry only names a key; the output must also be recorded as built from it."""
    project = make_project(tmp_path)
    build_here(project)
    path = project / "build" / ".dfsbuild" / "keys.json"
    data = json.loads(path.read_text())
    right = data["keys"]["board:image.other"][1]
    data["keys"]["board:image.other"][1] = "0" * 64
    path.write_text(json.dumps(data))
    result = build_here(project)       # keyed from its contents: the same key, still current
    assert len(result["up_to_date"]) == 4
    assert json.loads(path.read_text())["keys"]["board:image.other"][1] == right


def _modules_after(args: list[str], cwd: Path) -> set[str]:
    code = ("import sys\nfrom dfsbuild.cli.main import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    return set(proc.stderr.split())


HEAVY = ("doit", "http.client", "ssl", "dfsbuild.engine.step", "dfsbuild.engine.remote",
         "dfsbuild.engine.write", "dfsbuild.fileio.sink", "dfsbuild.tables.mbr.ebr")


def test_a_no_op_build_imports_no_writer_reader_doit_or_http(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    build_here(project)
    loaded = _modules_after(["build", "-q"], project)
    assert not [m for m in HEAVY if m in loaded]
    formats = [m for m in loaded if m.startswith(("dfsbuild.images.", "dfsbuild.tables."))
               and m.rsplit(".", 1)[1] in ("write", "read", "update")]
    assert formats == []


def test_short_commands_import_only_the_type_they_touch(tmp_path: Path) -> None:
    image = tmp_path / "r.img"
    root = FsNode("", "", "dir", 0o755)
    write_romfs(str(image), root, "vol")
    loaded = _modules_after(["ls", str(image)], tmp_path)
    assert "dfsbuild.images.romfs.read" in loaded
    others = [m for m in loaded if m.startswith("dfsbuild.images.")
              and m.rsplit(".", 1)[1] in ("write", "read", "update") and ".romfs." not in m]
    assert others == [] and "dfsbuild.tables.gpt.read" not in loaded
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "f").write_text("x")
    loaded = _modules_after(["mkfs", "romfs", "-o", str(tmp_path / "m.img"),
                             str(tmp_path / "tree")], tmp_path)
    others = [m for m in loaded if m.startswith("dfsbuild.images.")
              and m.rsplit(".", 1)[1] in ("write", "read", "update") and ".romfs." not in m]
    assert "dfsbuild.images.romfs.write" in loaded and others == []


def test_the_task_names_builds_print_are_targets(tmp_path: Path) -> None:
    """``board:image.inner`` as the build prints it (and doit takes it) names the output of
    ``layouts/board.toml``, from the project or a subdirectory of it."""
    project = make_project(tmp_path)
    result = build_here(project, "board:image.inner")
    assert result["built"] == ["board:image.inner"]
    result = build_here(project / "trees", "board:disk")
    assert set(result["built"]) == {"board:image.outer", "board:disk"}
    assert result["up_to_date"] == ["board:image.inner"]
