"""The one-output build step: restore from the cache, patch in place, or write; check that
what went in is what was hashed; store; record. Faults become DfsbuildErrors, never
tracebacks, and never leave a half-written output or a wrong cache entry behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dfsbuild.engine.cache import BadEntry
from dfsbuild.engine.progress import Progress
from dfsbuild.engine.settings import Settings
from dfsbuild.engine.state import Record, StateStore, explain
from dfsbuild.errors import FAULTS, DfsbuildError, InputError, warn
from dfsbuild.faults import point
from dfsbuild.fileio.atomic import TempOutput, remove_stale_temporaries
from dfsbuild.fileio.digest import sha256_fd, sha256_path
from dfsbuild.trees.inputs import Input, check_inputs

if TYPE_CHECKING:                # http.client and ssl only when a remote cache is used
    from dfsbuild.engine.datapatch import DataPatch, Patched
    from dfsbuild.engine.remote import Remote
    from dfsbuild.engine.write import Rewritten

Source = tuple[str, str, str]      # (task, key, output) of an output copied into this one
Reuse = dict[tuple[int, int], str]  # (offset, size) -> content there


@dataclass(slots=True)
class Job:
    task: str
    key: str
    output: str
    material: dict[str, object]
    write: Callable[[int], None]             # fills the empty file open on the descriptor
    inputs: tuple[Input, ...] = ()
    sources: tuple[Source, ...] = ()
    cacheable: bool = True
    # Disks: the frame a later patch compares with, and the patch itself (True if done).
    frame: Callable[[], dict[str, object]] | None = None
    patch: Callable[[int, Record, StateStore], bool] | None = None
    # Files made from the output once it is in place (a disk's .bmap, .simg, manifest),
    # given the build state (the manifest names the images' sha256s).
    after: Callable[[StateStore], None] | None = None
    # The output's size as planned, asked only to check a remote record against it.
    planned_size: Callable[[], int | None] | None = None
    # Images: the writer given the previous build's extents (the file holds its bytes), or
    # None (an empty file); gives the new extents.
    rewrite: Callable[[int, Reuse | None], Rewritten] | None = None
    # Images whose files' data can be patched alone (datapatch.py), or None.
    data: DataPatch | None = None

    @property
    def placement(self) -> str | None:
        return self.data.placement if self.data is not None else None


def produce(job: Job, settings: Settings) -> dict[str, object]:
    start = time.monotonic()
    state = settings.state
    try:
        reason = ""
        if settings.explain or settings.json:  # the old manifest can be large: read on demand
            reason = explain(state.previous_material(job.task), job.material, job.output)
        # Run although current: forced (``--force``, ``doit -a``), so the cache is not asked.
        forced = settings.force or state.current(job.task, job.key, job.output) is not None
        if forced:
            reason = "forced"
        remove_stale_temporaries(job.output)
        use_cache = job.cacheable and not settings.no_cache
        outcome = ""
        record: Record | None = None
        with Progress(job.task, settings) as progress:
            remote = settings.remote if use_cache else None
            remote_note = ""
            upload = remote is not None and not remote.read_only
            # A data patch writes only the changed files' bytes: cheaper than a restore,
            # which copies the whole output, also when the cache holds this key (an edit
            # undone, a branch checked out again).
            if job.data is not None and not forced:
                record = _patch_data(job, settings, use_cache, whole_sha=upload or settings.json)
                outcome = "patched" if record is not None else ""
            if record is None and use_cache and not forced:
                record = _restore(job, settings, progress)
                outcome = "restored" if record is not None else ""
            if record is None and remote is not None and not forced:
                record, remote_note = _fetch(job, settings, remote, progress)
                outcome = "remote" if record is not None else ""
            if record is None and job.patch is not None and not forced:
                record = _patch(job, state, settings)
                outcome = "patched" if record is not None else ""
            if record is None and job.rewrite is not None and not forced:
                record = _rewrite(job, settings, use_cache, whole_sha=upload or settings.json)
                outcome = "built" if record is not None else ""
            if record is None:
                record = _write(job, settings, use_cache, progress,
                                whole_sha=upload or settings.json)
                outcome = "built"
            if remote is not None and upload and record.sha256 and \
                    outcome in ("built", "patched"):  # written here, however: shared
                remote_note = _upload(job, remote, record) or remote_note
            if job.after is not None:
                job.after(settings.state)
    except OSError as exc:
        raise _fault(exc, job.output) from None
    sha = record.sha256
    if sha is None and settings.json:
        sha = sha256_path(job.output, record.size)
    return {"outcome": outcome, "reason": reason, "path": job.output, "size": record.size,
            "sha256": sha, "seconds": round(time.monotonic() - start, 3),
            "remote_problem": remote_note}


def _fetch(job: Job, settings: Settings, remote: Remote,
           progress: Progress) -> tuple[Record | None, str]:
    """From the remote cache, checked, into the output; (None, why) on any remote problem
    ("" for a plain miss). Not copied into the local cache: the remote holds it, and a
    second copy would double the bytes a fresh clone writes."""
    from dfsbuild.engine.remote import RemoteMiss

    with TempOutput(job.output) as out:
        progress.watch(out.tmp)
        try:
            size, sha = remote.fetch(job.key, out.fd, job.planned_size)
        except RemoteMiss as exc:
            if str(exc):
                warn(f"remote cache: {job.task}: {exc}; building instead")
            return None, str(exc)
        os.ftruncate(out.fd, size)
        st = out.commit()
    return settings.state.record(job.task, job.key, st, sha, job.material), ""


def _upload(job: Job, remote: Remote, record: Record) -> str:
    """The built output to the remote cache; the problem, if any (never a failure)."""
    from dfsbuild.engine.remote import RemoteMiss

    assert record.sha256 is not None
    try:
        fd = os.open(job.output, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        remote.upload(job.key, fd, record.size, record.sha256, os.path.basename(job.output))
    except RemoteMiss as exc:
        warn(f"remote cache: {job.task} not uploaded: {exc}")
        return str(exc)
    finally:
        os.close(fd)
    return ""


def _restore(job: Job, settings: Settings, progress: Progress) -> Record | None:
    with TempOutput(job.output) as out:
        progress.watch(out.tmp)
        try:
            found = settings.cache.restore(job.key, out.fd)
        except BadEntry as exc:
            warn(f"cache entry {job.key[:16]} for {job.task} is damaged ({exc}); dropped, "
                 "building instead")
            return None
        if found is None:
            return None
        entry, extents = found
        if job.rewrite is not None:           # the next edit rewrites it in place
            settings.state.record_extents(job.task, job.key, extents)
        st = out.commit()
    return settings.state.record(job.task, job.key, st, entry.sha256, job.material,
                                 placement=job.placement)


def _patch(job: Job, state: StateStore, settings: Settings) -> Record | None:
    """Rewrite only what changed, in place, when the output on disk is the one the state
    recorded and not shared with another name."""
    assert job.patch is not None and job.frame is not None
    found = _recorded_output(job, state, os.O_RDWR)
    if found is None:
        return None
    old, fd, st = found
    try:
        if not old.frame or st.st_nlink != 1:
            return None
        state.begin_patch(job.task, old)       # an interrupted patch is never current
        point("patch-begun")
        if not job.patch(fd, old, state):
            state.forget(job.task)
            return None
        check_inputs(job.inputs)
        _check_sources(state, job.sources)
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return state.record(job.task, job.key, st, None, job.material, job.frame())


def _rewrite(job: Job, settings: Settings, use_cache: bool, whole_sha: bool) -> Record | None:
    """Write the image over its previous build, in place: only what differs is written (its
    extents say where each file's data lies). Only when the output on disk is the one the
    state recorded, with its extents, and no other name shares it. Until the new record, the
    state says "in progress": an interrupted rewrite is never taken as current, and never
    reused (the next build writes it whole)."""
    assert job.rewrite is not None
    state = settings.state
    found = _recorded_output(job, state, os.O_RDWR)
    if found is None:
        return None
    old, fd, st = found
    try:
        reuse = state.extents(job.task, old.key)
        if reuse is None or st.st_nlink != 1 or not _room_for(job, fd):
            return None
        rewrite = job.rewrite
        return _in_place(job, settings, old, fd, lambda: rewrite(fd, reuse), use_cache,
                         whole_sha, derived=False)
    finally:
        os.close(fd)


def _in_place(job: Job, settings: Settings, old: Record, fd: int,
              change: Callable[[], Rewritten | Patched], use_cache: bool, whole_sha: bool,
              derived: bool) -> Record:
    """Change the output of ``old`` into that of ``job`` in place: "in progress" first, then
    ``change``, then store (``derived``: the cache entry from the previous one, the inputs
    checked as they were copied) and record, with the spans changed for a disk holding it."""
    state = settings.state
    state.begin_patch(job.task, old)
    point("rewrite-begun")
    try:
        done = change()
    except OSError as exc:
        raise _fault(exc, job.output, in_place=True) from None
    point("rewritten")
    sha = _check_and_store(job, settings, fd, use_cache, whole_sha, done,
                           like=(old.key, done.written) if derived else None)
    state.record_changes(job.task, old.key, job.key, done.written)
    return state.record(job.task, job.key, os.fstat(fd), sha, job.material,
                        placement=job.placement)


def _patch_data(job: Job, settings: Settings, use_cache: bool,
                whole_sha: bool) -> Record | None:
    """Write only the data of the files whose contents changed (datapatch.py), in place,
    when the output on disk is the previous build's, of the same placement key, and that
    build recorded where each file's data lies. "In progress" until the new record, as a
    rewrite. The inputs not copied are not checked again: the output holds what the previous
    build checked, which is what the new key names; each file copied is hashed as it is."""
    from dfsbuild.engine.datapatch import changed, write_changes

    assert job.data is not None
    state = settings.state
    found = _recorded_output(job, state, os.O_RDWR)
    if found is None:
        return None
    old, fd, st = found
    try:
        named = state.named_extents(job.task, old.key)
        if old.placement != job.data.placement or named is None or st.st_nlink != 1:
            return None
        spans, names = named
        changes = changed(job.data.files(), spans, names, job.data.data_from)
        if changes is None:
            return None
        return _in_place(job, settings, old, fd,
                         lambda: write_changes(fd, changes, spans, names), use_cache,
                         whole_sha, derived=True)
    finally:
        os.close(fd)


def _room_for(job: Job, fd: int) -> bool:
    """Whether the file system holds the whole new image beside what it holds now: when it
    does not, the image is written to a temporary instead, which fails (the disk being full)
    before the old output is touched."""
    planned = job.planned_size() if job.planned_size is not None else None
    if planned is None:
        return False
    vfs = os.fstatvfs(fd)
    return vfs.f_bavail * vfs.f_frsize >= planned


def _write(job: Job, settings: Settings, use_cache: bool, progress: Progress,
           whole_sha: bool = False) -> Record:
    """Write the output whole into a temporary that replaces it once checked and stored."""
    with TempOutput(job.output) as out:
        progress.watch(out.tmp)
        written = None
        if job.rewrite is not None:
            written = job.rewrite(out.fd, None)
        else:
            job.write(out.fd)
        point("written")
        sha = _check_and_store(job, settings, out.fd, use_cache, whole_sha, written)
        point("stored")
        st = out.commit()
    frame = job.frame() if job.frame is not None else None
    return settings.state.record(job.task, job.key, st, sha, job.material, frame,
                                 job.placement)


def _check_and_store(job: Job, settings: Settings, fd: int, use_cache: bool, whole_sha: bool,
                     written: Rewritten | Patched | None,
                     like: tuple[str, list[tuple[int, int]]] | None = None) -> str | None:
    """Check that the inputs are what was hashed (not after a data patch, ``like``: it
    checked what it copied, and the cache derives the entry from that of ``like[0]``);
    store the output in the cache (piece by piece: only what the cache lacks is hashed and
    copied); note its extents and the files' names. The whole file's sha256 only when asked
    (an upload, --json)."""
    if like is None:
        check_inputs(job.inputs)
    _check_sources(settings.state, job.sources)
    extents = written.extents if written is not None else None
    size = os.fstat(fd).st_size
    sha = sha256_fd(fd, size) if whole_sha else None
    if use_cache:
        try:
            settings.cache.store(job.key, fd, size, sha, extents, like)
        except OSError as exc:
            warn(f"{settings.cache_dir}: {job.task} not stored in the cache: "
                 f"{FAULTS.get(exc.errno or 0, exc.strerror)}")
    if written is not None:
        settings.state.record_extents(job.task, job.key, written.extents, written.names)
    return sha


def _recorded_output(job: Job, state: StateStore,
                     mode: int) -> tuple[Record, int, os.stat_result] | None:
    """The output opened (``mode``), when it is the file the state recorded for its last
    build, complete (not "in progress"); the caller closes the descriptor."""
    old = state.load(job.task)
    if old is None or old.in_progress:
        return None
    try:
        fd = os.open(job.output, mode | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if old.matches(st):
        return old, fd, st
    os.close(fd)
    return None


def _check_sources(state: StateStore, sources: tuple[Source, ...]) -> None:
    for task, key, output in sources:
        if state.current(task, key, output) is None:
            raise InputError(f"{output}: changed during the build; build again")


def _fault(exc: OSError, output: str, in_place: bool = False) -> DfsbuildError:
    what = FAULTS.get(exc.errno or 0, exc.strerror or str(exc))
    where = exc.filename if isinstance(exc.filename, str) else os.path.dirname(output)
    left = ("was being rewritten in place and is incomplete; the next build writes it whole"
            if in_place else "was left as it was")
    return DfsbuildError(f"{where}: {what}; {output} {left}")
