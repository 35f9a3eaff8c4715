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

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dfsbuild.engine.endpoint import Endpoint

CHUNK = 1 << 20
MAX_RECORD = 1 << 16
MAX_BLOB = 1 << 50              # no output of ours is larger: a bigger size is not a size
MIN_RATE = 1 << 20              # bytes per second a transfer is allowed beyond the timeout
_HEX64 = re.compile(r"[0-9a-f]{64}")


class RemoteMiss(Exception):
    """The remote cache could not help (the message says why)."""


class _Deadline:
    """Ends a request that has not finished within ``seconds``, however slowly the server
    trickles bytes (a socket timeout only bounds each read): when the time is up, the socket
    is shut down and every read or write on it fails at once."""

    def __init__(self, seconds: float) -> None:
        self.sock: socket.socket | None = None
        self.expired = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            if self.sock is not None:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)

    def watch(self, sock: socket.socket | None) -> None:
        """The connected socket (http.client forgets it once a response will close, while
        the response still reads from it); one made after the time was up is refused."""
        with self._lock:
            self.sock = sock
            if self.expired:
                raise OSError("deadline passed")

    def cancel(self) -> None:
        self._timer.cancel()


@dataclass(frozen=True, slots=True)
class Remote:
    endpoint: Endpoint
    read_only: bool = False
    timeout: float = 30.0           # seconds for one whole request, connecting included
    slots: int = 4                  # transfers at once, across the build's processes
    slot_dir: str | None = None

    # -- HTTP --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _request(self, method: str, where: str, body: object = None,
                 extra: dict[str, str] | None = None,
                 carries: int = 0) -> Iterator[http.client.HTTPResponse]:
        """One request, ended after ``timeout`` seconds plus a second for each MiB it
        ``carries`` (a large image on a slow link still arrives; a trickle does not hold the
        build for ever)."""
        e = self.endpoint
        seconds = self.timeout + carries / MIN_RATE
        conn: http.client.HTTPConnection
        if e.scheme == "https":
            conn = http.client.HTTPSConnection(e.host, e.port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(e.host, e.port, timeout=self.timeout)
        deadline = _Deadline(seconds)
        try:
            conn.connect()
            deadline.watch(conn.sock)
            conn.request(method, f"{e.path}/{where}", body=body,  # type: ignore[arg-type]
                         headers={**dict(e.headers), **(extra or {})})
            yield conn.getresponse()
            if deadline.expired:               # a read cut short reads as a short body
                raise OSError("deadline passed")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if deadline.expired:
                raise RemoteMiss(f"{method} {where}: no complete answer within "
                                 f"{seconds:.0f} s") from None
            raise RemoteMiss(f"{method} {where}: {exc or type(exc).__name__}") from None
        finally:
            deadline.cancel()
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
    def fetch(self, key: str, dest_fd: int,
              planned_size: Callable[[], int | None] | None = None) -> tuple[int, str]:
        """The output for ``key`` into the empty file ``dest_fd``: (size, sha256), checked;
        a record whose size is not the output's planned size (when the plan knows it) names
        bytes that are not this output, and is not used."""
        with self._slot():
            with self._request("GET", f"ac/{key}") as r:
                if r.status != 200:
                    raise RemoteMiss(f"GET ac/{key[:16]}…: HTTP {r.status}" if r.status != 404
                                     else "")
                raw = r.read(MAX_RECORD + 1)
            digest, size = _parse_record(raw)
            planned = planned_size() if planned_size is not None else None
            if planned is not None and planned != size:
                raise RemoteMiss(f"ac/{key[:16]}…: the record names {size} bytes, the output "
                                 f"is planned at {planned}; not used")
            with self._request("GET", f"cas/{digest}", carries=size) as r:
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
                                    "Content-Type": "application/octet-stream"},
                                   carries=size) as r:
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
        sha, raw_size = digest["hash"], digest["sizeBytes"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        raise RemoteMiss("the action record is not an ActionResult naming one file") from None
    # proto3 JSON writes an int64 as a decimal string; a plain integer is also taken.
    if isinstance(raw_size, str) and raw_size.isascii() and raw_size.isdigit() \
            and len(raw_size) < 20:
        size = int(raw_size)
    elif isinstance(raw_size, int) and not isinstance(raw_size, bool):
        size = raw_size
    else:
        raise RemoteMiss("the action record's sizeBytes is not a size")
    if not isinstance(sha, str) or not _HEX64.fullmatch(sha):
        raise RemoteMiss("the action record names no sha256 digest")
    if not 0 <= size <= MAX_BLOB:
        raise RemoteMiss(f"the action record's size {size} is not a size")
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
