"""``[vars]`` and ``${NAME}``: values a layout names once and a build may override.

Every string value of the layout may hold ``${NAME}`` (``$${`` is a literal ``${``). A value
comes from, first to last: ``--var NAME=VALUE``, the variable ``DFSBUILD_VAR_NAME``, the
layout's ``[vars]``. Substitution happens before anything is read, so the values are in the
settings and therefore in the cache keys. A name nobody defines is a layout error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dfsbuild.errors import LayoutError
from dfsbuild.layout.table import describe, key_join

VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}")


def layout_vars(data: dict[str, Any], file: str,
                overrides: Mapping[str, str]) -> dict[str, str]:
    """The values of this layout's variables: its ``[vars]``, then the overrides."""
    raw = data.pop("vars", {})
    if not isinstance(raw, dict):
        raise LayoutError(file, "vars", f"expected a table, found {describe(raw)}")
    values: dict[str, str] = {}
    for name, value in raw.items():
        if not VAR_NAME.fullmatch(name):
            raise LayoutError(file, key_join("vars", name), "a variable name is letters, "
                              "digits and '_', not starting with a digit")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise LayoutError(file, key_join("vars", name), "expected a string or an "
                              f"integer, found {describe(value)}")
        values[name] = str(value)
    values.update(overrides)
    return values


def substitute(data: Any, values: Mapping[str, str], file: str, key: str = "") -> Any:
    """``data`` with every ``${NAME}`` in its strings replaced (walked without recursion
    limits mattering: layouts are shallow, and tomllib bounds their depth)."""
    if isinstance(data, str):
        return _expand(data, values, file, key)
    if isinstance(data, dict):
        return {k: substitute(v, values, file, key_join(key, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute(v, values, file, f"{key}[{i}]") for i, v in enumerate(data)]
    return data


def _expand(text: str, values: Mapping[str, str], file: str, key: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m[0] == "$${":
            return "${"
        name = m[1]
        if name not in values:
            known = ", ".join(sorted(values)) or "nothing"
            raise LayoutError(file, key, f"${{{name}}} names no variable", value=text,
                              hint=f"define it in [vars] or with --var {name}=VALUE "
                              f"(defined: {known})")
        return values[name]
    return _REF.sub(one, text)


def parse_override(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` from the command line; ValueError says what is wrong."""
    name, sep, value = text.partition("=")
    if not sep or not VAR_NAME.fullmatch(name):
        raise ValueError(f"{text!r} is not NAME=VALUE (NAME: letters, digits, '_')")
    return name, value
