"""The remote cache (Bazel HTTP cache layout): against a real WebDAV server (nginx), a
checkout uploads and a fresh clone restores every image byte-identically, also through
doit; a misbehaving server (500s, dropped bodies, wrong bytes, too slow, down) is a cache miss
with a warning, never a failed build; the requests are the ones bazel-remote expects."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from bench.nginx_dav import free_port, nginx_dav
from tests.conftest import ROOT, need_tool
from tests.engine_project import ALL, build, make_project, outputs

IMAGES = {"board:image.inner", "board:image.outer", "board:image.other"}


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with nginx_dav(need_tool("nginx"), tmp_path / "nginx") as served:
        yield served


def _clone(project: Path, tmp_path: Path, name: str) -> Path:
    """A fresh checkout: the sources, no build directory, no cache."""
    dest = tmp_path / name
    shutil.copytree(project, dest, symlinks=True, ignore=shutil.ignore_patterns("build"))
    return dest


@pytest.mark.tool
def test_a_fresh_clone_restores_everything_from_nginx(nginx: tuple[str, Path],
                                                      tmp_path: Path) -> None:
    url, store = nginx
    project = make_project(tmp_path)
    first = build(project, "--remote-cache", url)
    assert set(first["built"]) == ALL
    # What the server holds: every image's bytes by sha256, a JSON record per key.
    for row in first["outputs"]:  # type: ignore[attr-defined]
        if row["task"] in IMAGES:
            blob = store / "cas" / row["sha256"]
            assert blob.read_bytes() == Path(row["path"]).read_bytes()
    records = list((store / "ac").iterdir())
    assert len(records) == 3
    record = json.loads(records[0].read_text())
    (out,) = record["outputFiles"]
    assert set(out) == {"path", "digest"} and set(out["digest"]) == {"hash", "sizeBytes"}
    clone = _clone(project, tmp_path, "clone")
    again = build(clone, "--remote-cache", url)
    assert set(again["remote"]) == IMAGES and again["built"] == ["board:disk"]
    assert outputs(clone) == outputs(project)
    # doit through the project's dodo.py, from another fresh clone and the variable.
    other = _clone(project, tmp_path, "other")
    shutil.copy(ROOT / "dodo.py", other / "dodo.py")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DFSBUILD_REMOTE_CACHE": url}
    doit = subprocess.run([sys.executable, "-m", "doit"], cwd=other, env=env,
                          capture_output=True, text=True)
    assert doit.returncode == 0, doit.stderr
    assert "3 restored from remote cache" in doit.stdout
    assert outputs(other) == outputs(project)


class Faulty(BaseHTTPRequestHandler):
    """A cache server that misbehaves as ``mode`` says, and notes every request."""

    mode = "ok"
    store: ClassVar[dict[str, bytes]] = {}
    seen: ClassVar[list[tuple[str, str, dict[str, str], bytes]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def do_PUT(self) -> None:
        body = self._body()
        self.seen.append(("PUT", self.path, dict(self.headers), body))
        if self.mode == "500":
            self.send_error(500)
            return
        self.store[self.path] = body
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self.seen.append(("HEAD", self.path, dict(self.headers), b""))
        self.send_response(200 if self.path in self.store and self.mode != "500" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, dict(self.headers), b""))
        if self.mode == "500":
            self.send_error(500)
            return
        body = self.store.get(self.path)
        if body is None:
            self.send_error(404)
            return
        if self.mode == "slow":
            time.sleep(3)
        if "/ac/" in self.path and self.mode in RECORDS:
            body = RECORDS[self.mode](self.path)
        if self.mode == "trickle":                 # a byte a second, the socket never idle
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(min(len(body), 60)):
                try:
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.5)
            return
        if "/cas/" in self.path and self.mode == "wrong":
            body = bytes(b ^ 0xFF for b in body)          # right size, other bytes
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if "/cas/" in self.path and self.mode == "drop":
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


def _other_size(path: str) -> bytes:
    """The record of another output, of another size: a valid blob, not this output."""
    mine = json.loads(Faulty.store[path])["outputFiles"][0]["digest"]["sizeBytes"]
    for other, body in Faulty.store.items():
        if "/ac/" in other and json.loads(body)["outputFiles"][0]["digest"]["sizeBytes"] \
                != mine:
            return body
    raise AssertionError("every output has the same size")


RECORDS = {
    "deep": lambda path: b"[" * 30_000 + b"]" * 30_000,
    "huge": lambda path: Faulty.store[path].replace(b'"sizeBytes": "', b'"sizeBytes": 1e400,'
                                                    b' "x": "'),
    "other-size": _other_size,
}


@pytest.fixture
def faulty() -> Iterator[str]:
    Faulty.mode, Faulty.store, Faulty.seen = "ok", {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Faulty)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/c"
    finally:
        server.shutdown()


@pytest.mark.parametrize("mode", ["500", "drop", "wrong", "slow", "down", "trickle", "deep",
                                  "huge", "other-size"])
def test_a_misbehaving_server_is_only_a_miss(mode: str, faulty: str, tmp_path: Path) -> None:
    project = make_project(tmp_path)
    build(project, "--remote-cache", faulty)               # fills the server
    assert len(Faulty.store) == 6
    expected = outputs(project)
    clone = _clone(project, tmp_path, "clone")
    Faulty.mode = mode
    url = f"http://127.0.0.1:{free_port()}/c" if mode == "down" else faulty
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dfsbuild", "build", "--remote-cache", url],
                          cwd=clone, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT),
                               "DFSBUILD_REMOTE_CACHE_TIMEOUT": "1"})
    assert proc.returncode == 0, proc.stderr
    if mode == "trickle":   # each request ends at its deadline (1 s here), not at 60 bytes
        assert time.monotonic() - began < 20, proc.stderr
        assert "no complete answer within 1 s" in proc.stderr
    if mode == "other-size":
        assert "the output is planned at" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("warning: remote cache:") >= 3, proc.stderr
    assert "0 restored from remote cache" in proc.stdout
    assert "remote cache problems" in proc.stdout
    assert outputs(clone) == expected
    if mode == "wrong":          # the bad blob was not uploaded over the good one
        assert not any(m == "PUT" and "/cas/" in p for m, p, _, _ in Faulty.seen[12:])


def test_the_requests_are_the_protocols(faulty: str, tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = {"DFSBUILD_REMOTE_CACHE_HEADER": "Authorization: Bearer s3cret"}
    result = build(project, "--remote-cache", faulty, env=env)
    shas = {r["task"]: (r["sha256"], r["size"]) for r in result["outputs"]  # type: ignore
            if r["task"] in IMAGES}
    puts = [(p, h, b) for m, p, h, b in Faulty.seen if m == "PUT"]
    heads = [p for m, p, _, _ in Faulty.seen if m == "HEAD"]
    assert sorted(heads) == sorted(f"/c/cas/{sha}" for sha, _ in shas.values())
    assert all(h["Authorization"] == "Bearer s3cret" for _, h, _ in puts)
    blobs = {p: b for p, h, b in puts if p.startswith("/c/cas/")}
    for sha, size in shas.values():
        body = blobs[f"/c/cas/{sha}"]
        assert hashlib.sha256(body).hexdigest() == sha and len(body) == size
    acs = [(p, h, b) for p, h, b in puts if p.startswith("/c/ac/")]
    assert len(acs) == 3
    for path, headers, body in acs:
        assert len(path.rsplit("/", 1)[1]) == 64
        assert headers["Content-Type"] == "application/json"
        assert int(headers["Content-Length"]) == len(body)
        (out,) = json.loads(body)["outputFiles"]
        assert (out["digest"]["hash"], int(out["digest"]["sizeBytes"])) in shas.values()
    # A blob uploaded before each record (bazel-remote validates records against the CAS).
    order = [p for m, p, _, _ in Faulty.seen if m == "PUT"]
    for i, p in enumerate(order):
        if p.startswith("/c/ac/"):
            named = json.loads(Faulty.store[p])["outputFiles"][0]["digest"]["hash"]
            assert f"/c/cas/{named}" in order[:i]
    # A read-only build of a clone fetches with GET ac then GET cas, and puts nothing;
    # credentials in the URL become basic authorization.
    Faulty.seen.clear()
    clone = _clone(project, tmp_path, "clone")
    url = faulty.replace("http://", "http://ci:pa%20ss@")
    again = build(clone, "--remote-cache", url, "--remote-cache-read-only")
    assert set(again["remote"]) == IMAGES
    methods = [(m, p.split("/")[2]) for m, p, _, _ in Faulty.seen]
    assert ("PUT", "cas") not in methods and ("PUT", "ac") not in methods
    assert methods.count(("GET", "ac")) == 3 and methods.count(("GET", "cas")) == 3
    assert all(h["Authorization"] == "Basic Y2k6cGEgc3M=" for _, _, h, _ in Faulty.seen)


@pytest.mark.tool
def test_an_image_rewritten_in_place_is_uploaded_too(nginx: tuple[str, Path],
                                                      tmp_path: Path) -> None:
    """An edit rewrites the image over its previous build (not through a temporary); the
    result still goes to the server, and a fresh clone of the edited project gets it."""
    url, _store = nginx
    project = make_project(tmp_path)
    build(project, "--remote-cache", url)
    with open(project / "trees" / "other" / "sub" / "file.txt", "a") as f:
        f.write("one more line\n")
    edited = build(project, "--remote-cache", url)
    assert edited["built"] == ["board:image.other"], edited
    clone = _clone(project, tmp_path, "clone")
    again = build(clone, "--remote-cache", url)
    assert set(again["remote"]) == IMAGES, again
    assert outputs(clone) == outputs(project)
