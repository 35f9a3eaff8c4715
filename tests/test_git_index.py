"""Content ids from git's index equal content ids from hashing: a fresh clone's keys are the
keys a build that reads every file gets, and git is believed only where its bytes are the
file's (CRLF conversion, clean filters, symlinks, submodules, modified, staged and
assume-unchanged files are hashed)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dfsbuild.trees import digest as digest_module
from dfsbuild.trees import gitindex
from tests.conftest import build_here, need_tool

LAYOUT = """schema = 1
[image.rom]
type = "romfs"
tree = "../tree"
[image.kernel]
type = "raw"
file = "../kernel.bin"
"""


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-c", "protocol.file.allow=always", *args], cwd=cwd,
                          env=env, check=True, capture_output=True, text=True).stdout


def make_repo(tmp_path: Path) -> Path:
    need_tool("git")
    sub = tmp_path / "lib"
    sub.mkdir()
    git(sub, "init", "-q")
    (sub / "lib.c").write_text("int lib;\n")
    git(sub, "add", "-A")
    git(sub, "commit", "-qm", "lib")
    p = tmp_path / "proj"
    tree = p / "tree"
    tree.mkdir(parents=True)
    git(p, "init", "-q")
    git(p, "config", "filter.upper.clean", "tr a-z A-Z")
    git(p, "config", "filter.upper.smudge", "cat")
    for i in range(40):
        (tree / f"f{i:02}.bin").write_bytes(os.urandom(100 + 37 * i))
    (p / ".gitattributes").write_text("*.txt text eol=crlf\n*.up filter=upper\n")
    (tree / "dos.txt").write_bytes(b"one\r\ntwo\r\n")          # the index holds LF
    (tree / "word.up").write_text("lower case\n")             # the index holds LOWER CASE
    (tree / "link").symlink_to("f00.bin")
    for name in ("modified.bin", "staged.bin", "assumed.bin"):
        (tree / name).write_bytes(b"committed\n")
    (p / "kernel.bin").write_bytes(os.urandom(5000))
    (p / "layouts").mkdir()
    (p / "layouts" / "l.toml").write_text(LAYOUT)
    git(p, "add", "-A")
    git(p, "submodule", "add", "-q", str(sub), "tree/sub")
    git(p, "commit", "-qm", "first")
    git(p, "update-index", "--assume-unchanged", "tree/assumed.bin")
    for name in ("modified.bin", "staged.bin", "assumed.bin"):
        (tree / name).write_bytes(b"changed!!\n")             # same size, other bytes
    git(p, "add", "tree/staged.bin")
    return p


def keys(build: Path) -> dict[str, str]:
    state = build / ".dfsbuild" / "state"
    return {p.name: json.loads(p.read_text())["key"] for p in state.glob("*.json")
            if not p.name.endswith(".material.json")}


def test_ids_from_the_index_are_ids_from_hashing(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    p = make_repo(tmp_path)
    answered: set[str] = set()
    from_git = digest_module.DigestCache._from_git

    def noting(self: digest_module.DigestCache, path: str, st: os.stat_result) -> str | None:
        found = from_git(self, path, st)
        if found is not None:
            answered.add(os.path.relpath(path, p))
        return found
    monkeypatch.setattr(digest_module.DigestCache, "_from_git", noting)
    monkeypatch.setattr(digest_module, "GIT_AFTER", 0)        # ask git from the first file
    build_here(p, "--build-dir", "with-git", "--no-cache")
    by_git = set(answered)
    answered.clear()
    monkeypatch.setattr(gitindex, "load", lambda start: None)
    build_here(p, "--build-dir", "hashed", "--no-cache")
    assert not answered
    assert keys(p / "with-git") == keys(p / "hashed") and len(keys(p / "hashed")) == 2
    for name in ("rom.img", "kernel.img"):
        assert (p / "with-git" / "l" / name).read_bytes() == \
            (p / "hashed" / "l" / name).read_bytes()
    # git answered for the clean files; what it cannot vouch for was read.
    assert by_git >= {f"tree/f{i:02}.bin" for i in range(40)} | {"tree/staged.bin",
                                                                   "kernel.bin"}
    assert not by_git & {"tree/dos.txt", "tree/word.up", "tree/modified.bin",
                         "tree/assumed.bin", "tree/sub/lib.c", "tree/link"}, by_git


def test_our_content_id_is_gits_blob_id(tmp_path: Path) -> None:
    need_tool("git")
    for i, data in enumerate((b"", b"x", b"a\r\nb\n", os.urandom(3 << 20))):
        f = tmp_path / f"f{i}"
        f.write_bytes(data)
        assert digest_module.content_id(f) == subprocess.run(
            ["git", "hash-object", "--no-filters", str(f)], check=True, capture_output=True,
            text=True).stdout.strip()


def test_sha256_repositories_and_autocrlf_are_hashed(tmp_path: Path) -> None:
    need_tool("git")
    plain = tmp_path / "plain"
    plain.mkdir()
    git(plain, "init", "-q")
    (plain / "f").write_text("x\n")
    git(plain, "add", "f")
    assert gitindex.load(str(plain)) is not None
    git(plain, "config", "core.autocrlf", "true")
    assert gitindex.load(str(plain)) is None
    sha256 = tmp_path / "sha256"
    sha256.mkdir()
    if subprocess.run(["git", "init", "-q", "--object-format=sha256"], cwd=sha256,
                      check=False).returncode == 0:
        (sha256 / "f").write_text("x\n")
        git(sha256, "add", "f")
        assert gitindex.load(str(sha256)) is None
    assert gitindex.load(str(tmp_path)) is None              # not a work tree
