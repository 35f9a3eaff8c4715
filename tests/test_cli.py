"""The command line: help everywhere, errors without tracebacks, JSON where scripts parse."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dfsbuild.cli import build_parser
from tests.conftest import ROOT, need_tool, run_cli

COMMANDS = ["mkfs", "mkfs romfs", "mkfs fat", "build", "check", "plan", "inspect", "ls", "cat",
            "extract", "map", "put", "rm", "clean", "cache", "cache stats", "cache prune",
            "trivialfs", "trivialfs gen", "trivialfs volume", "trivialfs file", "trivialfs read",
            "trivialfs write", "trivialfs explode", "trivialfs install-sh", "mkfs trivialfs",
            "completion", "schema", "verify", "diff"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    proc = run_cli(*command.split(), "--help")
    assert proc.stdout.startswith("usage: dfsbuild " + command)


def test_parser_lists_every_command_with_its_help() -> None:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) == {"mkfs", "build", "check", "plan", "inspect", "ls", "cat",
                                "extract", "map", "put", "rm", "clean", "cache", "trivialfs",
                                "completion", "schema", "verify", "diff", "init", "boot"}
    helped = {a.dest: a.help for a in sub._choices_actions}
    assert all(helped.get(name) for name in sub.choices), helped


@pytest.fixture
def image(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hostname").write_text("board\n")
    (src / "init").write_text("#!/bin/sh\n")
    (src / "init").chmod(0o755)
    (src / "init.swp").write_text("junk")
    (src / "etc" / "blob").write_bytes(bytes(2000))  # blkid ignores images of <= 1024 bytes
    out = tmp_path / "r.img"
    run_cli("mkfs", "romfs", str(src), "-o", str(out), "-V", "vol", "-a", "64",
            "-x", "*.swp")
    return out


def test_mkfs_then_inspect_ls_cat_extract(image: Path, tmp_path: Path) -> None:
    report = json.loads(run_cli("inspect", str(image), "--json").stdout)
    assert report["format"] == "romfs" and report["volume"] == "vol"
    assert report["ok"] is True and report["format"] == "romfs"
    paths = {e["path"]: e for e in report["entries"]}
    assert set(paths) == {"etc", "etc/blob", "etc/hostname", "init"}
    assert paths["init"]["mode"] == "0755" and paths["init"]["data_offset"] % 64 == 0
    text = run_cli("inspect", str(image)).stdout
    assert "romfs filesystem: volume vol" in text and "etc/hostname" in text
    assert run_cli("ls", str(image), "etc").stdout.split()[-1] == "etc/hostname"
    assert run_cli("cat", str(image), "etc/blob").stdout == "\0" * 2000
    listing = json.loads(run_cli("ls", str(image), "--json").stdout)
    assert [r["path"] for r in listing] == ["etc", "init"]
    assert run_cli("cat", str(image), "etc/hostname").stdout == "board\n"
    run_cli("extract", str(image), str(tmp_path / "out"))
    assert (tmp_path / "out" / "etc" / "hostname").read_text() == "board\n"


@pytest.mark.parametrize(("args", "message"), [
    (["inspect", "/nonexistent.img"], "cannot open"),
    (["cat", "IMAGE", "etc/missing"], "no 'etc/missing'"),
    (["cat", "IMAGE", "etc"], "is a dir"),
    (["ls", "pyproject.toml"], "no filesystem recognised"),
    (["mkfs", "romfs", "/nonexistent", "-o", "OUT"], "cannot read the tree"),
    (["check", "/nonexistent.toml"], "no such layout file"),
    (["build", "/nonexistent.toml"], "no such layout file"),
])
def test_errors_are_one_line_without_traceback(image: Path, tmp_path: Path, args: list[str],
                                               message: str) -> None:
    args = [str(image) if a == "IMAGE" else str(tmp_path / "o.img") if a == "OUT" else a
            for a in args]
    proc = run_cli(*args, cwd=ROOT, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ")
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_truncated_image_is_a_format_error(image: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.img"
    cut.write_bytes(image.read_bytes()[:100])
    proc = run_cli("inspect", str(cut), check=False)
    assert proc.returncode == 1
    # The reader's error, with the image file it was given.
    assert proc.stderr.startswith(f"error: {cut}: romfs at byte 8")


def test_a_damaged_checksum_fails_inspect(image: Path, tmp_path: Path) -> None:
    bad = bytearray(image.read_bytes())
    bad[0x2F] ^= 0x40  # the checksum word of the root "." header
    (tmp_path / "bad.img").write_bytes(bytes(bad))
    proc = run_cli("inspect", str(tmp_path / "bad.img"), check=False)
    assert proc.returncode == 1 and "does not sum to zero" in proc.stdout


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    proc = run_cli("mkfs", "romfs", str(tmp_path), "-o", "x", "-a", "24", check=False)
    assert proc.returncode == 2 and "power of two" in proc.stderr


def test_mkfs_refuses_to_leave_a_partial_output(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / ("n" * 200)).write_text("")
    out = tmp_path / "keep.img"
    out.write_bytes(b"precious")
    proc = run_cli("mkfs", "romfs", str(src), "-o", str(out), check=False)
    assert proc.returncode == 1 and "200 bytes" in proc.stderr
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.img", "src"]


def test_check_and_plan_on_the_bundled_layouts() -> None:
    proc = run_cli("check", cwd=ROOT)
    assert "layouts/sample.toml: ok" in proc.stdout
    plan = json.loads(run_cli("plan", "layouts/sample.toml", "--json", "--build-dir",
                              "/nonexistent-build", cwd=ROOT).stdout)
    assert isinstance(plan, list) and len(plan) == 1 and plan[0]["format-version"] == 1
    plan = plan[0]
    names = [i["name"] for i in plan["images"]]
    assert names == ["env", "rootfs"]  # nested images first
    assert plan["disk"]["image"] == "rootfs"


@pytest.mark.tool
def test_file_and_blkid_recognise_our_images(image: Path, tmp_path: Path) -> None:
    file_tool = need_tool("file")
    out = subprocess.run([file_tool, "-b", str(image)], capture_output=True, text=True).stdout
    assert "romfs filesystem" in out and "named vol" in out
    blkid = need_tool("blkid")
    proc = subprocess.run([blkid, "-p", "-o", "export", str(image)], capture_output=True,
                          text=True)
    assert "TYPE=romfs" in proc.stdout and "LABEL=vol" in proc.stdout


def test_help_lists_exit_codes_and_variables() -> None:
    text = run_cli("--help").stdout
    assert "exit codes:" in text and "2  a usage error" in text
    for name in ("DFSBUILD_BUILD_DIR", "DFSBUILD_CACHE_DIR", "DFSBUILD_REMOTE_CACHE",
                 "SOURCE_DATE_EPOCH"):
        assert name in text


@pytest.mark.parametrize(("typed", "expected"), [
    ("dfsbuild mk", "mkfs"), ("dfsbuild mkfs f", "fat"),
    ("dfsbuild build --remote-cache-r", "--remote-cache-read-only"),
    ("dfsbuild trivialfs ex", "explode")])
def test_bash_completion_completes_commands_and_options(typed: str, expected: str,
                                                        tmp_path: Path) -> None:
    script = tmp_path / "c.sh"
    script.write_text(run_cli("completion", "bash").stdout)
    words = typed.split()
    proc = subprocess.run(["bash", "-c", f"source {script}; COMP_WORDS=({typed}); "
                           f"COMP_CWORD={len(words) - 1}; _dfsbuild; "
                           'printf "%s\\n" "${COMPREPLY[@]}"'],
                          capture_output=True, text=True, check=True)
    assert expected in proc.stdout.split(), proc.stdout


def test_zsh_and_fish_completion() -> None:
    assert "bashcompinit" in run_cli("completion", "zsh").stdout
    fish = run_cli("completion", "fish").stdout
    assert "complete -c dfsbuild -n '__fish_use_subcommand' -f -a build" in fish
    assert "-l remote-cache" in fish


def test_commands_find_the_project_root_from_a_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "layouts").mkdir()
    (tmp_path / "tree" / "deep").mkdir(parents=True)
    (tmp_path / "layouts" / "one.toml").write_text(
        'schema = 1\n[image.a]\ntype = "romfs"\ntree = "../tree"\nexclude = ["/deep"]\n')
    sub = tmp_path / "tree" / "deep"
    assert "one.toml: ok" in run_cli("check", cwd=sub).stdout
    run_cli("build", cwd=sub)
    assert (tmp_path / "build" / "one" / "a.img").is_file()
    assert not (sub / "build").exists()
    (plan,) = json.loads(run_cli("plan", "--json", cwd=sub).stdout)
    assert plan["build_dir"] == str(tmp_path / "build" / "one")


def test_build_one_target_and_what_it_needs(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f").write_text("f\n")
    layout = tmp_path / "two.toml"
    layout.write_text('schema = 1\n[image.inner]\ntype = "romfs"\ntree = "t"\n'
                      '[image.outer]\ntype = "romfs"\nfiles."in.img" = { image = "inner" }\n'
                      '[image.other]\ntype = "romfs"\ntree = "t"\n'
                      '[disk]\ntable = "mbr"\n[[disk.partition]]\nname = "p"\nimage = "other"\n')
    build = tmp_path / "b"
    doc = json.loads(run_cli("build", "--json", f"{layout}:image.outer", "--build-dir",
                             str(build)).stdout)
    assert sorted(doc["built"]) == ["two:image.inner", "two:image.outer"]
    assert not (build / "two" / "other.img").exists()
    doc = json.loads(run_cli("build", "--json", f"{layout}:disk", "--build-dir",
                             str(build)).stdout)
    assert sorted(doc["built"]) == ["two:disk", "two:image.other"]
    proc = run_cli("build", f"{layout}:image.nope", "--build-dir", str(build), check=False)
    assert proc.returncode == 1 and "no output 'image.nope'" in proc.stderr
    assert "image.inner, image.outer, image.other, disk" in proc.stderr


def test_text_output_never_shows_python_values(tmp_path: Path) -> None:
    """``plan``, ``inspect`` and ``--explain`` speak TOML (``true``, ``"x"``) and say
    ``default`` or ``-`` for an unset value, never None, True or 'x'."""
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "f").write_text("x")
    lay = tmp_path / "l.toml"
    lay.write_text('schema = 1\n[image.f]\ntype = "fat"\ntree = "tree"\nlabel = "BOOT"\n'
                   '[image.t]\ntype = "trivialfs"\ntree = "tree"\nlabel-fs = "none"\n')
    plan = run_cli("plan", str(lay)).stdout
    assert 'fat default' in plan and 'label "BOOT"' in plan and "contiguous true" in plan
    build = tmp_path / "b"
    run_cli("build", str(lay), "--build-dir", str(build))
    facts = run_cli("inspect", str(build / "l" / "t.img")).stdout.splitlines()[0]
    assert "compatible version -" in facts
    lay.write_text(lay.read_text().replace('label = "BOOT"\n', ""))
    explained = run_cli("build", str(lay), "--build-dir", str(build), "--explain").stdout
    assert 'option label: "BOOT" -> default' in explained, explained
    for text in (plan, facts, explained):
        assert "None" not in text and "True" not in text and "'BOOT'" not in text


def test_the_cli_in_this_process_is_the_cli_users_run(image: Path, tmp_path: Path) -> None:
    """The suite runs most commands in-process (run_cli); each of these gives the same exit
    status, output and errors as ``python -m dfsbuild`` in its own process."""
    (tmp_path / "layouts").mkdir()
    (tmp_path / "layouts" / "bad.toml").write_text('schema = 1\n[image.x]\ntype = "nope"\n')
    env = {"DFSBUILD_BUILD_DIR": str(tmp_path / "elsewhere")}
    before = (Path.cwd(), os.environ.get("DFSBUILD_BUILD_DIR"))
    for args in (["--version"], ["ls", str(image), "/etc"], ["inspect", str(image), "--json"],
                 ["cat", str(image), "/etc/hostname"], ["check"], ["plan", "--json"],
                 ["build"], ["ls", str(tmp_path / "missing.img")], ["frobnicate"],
                 ["put", str(image), "/etc/x", str(tmp_path / "none")]):
        here = run_cli(*args, cwd=tmp_path, env=env, check=False)
        there = run_cli(*args, cwd=tmp_path, env=env, check=False, isolated=True)
        assert (here.returncode, here.stdout, here.stderr) == \
            (there.returncode, there.stdout, there.stderr), args
    assert (Path.cwd(), os.environ.get("DFSBUILD_BUILD_DIR")) == before   # both restored
    assert (tmp_path / "elsewhere").is_dir()                # the variable reached the build


def test_the_command_leaves_at_once_but_lets_a_profiler_write(tmp_path: Path) -> None:
    """``dfsbuild`` ends with os._exit once its output is flushed (no teardown), except under
    a profiler or coverage, which write their results when the interpreter exits."""
    out = tmp_path / "profile.out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "dfsbuild",
                           "schema"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["title"], proc.stderr
    assert out.stat().st_size > 0
    piped = subprocess.run(f"{sys.executable} -m dfsbuild schema | head -c 10", shell=True,
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert piped.stdout == proc.stdout[:10]
