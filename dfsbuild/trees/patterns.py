"""Exclude patterns, matched the way genromfs matches ``-x``.

fnmatch(3) with FNM_PATHNAME | FNM_PERIOD: ``*``, ``?`` and ``[...]`` never match ``/`` and
never match a leading ``.`` of a name. A pattern that starts with ``/`` is matched against the
path relative to the tree root (with a leading ``/``); any other pattern against the base name.
"""

from __future__ import annotations

import re
from functools import lru_cache


class PatternError(ValueError):
    """A pattern that cannot be compiled."""


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    n = len(pattern)
    # A wildcard may not match a period that starts the string or follows a slash.
    def at_name_start() -> bool:
        return i == 0 or pattern[i - 1] == "/"

    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("(?!\\.)[^/]*" if at_name_start() else "[^/]*")
            # Collapse runs of stars; they mean the same.
            while i + 1 < n and pattern[i + 1] == "*":
                i += 1
        elif c == "?":
            out.append("(?!\\.)[^/]" if at_name_start() else "[^/]")
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                body = body.replace("\\", "\\\\")
                cls = f"[^/{body}]" if negate else f"[{body}]"
                guard = "(?!\\.)" if at_name_start() else ""
                out.append(f"{guard}(?!/){cls}")
                i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out) + r"\Z", re.DOTALL)
    except re.error as exc:
        raise PatternError(f"{pattern!r} is not a valid pattern: {exc}") from None


def check_pattern(pattern: str) -> None:
    """Raise PatternError if ``pattern`` cannot be used."""
    if not pattern:
        raise PatternError("an empty pattern matches nothing")
    _compile(pattern)


def matches(patterns: tuple[str, ...], name: str, relpath: str) -> bool:
    """True if any pattern matches the entry ``name`` at ``relpath`` (no leading slash)."""
    for pattern in patterns:
        subject = "/" + relpath if pattern.startswith("/") else name
        if _compile(pattern).match(subject):
            return True
    return False
