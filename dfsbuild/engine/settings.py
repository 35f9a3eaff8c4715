"""Where a build puts things and how it reports, from arguments and ``DFSBUILD_*`` variables."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dfsbuild.engine.state import StateStore
from dfsbuild.errors import DfsbuildError

if TYPE_CHECKING:
    from dfsbuild.engine.cache import OutputCache
    from dfsbuild.engine.endpoint import Endpoint
    from dfsbuild.engine.remote import Remote

DEFAULT_LAYOUT_DIR = "layouts"
DEFAULT_BUILD_DIR = "build"
CACHE_ENV = "DFSBUILD_CACHE_DIR"
BUILD_ENV = "DFSBUILD_BUILD_DIR"
EXPLAIN_ENV = "DFSBUILD_EXPLAIN"
NO_CACHE_ENV = "DFSBUILD_NO_CACHE"
REMOTE_ENV = "DFSBUILD_REMOTE_CACHE"
REMOTE_READ_ONLY_ENV = "DFSBUILD_REMOTE_CACHE_READ_ONLY"
REMOTE_HEADER_ENV = "DFSBUILD_REMOTE_CACHE_HEADER"
REMOTE_TIMEOUT_ENV = "DFSBUILD_REMOTE_CACHE_TIMEOUT"
STRICT_ENV = "DFSBUILD_STRICT"
VAR_ENV = "DFSBUILD_VAR_"
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")


def project_root(start: str | None = None) -> str:
    """The directory a project's commands are relative to: the nearest of ``start`` (default:
    the working directory) and its parents holding ``layouts/`` or a ``dodo.py``; else
    ``start`` itself. Returned relative to the working directory when inside it."""
    here = os.path.abspath(start or os.getcwd())
    d = here
    while True:
        if os.path.isdir(os.path.join(d, DEFAULT_LAYOUT_DIR)) or \
                os.path.isfile(os.path.join(d, "dodo.py")):
            return os.path.relpath(d) if d != os.getcwd() else "."
        parent = os.path.dirname(d)
        if parent == d:
            return "." if start is None else start
        d = parent


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


def remote_timeout() -> float:
    """``DFSBUILD_REMOTE_CACHE_TIMEOUT``: seconds one request to the remote cache may take,
    from connecting to the last byte (default 30)."""
    raw = os.environ.get(REMOTE_TIMEOUT_ENV) or "30"
    try:
        timeout = float(raw)
    except ValueError:
        timeout = -1.0
    if not 0 < timeout < 1e6:          # also refuses nan and inf
        raise DfsbuildError(f"{REMOTE_TIMEOUT_ENV}={raw!r} is not a number of seconds "
                            "(more than 0, less than 1000000)")
    return timeout


def _remote_endpoint(url: str, setting: str) -> Endpoint:
    from dfsbuild.engine.endpoint import parse_endpoint

    return parse_endpoint(url.rstrip("/"), os.environ.get(REMOTE_HEADER_ENV) or None,
                          setting, REMOTE_HEADER_ENV)


@dataclass(frozen=True, slots=True)
class Settings:
    """Where a build puts things and how it reports (arguments, then DFSBUILD_* variables)."""

    build_dir: str
    cache_dir: str
    explain: bool = False
    json: bool = False
    force: bool = False            # rebuild every output, without asking the cache
    no_cache: bool = False         # neither read nor write the cache
    verbosity: int = 1             # 0: errors only, 1: a line per output, 2: and why
    live: bool = False             # a live progress line on the terminal
    remote_cache: str | None = None  # base URL of a Bazel HTTP cache
    remote_read_only: bool = False   # fetch from it, never upload
    strict: bool = False             # layout warnings are errors
    variables: tuple[tuple[str, str], ...] = ()   # --var and DFSBUILD_VAR_NAME, by name

    @classmethod
    def from_env(cls, build_dir: str | None = None, cache_dir: str | None = None,
                 explain: bool = False, json: bool = False, force: bool = False,
                 no_cache: bool = False, verbosity: int = 1, remote_cache: str | None = None,
                 remote_read_only: bool = False, strict: bool = False,
                 variables: Sequence[tuple[str, str]] = ()) -> Settings:
        build = build_dir or os.environ.get(BUILD_ENV) or \
            os.path.join(project_root(), DEFAULT_BUILD_DIR)
        cache = cache_dir or os.environ.get(CACHE_ENV) or os.path.join(build, ".cache")
        explain = explain or verbosity > 1 or env_flag(EXPLAIN_ENV)
        no_cache = no_cache or env_flag(NO_CACHE_ENV)
        live = verbosity > 0 and not json and sys.stderr.isatty()
        remote = remote_cache or os.environ.get(REMOTE_ENV) or None
        read_only = remote_read_only or env_flag(REMOTE_READ_ONLY_ENV)
        if remote is not None and not no_cache:       # a bad setting: one error, up front
            _remote_endpoint(remote, "--remote-cache" if remote_cache else REMOTE_ENV)
            remote_timeout()
        strict = strict or env_flag(STRICT_ENV)
        found = {k[len(VAR_ENV):]: v for k, v in os.environ.items() if k.startswith(VAR_ENV)}
        found.update(variables)            # the command line wins
        return cls(os.path.abspath(build), os.path.abspath(cache), explain, json, force,
                   no_cache, verbosity, live, remote, read_only, strict,
                   tuple(sorted(found.items())))

    @property
    def state(self) -> StateStore:
        return StateStore(os.path.join(self.build_dir, ".dfsbuild", "state"))

    @property
    def remote(self) -> Remote | None:
        if self.remote_cache is None or self.no_cache:
            return None
        from dfsbuild.engine.remote import Remote

        return Remote(_remote_endpoint(self.remote_cache, "the remote cache URL"),
                      self.remote_read_only, remote_timeout(),
                      slot_dir=os.path.join(self.build_dir, ".dfsbuild"))

    @property
    def cache(self) -> OutputCache:
        from pathlib import Path

        from dfsbuild.engine.cache import OutputCache

        return OutputCache(Path(self.cache_dir))
