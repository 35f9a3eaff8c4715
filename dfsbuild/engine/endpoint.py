"""The remote cache's address and extra header, checked once when the settings are read: a
malformed setting is one error naming it, never a traceback and never a secret printed.
Credentials in a URL are shown as ``user:***`` wherever the URL is printed, as git and curl
do. No HTTP module is imported here: a build that needs no transfer never loads one."""

from __future__ import annotations

import base64
import contextlib
import netrc
import re
import urllib.parse
from dataclasses import dataclass

from dfsbuild.errors import DfsbuildError

# RFC 9110 §5.1: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; safe on any string. Anything
    before the last ``@`` may be credentials (a password may hold an unescaped ``/``): rather
    too much is hidden than too little."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    shown = f"{user}:***" if colon else user
    return f"{scheme}{sep}{shown}@{host}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str                     # "http" or "https"
    host: str
    port: int
    path: str                       # no trailing slash
    headers: tuple[tuple[str, str], ...]
    shown: str                      # the URL as it may be printed


def parse_endpoint(url: str, header: str | None, url_setting: str,
                   header_setting: str) -> Endpoint:
    """Check ``url`` and ``header`` (their settings' names say where they came from)."""
    shown = redact(url)

    def bad(why: str) -> DfsbuildError:
        return DfsbuildError(f"{url_setting}={shown!r}: {why}",
                             hint="expected http://HOST[:PORT]/PATH or https://…")
    try:
        u = urllib.parse.urlsplit(url)
        port = u.port
    except ValueError as exc:
        raise bad(f"not a URL ({exc})") from None
    if u.scheme not in ("http", "https"):
        raise bad("not an http:// or https:// URL")
    if not u.hostname:
        raise bad("names no host")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise bad("holds a space or a control character")
    headers = [("User-Agent", "dfsbuild")]
    user, password = u.username, u.password
    if user is None:
        with contextlib.suppress(OSError, netrc.NetrcParseError):
            found = netrc.netrc().authenticators(u.hostname)
            if found is not None:
                user, password = found[0], found[2]
    if user is not None:
        token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password or '')}"
        headers.append(("Authorization",
                        "Basic " + base64.b64encode(token.encode()).decode()))
    if header:
        headers.append(_header(header, header_setting))
    return Endpoint(u.scheme, u.hostname, port or (443 if u.scheme == "https" else 80),
                    u.path.rstrip("/"), tuple(headers), shown)


def _header(text: str, setting: str) -> tuple[str, str]:
    """``Name: value``; the value is a secret more often than not, so no message shows it."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not _TOKEN.fullmatch(name):
        raise DfsbuildError(f"{setting}: expected 'Name: value' with a header name of letters, "
                            "digits and -, found no such name (the value is not shown)")
    if any(c in value for c in "\r\n\0"):
        raise DfsbuildError(f"{setting}: the value of {name} holds a line break or a NUL "
                            "(the value is not shown)")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise DfsbuildError(f"{setting}: the value of {name} holds characters HTTP headers "
                            "cannot carry (Latin-1 only; the value is not shown)") from None
    return name, value
