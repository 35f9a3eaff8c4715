"""A remote cache on a server a team already runs, in the Bazel HTTP cache layout: an output's
bytes at ``URL/cas/<sha256>``, a small JSON ActionResult naming them at ``URL/ac/<key>``.
bazel-remote serves it; so does any WebDAV server (nginx, Apache, lighttpd, rclone).

A fetch streams the blob into the output's temporary file and checks its size and sha256
before anyone uses it; an upload streams from the file with a Content-Length, blob first,
record last. Every remote fault is a ``RemoteMiss`` (a warning and a cache miss for the
caller), never a build failure. Transfers across the build's processes are bounded by lock
slots in the build directory.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import http.client
import json
import netrc
import os
import re
import ssl
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK = 1 << 20
MAX_RECORD = 1 << 16
_HEX64 = re.compile(r"[0-9a-f]{64}")


class RemoteMiss(Exception):
    """The remote cache could not help (the message says why)."""


@dataclass(frozen=True, slots=True)
class Remote:
    url: str                        # base URL, no trailing slash
    read_only: bool = False
    header: str | None = None       # "Name: value" sent with every request
    timeout: float = 30.0
    slots: int = 4                  # transfers at once, across the build's processes
    slot_dir: str | None = None

    # -- HTTP --------------------------------------------------------------------------------
    def _parts(self) -> tuple[str, str, int, str, dict[str, str]]:
        u = urllib.parse.urlsplit(self.url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise RemoteMiss(f"{self.url!r} is not an http:// or https:// URL")
        port = u.port or (443 if u.scheme == "https" else 80)
        headers = {"User-Agent": "dfsbuild"}
        user, password = u.username, u.password
        if user is None:
            with contextlib.suppress(OSError, netrc.NetrcParseError):
                found = netrc.netrc().authenticators(u.hostname)
                if found is not None:
                    user, password = found[0], found[2]
        if user is not None:
            token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        if self.header:
            name, _, value = self.header.partition(":")
            headers[name.strip()] = value.strip()
        return u.scheme, u.hostname, port, u.path.rstrip("/"), headers

    def _connect(self) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
        scheme, host, port, path, headers = self._parts()
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        return conn, path, headers

    @contextlib.contextmanager
    def _request(self, method: str, where: str, body: object = None,
                 extra: dict[str, str] | None = None) -> Iterator[http.client.HTTPResponse]:
        conn, path, headers = self._connect()
        try:
            conn.request(method, f"{path}/{where}", body=body,  # type: ignore[arg-type]
                         headers={**headers, **(extra or {})})
            yield conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteMiss(f"{method} {where}: {exc or type(exc).__name__}") from None
        finally:
            conn.close()

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        """One of ``slots`` lock files in ``slot_dir``, held for one transfer."""
        if self.slot_dir is None:
            yield
            return
        os.makedirs(self.slot_dir, exist_ok=True)
        while True:
            for i in range(self.slots):
                fd = os.open(os.path.join(self.slot_dir, f"remote-{i}"),
                             os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                try:
                    yield
                finally:
                    os.close(fd)
                return
            time.sleep(0.05)

    # -- the protocol ------------------------------------------------------------------------
    def fetch(self, key: str, dest_fd: int) -> tuple[int, str]:
        """The output for ``key`` into the empty file ``dest_fd``: (size, sha256), checked."""
        with self._slot():
            with self._request("GET", f"ac/{key}") as r:
                if r.status != 200:
                    raise RemoteMiss(f"GET ac/{key[:16]}…: HTTP {r.status}" if r.status != 404
                                     else "")
                raw = r.read(MAX_RECORD + 1)
            digest, size = _parse_record(raw)
            with self._request("GET", f"cas/{digest}") as r:
                if r.status != 200:
                    raise RemoteMiss(f"GET cas/{digest[:16]}…: HTTP {r.status}")
                h = hashlib.sha256()
                done = 0
                while chunk := r.read(CHUNK):       # a dropped connection: RemoteMiss
                    if done + len(chunk) > size:
                        raise RemoteMiss(f"cas/{digest[:16]}…: more than {size} bytes")
                    os.pwrite(dest_fd, chunk, done)
                    h.update(chunk)
                    done += len(chunk)
        if done != size:
            raise RemoteMiss(f"cas/{digest[:16]}…: {done} bytes, the record says {size}")
        if h.hexdigest() != digest:
            raise RemoteMiss(f"cas/{digest[:16]}…: the bytes are not the ones named "
                             f"(sha256 {h.hexdigest()[:16]}…); not used")
        return size, digest

    def upload(self, key: str, src_fd: int, size: int, sha256: str, name: str) -> None:
        """Blob (if the server lacks it), then the record naming it."""
        if self.read_only:
            return
        with self._slot():
            with self._request("HEAD", f"cas/{sha256}") as r:
                r.read()
                have = r.status == 200
            if not have:
                body = _FdReader(src_fd, size)
                with self._request("PUT", f"cas/{sha256}", body,
                                   {"Content-Length": str(size),
                                    "Content-Type": "application/octet-stream"}) as r:
                    r.read()
                    if r.status not in (200, 201, 204):
                        raise RemoteMiss(f"PUT cas/{sha256[:16]}…: HTTP {r.status}")
            record = json.dumps(action_result(name, sha256, size)).encode()
            with self._request("PUT", f"ac/{key}", record,
                               {"Content-Length": str(len(record)),
                                "Content-Type": "application/json"}) as r:
                r.read()
                if r.status not in (200, 201, 204):
                    raise RemoteMiss(f"PUT ac/{key[:16]}…: HTTP {r.status}")


def action_result(name: str, sha256: str, size: int) -> dict[str, object]:
    """The ActionResult (REAPI, proto3 JSON) naming one output file."""
    return {"outputFiles": [{"path": name, "digest": {"hash": sha256,
                                                      "sizeBytes": str(size)}}]}


def _parse_record(raw: bytes) -> tuple[str, int]:
    if len(raw) > MAX_RECORD:
        raise RemoteMiss("the action record is too large")
    try:
        data = json.loads(raw)
        digest = data["outputFiles"][0]["digest"]
        sha, size = digest["hash"], int(digest["sizeBytes"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise RemoteMiss("the action record is not an ActionResult naming one file") from None
    if not isinstance(sha, str) or not _HEX64.fullmatch(sha) or size < 0:
        raise RemoteMiss("the action record names no sha256 digest")
    return sha, size


class _FdReader:
    """A file-like view of ``size`` bytes of a descriptor, read in chunks (http.client streams
    it, so an image is never held in memory)."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size, self.pos = fd, size, 0

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.pos
        want = left if n is None or n < 0 else min(n, left)
        data = os.pread(self.fd, min(want, CHUNK), self.pos) if want else b""
        self.pos += len(data)
        return data
