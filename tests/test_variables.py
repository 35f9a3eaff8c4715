"""[vars], ${NAME}, --var and DFSBUILD_VAR_NAME: values substituted before the layout is
read, so they are in the outputs and their keys."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

LAYOUT = """schema = 1
[vars]
board = "pine64"
version = 3
[image.root]
type = "romfs"
volume = "${board}-v${version}"
tree = "tree"
files."etc/price" = { file = "price-$${x}.txt" }
"""


def _project(tmp_path: Path, text: str = LAYOUT) -> Path:
    (tmp_path / "tree").mkdir(exist_ok=True)
    (tmp_path / "price-${x}.txt").write_text("5\n")
    layout = tmp_path / "board.toml"
    layout.write_text(text)
    return layout


def _volume(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    layout = _project(tmp_path)
    plan = json.loads(run_cli("plan", "--json", str(layout), "--build-dir",
                              str(tmp_path / "b"), *args, env=env).stdout)
    image = plan[0]["images"][0]
    return image["options"]["volume"], image["key"]


def test_vars_defaults_overrides_and_keys(tmp_path: Path) -> None:
    default, key = _volume(tmp_path)
    assert default == "pine64-v3"
    by_env, env_key = _volume(tmp_path, env={"DFSBUILD_VAR_board": "rock64"})
    assert by_env == "rock64-v3" and env_key != key
    by_flag, flag_key = _volume(tmp_path, "--var", "board=rpi4",
                                env={"DFSBUILD_VAR_board": "rock64"})
    assert by_flag == "rpi4-v3" and flag_key not in (key, env_key)
    # The built image holds the value: our reader and the volume name agree.
    layout = _project(tmp_path)
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"), "--var", "version=9")
    info = json.loads(run_cli("inspect", "--json", str(tmp_path / "b" / "board" /
                                                       "root.img")).stdout)
    assert info["volume"] == "pine64-v9"
    # $${ is a literal ${: the file name with it was found.
    assert run_cli("cat", str(tmp_path / "b" / "board" / "root.img"), "etc/price").stdout \
        == "5\n"


def test_undefined_and_malformed_variables(tmp_path: Path) -> None:
    layout = _project(tmp_path, LAYOUT.replace("${version}", "${versoin}"))
    proc = run_cli("check", str(layout), check=False)
    assert proc.returncode == 1
    assert "image.root.volume: ${versoin} names no variable" in proc.stderr
    assert "--var versoin=VALUE" in proc.stderr and "board, version" in proc.stderr
    proc = run_cli("check", str(layout), "--var", "bad name=1", check=False)
    assert proc.returncode == 2 and "NAME=VALUE" in proc.stderr
    _project(tmp_path, LAYOUT.replace('board = "pine64"', "board = true"))
    proc = run_cli("check", str(layout), check=False)
    assert proc.returncode == 1 and "vars.board: expected a string or an integer" in \
        proc.stderr
