"""Content ids of clean tracked files, taken from git's index instead of read and hashed.

A fresh clone has hashed nothing yet; git has: its index holds, per tracked file, the blob id
of its content and the stat the file had when git wrote it. A file whose lstat still matches
that stat (size, mtime, ctime, inode; as git's own ``status`` decides) holds the blob, and a
blob id is exactly the content id dfsbuild computes itself (digest.content_id), so a key never
depends on which of the two answered.

Taken from the index only where git's bytes are the file's bytes, otherwise hashed:
- the repository uses SHA-1 object ids (a SHA-256 repository's ids are another function);
- ``core.autocrlf`` is not ``true`` or ``input``, and no attribute that converts content
  applies to the file (``text``, ``eol``, ``crlf``, ``filter``, ``ident``,
  ``working-tree-encoding``): the index holds the cleaned content, not the file's;
- the entry is a regular file at stage 0, not marked assume-unchanged, skip-worktree or
  intent-to-add, and the file is a regular file whose stat matches the entry's (symlinks,
  submodules and files of nested repositories are not in the entry list);
- the file's mtime and ctime are older than the index itself (git's racy-clean rule: a file
  changed in the index's own timestamp tick could match a stale stat).
Any failure to ask git (no git, not a work tree, an old git) means: hash everything.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from dataclasses import dataclass

_ENTRY = re.compile(
    rb"(\d{6}) ([0-9a-f]{40}) (\d)\t([^\0]*)\0"
    rb"  ctime: (\d+):(\d+)\n  mtime: (\d+):(\d+)\n  dev: \d+\tino: (\d+)\n"
    rb"  uid: \d+\tgid: \d+\n  size: (\d+)\tflags: ([0-9a-f]+)\n"
)
_NOT_CLEAN_FLAGS = 0x8000 | 1 << 29 | 1 << 30      # assume-unchanged, intent-to-add, skip-wt
_CONVERTING = (b"text", b"eol", b"crlf", b"filter", b"ident", b"working-tree-encoding")
_U32 = 0xFFFFFFFF
_NS = 1_000_000_000

Stat = tuple[int, int, int, int, int, int]   # ctime s, ns; mtime s, ns; ino; size (32-bit)


@dataclass(frozen=True, slots=True)
class GitIndex:
    """The entries of one work tree's index that git's bytes may stand for, by inode number
    (what a match needs anyway: two files never share an inode and a stat)."""

    entries: dict[int, tuple[str, Stat]]
    index_mtime_ns: int

    def content_id(self, st: os.stat_result) -> str | None:
        """The blob id of the file whose stat is ``st`` when git's index vouches for it as it
        is; None when the file must be hashed."""
        found = self.entries.get(st.st_ino & _U32)
        if found is None or max(st.st_mtime_ns, st.st_ctime_ns) >= self.index_mtime_ns:
            return None
        blob, recorded = found
        now = (st.st_ctime_ns // _NS & _U32, st.st_ctime_ns % _NS,
               st.st_mtime_ns // _NS & _U32, st.st_mtime_ns % _NS,
               st.st_ino & _U32, st.st_size & _U32)
        return blob if now == recorded else None


def load(start: str) -> GitIndex | None:
    """The index of the git work tree holding ``start``, or None (see the module's rules)."""
    head = _git(start, "rev-parse", "--show-toplevel", "--show-object-format",
                "--git-path", "index")
    if head is None:
        return None
    lines = head.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) != 3 or lines[1] != "sha1":
        return None
    top, index = lines[0], os.path.join(start, lines[2])
    autocrlf = _git(start, "config", "--get", "core.autocrlf", ok=(0, 1))
    if autocrlf is None or autocrlf.strip().lower() in (b"true", b"input"):
        return None
    try:
        index_mtime = os.stat(index).st_mtime_ns
    except OSError:
        return None
    # The entries and the attributes, asked at once (two git processes, two cores); the
    # entries are parsed while git still answers for the attributes.
    found: list[set[bytes] | None] = [None]
    attrs = threading.Thread(target=lambda: found.__setitem__(0, _converted(top)))
    attrs.start()
    listing = _git(top, "ls-files", "-s", "--debug", "-z")
    parsed: dict[bytes, tuple[int, tuple[str, Stat]]] = {}
    for m in _ENTRY.finditer(listing or b""):
        mode, blob, stage, path = m.group(1, 2, 3, 4)
        if mode not in (b"100644", b"100755") or stage != b"0" \
                or int(m.group(11), 16) & _NOT_CLEAN_FLAGS:
            continue
        c_s, c_ns, m_s, m_ns, ino, size = (int(g) for g in m.group(5, 6, 7, 8, 9, 10))
        parsed[path] = (ino, (blob.decode(), (c_s, c_ns, m_s, m_ns, ino, size)))
    attrs.join()
    skip = found[0]
    if listing is None or skip is None:
        return None
    entries = dict(found_entry for path, found_entry in parsed.items() if path not in skip)
    return GitIndex(entries, index_mtime)


def _converted(top: str) -> set[bytes] | None:
    """The tracked paths whose checkout converts content (every source of attributes git
    reads); None when git cannot say. ``git ls-files`` feeds ``git check-attr --all``
    directly (no copy through Python), which names only the attributes that are specified:
    nothing at all where no ``.gitattributes`` applies."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        files = subprocess.Popen(["git", "ls-files", "-z"], cwd=top, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert files.stdout is not None
        with files.stdout:
            attrs = subprocess.run(["git", "check-attr", "-z", "--stdin", "--all"], cwd=top,
                                   env=env, stdin=files.stdout, capture_output=True,
                                   check=False)
        if files.wait() != 0 or attrs.returncode != 0:
            return None
    except OSError:
        return None
    fields = attrs.stdout.split(b"\0")
    # path, attribute, value triples; "unset" (-text, -filter ...) converts nothing
    return {fields[i] for i in range(0, len(fields) - 2, 3)
            if fields[i + 1] in _CONVERTING and fields[i + 2] not in (b"unspecified", b"unset")}


def _git(cwd: str, *args: str, ok: tuple[int, ...] = (0,),
         stdin: bytes | None = None) -> bytes | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"}, check=False)
    except OSError:
        return None
    return proc.stdout if proc.returncode in ok else None
