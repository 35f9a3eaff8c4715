"""Where a build puts things and how it reports, from arguments and ``DFSBUILD_*`` variables."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dfsbuild.engine.state import StateStore
from dfsbuild.errors import DfsbuildError

if TYPE_CHECKING:
    from dfsbuild.engine.cache import OutputCache

DEFAULT_LAYOUT_DIR = "layouts"
DEFAULT_BUILD_DIR = "build"
CACHE_ENV = "DFSBUILD_CACHE_DIR"
BUILD_ENV = "DFSBUILD_BUILD_DIR"
EXPLAIN_ENV = "DFSBUILD_EXPLAIN"
NO_CACHE_ENV = "DFSBUILD_NO_CACHE"
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")


def env_flag(name: str) -> bool:
    """A boolean variable: 1/true/yes/on or 0/false/no/off (any case); anything else is an
    error rather than a guess."""
    raw = os.environ.get(name, "").strip().lower()
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise DfsbuildError(f"{name}={os.environ.get(name)!r} is not a boolean (use 1 or 0, true "
                        "or false, yes or no)")


@dataclass(frozen=True, slots=True)
class Settings:
    build_dir: str
    cache_dir: str
    explain: bool = False
    json: bool = False
    force: bool = False            # rebuild every output, without asking the cache
    no_cache: bool = False         # neither read nor write the cache
    verbosity: int = 1             # 0: errors only, 1: a line per output, 2: and why
    live: bool = False             # a live progress line on the terminal

    @classmethod
    def from_env(cls, build_dir: str | None = None, cache_dir: str | None = None,
                 explain: bool = False, json: bool = False, force: bool = False,
                 no_cache: bool = False, verbosity: int = 1) -> Settings:
        build = build_dir or os.environ.get(BUILD_ENV) or DEFAULT_BUILD_DIR
        cache = cache_dir or os.environ.get(CACHE_ENV) or os.path.join(build, ".cache")
        explain = explain or verbosity > 1 or env_flag(EXPLAIN_ENV)
        no_cache = no_cache or env_flag(NO_CACHE_ENV)
        live = verbosity > 0 and not json and sys.stderr.isatty()
        return cls(os.path.abspath(build), os.path.abspath(cache), explain, json, force,
                   no_cache, verbosity, live)

    @property
    def state(self) -> StateStore:
        return StateStore(Path(self.build_dir) / ".dfsbuild" / "state")

    @property
    def cache(self) -> OutputCache:
        from dfsbuild.engine.cache import OutputCache

        return OutputCache(Path(self.cache_dir))
