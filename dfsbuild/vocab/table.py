"""Strict reading of one TOML table: typed getters, dotted key paths, unknown keys refused."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from dfsbuild.errors import LayoutError

T = TypeVar("T")
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def key_join(prefix: str, name: str) -> str:
    """Dotted key path as TOML writes it: bare keys plain, others quoted."""
    part = name if _BARE.match(name) else '"' + name.replace('"', '\\"') + '"'
    return f"{prefix}.{part}" if prefix else part


class Table:
    """A TOML table being read; every key must be consumed or it is reported as unknown."""

    def __init__(self, data: object, file: str, where: str) -> None:
        if not isinstance(data, dict):
            raise LayoutError(file, where, f"expected a table, found {describe(data)}")
        self.data: dict[str, Any] = data
        self.file = file
        self.where = where
        self._seen: set[str] = set()
        self.note = ""          # after the key in messages: a partition's name

    def path(self, name: str) -> str:
        """Dotted path of ``name`` in this table; the table's own path for ""."""
        return key_join(self.where, name) if name else self.where

    def error(self, name: str, message: str, hint: str | None = None) -> LayoutError:
        return LayoutError(self.file, self.path(name), message, hint,
                           self.data.get(name) if name else None, self.note)

    def refuse_unknown(self, known: Iterable[str]) -> None:
        """Before anything is read: a key no type of this table has is reported first (a
        misspelt ``tpye`` before the missing ``type`` it causes), with the likeliest key."""
        names = set(known)
        for key in self.data:
            if key not in names:
                raise self.error(key, "unknown key", hint=_suggest(key, names))

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> object:
        self._seen.add(name)
        return self.data.get(name)

    def get(self, name: str, kind: type[T], default: T | None = None, required: bool = False) -> T:
        self._seen.add(name)
        if name not in self.data:
            if required:
                raise self.error(name, "is required")
            return default  # type: ignore[return-value]
        value = self.data[name]
        if kind is int and isinstance(value, bool):
            raise self.error(name, f"expected an integer, found {describe(value)}")
        if not isinstance(value, kind):
            raise self.error(name, f"expected {_kind_name(kind)}, "
                             f"found {describe(value)}")
        return value

    def parse(self, name: str, parser: Callable[[object], T], default: T) -> T:
        """Apply ``parser`` to the value; its ValueError becomes a LayoutError on this key."""
        self._seen.add(name)
        if name not in self.data:
            return default
        try:
            return parser(self.data[name])
        except ValueError as exc:
            raise self.error(name, str(exc)) from None

    def sub(self, name: str) -> Table | None:
        self._seen.add(name)
        if name not in self.data:
            return None
        return Table(self.data[name], self.file, self.path(name))

    def tables(self) -> Iterator[tuple[str, Table]]:
        """Every key of this table with its value read as a table of its own."""
        for name in list(self.data):
            sub = self.sub(name)
            assert sub is not None
            yield name, sub

    def done(self, elsewhere: Mapping[str, str] | None = None) -> None:
        """Refuse keys nobody read; ``elsewhere`` says where a key of another type applies."""
        unknown = [k for k in self.data if k not in self._seen]
        if not unknown:
            return
        key = unknown[0]
        if elsewhere and key in elsewhere:
            raise self.error(key, f"applies to {elsewhere[key]}")
        raise self.error(key, "unknown key", hint=_suggest(key, self._seen))


def _suggest(key: str, known: Iterable[str]) -> str:
    """``did you mean "type"?`` when one is close, and the keys this table takes."""
    names = sorted(known)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else "known keys here: " + ", ".join(names)


def _kind_name(kind: type) -> str:
    return {str: "a string", int: "an integer", bool: "a boolean", list: "an array",
            dict: "a table"}.get(kind, kind.__name__)


def describe(value: object) -> str:
    """A value as a message shows it: type and a short repr."""
    names = {str: "string", int: "integer", bool: "boolean", float: "float", list: "array",
             dict: "table"}
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{names.get(type(value), type(value).__name__)} {text}"
