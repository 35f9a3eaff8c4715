"""``type = "verity"``: the dm-verity hash device of another image of the layout (``data``),
in veritysetup's format 1 with its superblock; ``OUTPUT.roothash`` beside it holds the root
hash that ``veritysetup open``/``verify`` and the kernel's ``dm-verity`` take."""

from __future__ import annotations

import hashlib
import os
import re
import uuid as uuidlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dfsbuild.errors import CapacityError, FormatError
from dfsbuild.fileio.source import ByteSource, open_image
from dfsbuild.ids import derive_uuid
from dfsbuild.images.base import FsEntry, FsReader, ImageJob, ImageType, PlannedImage
from dfsbuild.vocab.model import ImageSpec
from dfsbuild.vocab.settings import (
    Context,
    Setting,
    build_options,
    p_bool,
    p_choice,
    p_str,
    p_uuid,
)

if TYPE_CHECKING:
    from dfsbuild.fileio.sink import Sink

ALGORITHMS = {"sha256": 32, "sha512": 64, "sha1": 20}
SHARED = ("salt", "hash", "block-size")      # also image settings: verity-salt, …
APPEND = "append"                            # verity = "append"


@dataclass(frozen=True, slots=True)
class VerityOptions:
    """The settings of a ``type = "verity"`` image."""

    data: str
    salt: str | None
    hash: str
    block_size: int
    uuid: str | None
    append: bool


@dataclass(frozen=True, slots=True)
class VerityPlan:
    data_path: str
    data_size: int
    salt: bytes
    algorithm: str
    block_size: int
    uuid: bytes
    size_bytes: int
    append: bool


def _salt(value: object, ctx: Context) -> str:
    text = p_str(value, ctx)
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2}){0,256}", text):
        raise ValueError(f"{text!r} is not a salt in hex (at most 256 bytes)")
    return text.lower()


def _verity(value: object, ctx: Context) -> bool | str:
    if value == APPEND or isinstance(value, bool):
        return value
    raise ValueError(f"expected true, false or {APPEND!r}, found {value!r}")


def _block_size(value: object, ctx: Context) -> int:
    size = p_choice(512, 1024, 2048, 4096)(value, ctx)
    assert isinstance(size, int)
    return size


def roothash_path(output: str) -> str:
    """``root-verity.img`` -> ``root-verity.roothash``."""
    stem = output[:-4] if output.endswith(".img") else output
    return stem + ".roothash"


def root_hash(output: str, options: VerityOptions, outputs: Callable[[str], str]) -> str:
    """The root hash of a built hash tree: of its superblock and top block (after the data
    when appended); of the data's one block when it has no more (``outputs`` names the data
    image's file)."""
    from dfsbuild.images.verity.tree import appended_data_blocks

    with open_image(output) as f:
        src = ByteSource(f)
        if options.append:
            bs = options.block_size
            size = os.fstat(f.fileno()).st_size
            blocks = appended_data_blocks(size // bs, bs, ALGORITHMS[options.hash])
            if size % bs or blocks is None:
                raise FormatError("verity", 0, f"{output}: {size} bytes are no data image "
                                  "with its hash tree appended")
            src = src.sub(blocks * bs, size - blocks * bs)
        reader = VerityReader(src)
        if reader.sb.data_blocks != 1:
            return reader.root_hash()
        if options.append:
            return reader.root_hash_of(ByteSource(f).read(0, reader.sb.data_block_size))
    with open_image(outputs(options.data)) as f:
        return reader.root_hash_of(ByteSource(f).read(0, reader.sb.data_block_size))


class VerityType(ImageType):
    name = "verity"
    help = "the dm-verity hash tree of another image (veritysetup format 1)"
    revision = 1
    options = VerityOptions
    settings = (
        Setting("data", p_str, None, "the image of this layout the hash tree protects; its "
                "size must be a multiple of `block-size`", required=True),
        Setting("salt", _salt, None, "the salt in hex (up to 256 bytes); default: 32 bytes "
                "derived from the layout's seed"),
        Setting("hash", p_choice(*ALGORITHMS), "sha256", "`sha256` (default), `sha512` or "
                "`sha1`"),
        Setting("block-size", _block_size, 4096, "data and hash block size: 512, 1024, 2048 "
                "or 4096 (default)", kind="integer"),
        Setting("uuid", p_uuid, None, "the hash device's UUID; default: derived from the "
                "layout's seed"),
        Setting("append", p_bool, False, "the output is the data image with the hash tree "
                "after it (its superblock at the data's size: veritysetup's `--hash-offset`)",
                kind="boolean"),
    )

    def settings_of_every_image(self) -> tuple[Setting, ...]:
        shared = [replace(s, name=f"verity-{s.name}", help=f"with `verity`: the hash "
                          f"tree's `{s.name}` (see `type = \"verity\"`)", cached=False)
                  for s in self.settings if s.name in SHARED]
        return (Setting("verity", _verity, False, "`true`: also the dm-verity hash tree of "
                        "this image, the image `NAME-verity` (`type = \"verity\"`, with "
                        "`NAME-verity.roothash`); `\"append\"`: this image is its data with "
                        "the tree after it (`NAME.roothash`), the data alone is `NAME-data`",
                        kind="boolean or \"append\"", cached=False), *shared)

    def derived(self, spec: ImageSpec, values: Mapping[str, Any],
                ctx: Context) -> list[ImageSpec]:
        verity = values.get("verity")
        if not verity:
            return []
        name = spec.name
        hashed = f"{name}-verity" if verity is True else name
        own = {s.attr: s.default_for(replace(ctx, name=hashed)) for s in self.settings}
        own["data"] = f"{name}-data" if verity == APPEND else name
        own["append"] = verity == APPEND
        for s in SHARED:
            attr = s.replace("-", "_")
            own[attr] = values[f"verity_{attr}"]
        options = build_options(self.options, self.settings, own)
        if verity == APPEND:       # the image keeps its name and output; its data moves
            data = replace(spec, name=own["data"], output=f"{own['data']}.img")
            return [data, ImageSpec(name, self.name, f"{spec.where}.verity", spec.output,
                                    options, uses=self.uses(options))]
        return [ImageSpec(hashed, self.name, f"{spec.where}.verity", f"{hashed}.img", options,
                          uses=self.uses(options))]

    def uses(self, options: VerityOptions) -> tuple[tuple[str, str], ...]:
        return (("data", options.data),)

    def manifest(self, job: ImageJob) -> list[list[object]]:
        return [["verity:seed", job.seed]]

    def plan(self, job: ImageJob) -> PlannedImage:
        from dfsbuild.images.verity.tree import geometry

        opts: VerityOptions = job.spec.options
        path, size = job.outputs(opts.data)
        bs = opts.block_size
        if size % bs or not size:
            fits = [b for b in (2048, 1024, 512) if b < bs and size and not size % b]
            raise CapacityError(job.file, f"{job.spec.where}.data", f"image {opts.data!r} "
                                f"is {size} bytes, not a whole number of {bs}-byte blocks "
                                "(at least one)", hint="an EROFS image always is; give a FAT "
                                "or raw image a size in MiB" + (
                                    f", or take {fits[0]}-byte blocks (block-size, "
                                    "verity-block-size)" if fits else ""))
        salt = bytes.fromhex(opts.salt) if opts.salt is not None else hashlib.sha256(
            f"dfsbuild verity salt\0{job.seed}\0{job.spec.name}".encode()).digest()
        ident = uuidlib.UUID(opts.uuid) if opts.uuid else \
            derive_uuid(job.seed, f"verity:{job.spec.name}")
        geo = geometry(size // bs, bs, ALGORITHMS[opts.hash])
        offset = size if opts.append else 0
        total = offset + (1 + geo.hash_blocks) * bs
        return PlannedImage(VerityPlan(path, size, salt, opts.hash, bs, ident.bytes, total,
                                       opts.append),
                            total, 0, {"data_blocks": geo.data_blocks, "hash_offset": offset,
                                       "levels": len(geo.level_blocks), "salt": salt.hex()})

    def write(self, planned: PlannedImage, out: Sink) -> None:
        from dfsbuild.images.verity.records import SB_SIZE, VeritySuperblock
        from dfsbuild.images.verity.tree import geometry, hash_levels

        plan: VerityPlan = planned.data
        bs = plan.block_size
        geo = geometry(plan.data_size // bs, bs, ALGORITHMS[plan.algorithm])
        fd = os.open(plan.data_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            levels, _ = hash_levels(fd, plan.data_size, geo, plan.salt, plan.algorithm)
        finally:
            os.close(fd)
        if plan.append:
            out.copy_sparse(plan.data_path, plan.data_size)
        sb = VeritySuperblock(plan.uuid, plan.algorithm, bs, bs, geo.data_blocks, plan.salt)
        out.write(sb.pack())
        out.written_zeros(bs - SB_SIZE)
        for level in reversed(levels):
            out.write(level)

    def companions(self, output: str) -> tuple[str, ...]:
        return (roothash_path(output),)

    def write_companions(self, output: str, options: VerityOptions,
                         outputs: Callable[[str], str]) -> None:
        from dfsbuild.fileio.atomic import atomic_write

        atomic_write(roothash_path(output),
                     (root_hash(output, options, outputs) + "\n").encode())

    def partition_uuids(self, spec: ImageSpec, output: str | None,
                        outputs: Callable[[str], str]) -> dict[str, str | None]:
        """The data's partition takes the root hash's first 128 bits as its GUID, the hash
        tree's partition the last 128 (systemd-dissect and systemd-veritysetup-generator find
        them so; the bits as they are, no version marked)."""
        opts: VerityOptions = spec.options
        if opts.append:            # one partition: no convention names it
            return {}
        if output is None:
            return {opts.data: None, spec.name: None}
        root = bytes.fromhex(root_hash(output, opts, outputs))
        return {opts.data: str(uuidlib.UUID(bytes=root[:16])).upper(),
                spec.name: str(uuidlib.UUID(bytes=root[-16:])).upper()}

    def published(self, output: str) -> dict[str, str]:
        try:
            with open(roothash_path(output)) as f:
                return {"roothash": f.read().strip()}
        except OSError:
            return {}

    def probe(self, head: bytes) -> bool:
        from dfsbuild.images.verity.records import SIGNATURE

        return head[:8] == SIGNATURE

    def reader(self, src: ByteSource) -> VerityReader:
        return VerityReader(src)


class VerityReader(FsReader):
    """A hash device: no files; its summary names the root hash, computed from its top
    block and salt."""

    format = "verity"

    def __init__(self, src: ByteSource) -> None:
        from dfsbuild.images.verity.records import SB_SIZE, VeritySuperblock

        self.src = src.named("verity")
        self.sb = VeritySuperblock.unpack(self.src.read(0, SB_SIZE))
        if self.sb.algorithm not in ALGORITHMS:
            raise FormatError("verity", 0x20, f"hash {self.sb.algorithm!r} is not read")

    def root(self) -> FsEntry:
        return FsEntry("", "", "dir", 0o755)

    def children(self, directory: FsEntry) -> list[FsEntry]:
        return []

    def root_hash(self) -> str:
        from dfsbuild.images.verity.tree import geometry

        sb = self.sb
        geo = geometry(sb.data_blocks, sb.hash_block_size, ALGORITHMS[sb.algorithm])
        if not geo.level_blocks:
            raise FormatError("verity", 0x48, "one data block: the root hash is the data's "
                              "(read with it)")
        top = self.src.read(geo.level_start(len(geo.level_blocks) - 1) * sb.hash_block_size,
                            sb.hash_block_size)
        return hashlib.new(sb.algorithm, sb.salt + top).hexdigest()

    def root_hash_of(self, data_block: bytes) -> str:
        """The root hash of a tree over one data block: that block's hash."""
        return hashlib.new(self.sb.algorithm, self.sb.salt + data_block).hexdigest()

    def summary(self) -> dict[str, object]:
        sb = self.sb
        root = self.root_hash() if sb.data_blocks != 1 else None
        return {"root_hash": root, "algorithm": sb.algorithm,
                "salt": sb.salt.hex(), "data_blocks": sb.data_blocks,
                "data_block_size": sb.data_block_size, "hash_block_size": sb.hash_block_size,
                "uuid": str(uuidlib.UUID(bytes=sb.uuid))}

    def identity(self) -> dict[str, str]:
        return {"type": "DM_verity_hash", "uuid": str(uuidlib.UUID(bytes=self.sb.uuid))}


TYPE = VerityType()
