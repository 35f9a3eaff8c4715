"""A disk compressed for release (``disk.compress``, ``mkfs --compress``): ``.xz`` or ``.zst``,
the same bytes from the same input on any machine, whatever its number of cores.

- xz: preset 6, CRC64 checks, as ``xz -6``. The input is cut into pieces of 24 MiB (what
  ``xz -T0`` puts in one block at this preset), each compressed as an xz stream of its own on
  as many threads as there are cores; the file is those streams in order, which ``xz -d``,
  ``unxz``, Python's ``lzma.open`` and bmaptool read as one. The cut depends on the input only.
- zstd: level 3 (zstd's default), a content checksum, zstd's own worker threads (its output
  is the same for any number of workers from one up; dfsbuild always asks for at least one).
  Until Python 3.14 brings ``compression.zstd``, its backport (the ``backports.zstd``
  package, the same code) is used.

Neither format holds a time or a name.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dfsbuild.errors import DfsbuildError
from dfsbuild.fileio.atomic import atomic_output

if TYPE_CHECKING:
    from concurrent.futures import Future

METHODS = {"xz": ".xz", "zstd": ".zst"}
XZ_PRESET = 6
XZ_PIECE = 24 << 20
ZSTD_LEVEL = 3
READ = 1 << 20


def compressed_name(path: str, method: str) -> str:
    """``card.img`` -> ``card.img.xz`` / ``card.img.zst`` (bmaptool finds ``card.img.bmap``
    beside either)."""
    return path + METHODS[method]


def compress_file(src: str, dst: str, method: str, workers: int | None = None) -> int:
    """Write ``dst``, ``src`` compressed with ``method``, atomically; its size."""
    threads = max(1, workers or os.cpu_count() or 1)
    fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        pieces = _xz(fd, size, threads) if method == "xz" else _zstd(fd, size, threads)
        written = 0
        with atomic_output(dst) as out:
            for piece in pieces:
                view = memoryview(piece)
                while view:
                    n = os.write(out, view)
                    view = view[n:]
                    written += n
        return written
    finally:
        os.close(fd)


def _read(fd: int, at: int, n: int) -> bytes:
    data = os.pread(fd, n, at)
    if len(data) != n:
        raise OSError(0, "the file changed while it was compressed")
    return data


def _is_hole(fd: int, at: int, n: int) -> bool:
    """Whether ``[at, at + n)`` of the file is all hole (zeros nobody wrote): then it is not
    read (the kernel would zero a page for every 4 KiB of it)."""
    try:
        return os.lseek(fd, at, os.SEEK_DATA) >= at + n
    except OSError:              # no data after ``at`` (ENXIO), or no SEEK_DATA here
        return os.lseek(fd, 0, os.SEEK_END) > at


def _xz(fd: int, size: int, threads: int) -> Iterator[bytes]:
    """The xz streams of the 24 MiB pieces, in order, at most ``threads + 1`` in flight."""
    # imported here, not at the top: a build that compresses nothing only names the file
    import lzma
    from concurrent.futures import ThreadPoolExecutor

    zeros: dict[int, bytes] = {}       # a piece all hole compresses to the same bytes

    def piece(at: int) -> bytes:
        n = min(XZ_PIECE, size - at)
        if _is_hole(fd, at, n):
            if n not in zeros:
                zeros[n] = lzma.compress(bytes(n), format=lzma.FORMAT_XZ,
                                         check=lzma.CHECK_CRC64, preset=XZ_PRESET)
            return zeros[n]
        return lzma.compress(_read(fd, at, n), format=lzma.FORMAT_XZ,
                             check=lzma.CHECK_CRC64, preset=XZ_PRESET)

    if size == 0:
        yield lzma.compress(b"", format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64,
                            preset=XZ_PRESET)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending: deque[Future[bytes]] = deque()
        for at in range(0, size, XZ_PIECE):
            pending.append(pool.submit(piece, at))
            if len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _zstd(fd: int, size: int, threads: int) -> Iterator[bytes]:
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from backports import zstd  # type: ignore[no-redef,unused-ignore]
        except ImportError:
            raise DfsbuildError("zstd needs the backports.zstd package before Python 3.14",
                                hint="pip install backports.zstd (or use compress = \"xz\")"
                                ) from None
    p = zstd.CompressionParameter
    c = zstd.ZstdCompressor(options={p.compression_level: ZSTD_LEVEL, p.checksum_flag: 1,
                                     p.nb_workers: threads})
    zeros = bytes(READ)
    for at in range(0, size, READ):
        n = min(READ, size - at)
        yield c.compress(zeros[:n] if _is_hole(fd, at, n) else _read(fd, at, n))
    yield c.flush()
