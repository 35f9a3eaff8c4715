"""``[vars]`` and ``${NAME}``: values a layout names once and a build may override.

Every string value of the layout may hold ``${NAME}`` (``$${`` is a literal ``${``). A value
comes from, first to last: ``--var NAME=VALUE``, the variable ``DFSBUILD_VAR_NAME``, the
layout's ``[vars]``. A value may itself name variables (``B = "${A}-x"``); a cycle is an
error. Substitution happens before anything is read, so the values are in the settings and
therefore in the cache keys. A name nobody defines is a layout error, and so is a layout whose
strings would expand past MAX_EXPANDED characters (a few references to a large value).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dfsbuild.errors import LayoutError
from dfsbuild.vocab.table import describe, key_join

MAX_EXPANDED = 1 << 24       # characters of expanded strings in one layout
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
    return _resolve(values, file)


def _resolve(raw: Mapping[str, str], file: str) -> dict[str, str]:
    """Every value with the variables it names expanded, each once (depth first, without
    recursion); a cycle names its members."""
    done: dict[str, str] = {}
    budget = Budget()
    for top in sorted(raw):
        stack = [top]
        while stack:
            name = stack[-1]
            if name in done:
                stack.pop()
                continue
            waiting = [m[1] for m in _REF.finditer(raw[name])
                       if m[0] != "$${" and m[1] in raw and m[1] not in done]
            if not waiting:
                done[name] = _expand(raw[name], done, file, key_join("vars", name), budget,
                                     raw)
                stack.pop()
                continue
            for other in waiting:
                if other in stack:
                    cycle = " -> ".join([*stack[stack.index(other):], other])
                    raise LayoutError(file, key_join("vars", name), f"the variables name "
                                      f"each other in a cycle: {cycle}")
            stack += waiting
    return done


class Budget:
    """Characters the expansion of one layout may still produce."""

    def __init__(self) -> None:
        self.left = MAX_EXPANDED


def substitute(data: Any, values: Mapping[str, str], file: str, key: str = "",
               budget: Budget | None = None) -> Any:
    """``data`` with every ``${NAME}`` in its strings replaced (walked without recursion
    limits mattering: layouts are shallow, and tomllib bounds their depth)."""
    budget = budget if budget is not None else Budget()
    if isinstance(data, str):
        return _expand(data, values, file, key, budget)
    if isinstance(data, dict):
        return {k: substitute(v, values, file, key_join(key, k), budget)
                for k, v in data.items()}
    if isinstance(data, list):
        return [substitute(v, values, file, f"{key}[{i}]", budget) for i, v in enumerate(data)]
    return data


def _expand(text: str, values: Mapping[str, str], file: str, key: str, budget: Budget,
            known: Mapping[str, str] | None = None) -> str:
    """``text`` with its references replaced by ``values``; ``known`` (default: ``values``)
    are the names that exist, for the error."""
    names = known if known is not None else values
    if "${" not in text:
        return text
    pieces: list[str] = []
    size = 0
    at = 0
    for m in _REF.finditer(text):
        if m[0] == "$${":
            piece = "${"
        elif m[1] in values:
            piece = values[m[1]]
        else:
            defined = ", ".join(sorted(names)) or "nothing"
            raise LayoutError(file, key, f"${{{m[1]}}} names no variable", value=text,
                              hint=f"define it in [vars] or with --var {m[1]}=VALUE "
                              f"(defined: {defined})")
        size += m.start() - at + len(piece)
        if size > budget.left:
            raise LayoutError(file, key, f"the variables expand to more than {MAX_EXPANDED} "
                              "characters in this layout", hint="a layout names large "
                              "values a few times; keep large contents in files")
        pieces += (text[at:m.start()], piece)
        at = m.end()
    pieces.append(text[at:])
    budget.left -= size + len(text) - at
    return "".join(pieces)


def parse_override(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` from the command line; ValueError says what is wrong."""
    name, sep, value = text.partition("=")
    if not sep or not VAR_NAME.fullmatch(name):
        raise ValueError(f"{text!r} is not NAME=VALUE (NAME: letters, digits, '_')")
    return name, value
