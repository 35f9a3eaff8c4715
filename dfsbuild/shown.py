"""Values as a person reads them in text output (``plan``, ``inspect``, ``--explain``): TOML's
spelling (``true``, ``"text"``, ``[a, b]``) and a word for an absent value, never Python's
(``None``, ``True``, ``'text'``)."""

from __future__ import annotations

import json


def shown(value: object, absent: str = "-") -> str:
    if value is None:
        return absent
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(shown(v, absent) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {shown(v, absent)}" for k, v in value.items()) + "}"
    return str(value)
