"""Warnings: settings that are valid but do nothing or surprise. ``check`` and ``build``
print them; ``--strict`` (or ``DFSBUILD_STRICT=1``) makes them errors.

Each image type says what surprises in its own settings (``ImageType.warnings``: romfs
modes); the rules across the layout are here: a mode written as a decimal integer, an image
nothing uses, a typed partition holding an image of another filesystem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dfsbuild.images import IMAGE_TYPES
from dfsbuild.tables import TABLE_KINDS
from dfsbuild.trees.walk import find_any_case
from dfsbuild.vocab.model import ImageSpec, Layout

# `mode = 644` (not `0o644`, not "0644"): TOML reads the decimal number 644 (octal 1204).
_DECIMAL_MODE = re.compile(r"(?<![\w-])mode\s*=\s*([1-7][0-7]{2,3})(?![\w.])")


@dataclass(frozen=True, slots=True)
class LayoutWarning:
    """A valid but surprising setting: file, key, what happens, and a hint."""

    file: str
    where: str           # dotted key, or "line N" where only the text tells
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}: {self.where}: {self.message}"
        return text + (f" ({self.hint})" if self.hint else "")

    def to_json(self) -> dict[str, object]:
        return {"severity": "warning", "file": self.file, "key": self.where, "value": None,
                "rule": self.message, "hint": self.hint}


_LOADERS = ("bootx64.efi", "bootaa64.efi", "bootia32.efi", "bootriscv64.efi")


def _has_efi_loader(image: ImageSpec) -> bool:
    """Whether the image holds UEFI's fallback boot loader."""
    return any(_holds(image, f"efi/boot/{name}") for name in _LOADERS)


def _holds(image: ImageSpec, lower: str) -> bool:
    """Whether the image holds the file ``lower`` (a path in lower case; names in any case
    match, as FAT compares them), from its ``files`` or in its tree."""
    if any(f.dest.lower() == lower for f in image.contents.files):
        return True
    tree = image.contents.tree
    return tree is not None and find_any_case(tree, lower) is not None


def _boot_warnings(layout: Layout) -> list[LayoutWarning]:
    """Boot code or a U-Boot card that would look for a bootable partition in vain."""
    disk = layout.disk
    assert disk is not None
    found: list[LayoutWarning] = []
    if any(getattr(p.options, "bootable", False) for p in disk.partitions):
        return found
    if getattr(disk.options, "boot_code", None) is not None and disk.partitions:
        found.append(LayoutWarning(
            layout.path, "disk.boot-code", "boot code chains to the partition marked "
            "bootable, and none is", hint="set bootable = true on the partition to boot"))
    for p in disk.partitions[1:]:
        if p.image is not None and _holds(layout.images[p.image], "extlinux/extlinux.conf"):
            found.append(LayoutWarning(
                layout.path, f"{p.where}.bootable", f"{p.label} holds extlinux/extlinux.conf, "
                "but U-Boot's distro boot reads it only from bootable partitions, else from "
                "partition 1", hint="set bootable = true on it"))
    return found


def layout_warnings(layout: Layout, text: str) -> list[LayoutWarning]:
    """Every warning of one loaded layout; ``text`` is the file as read."""
    file = layout.path
    found: list[LayoutWarning] = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        for m in _DECIMAL_MODE.finditer(code):
            value = int(m[1])
            found.append(LayoutWarning(
                file, f"line {number}", f"mode = {m[1]} is the decimal number {value} (octal "
                f"{value:o})", hint=f"write mode = 0o{m[1]} or mode = \"0{m[1]}\""))
    for spec in layout.images.values():
        for key, message in IMAGE_TYPES[spec.type].warnings(spec):
            found.append(LayoutWarning(file, key, message))
    disk = layout.disk
    if disk is None:
        return found
    kind = TABLE_KINDS[disk.table]
    used = set(kind.images(disk))
    for spec in layout.images.values():
        used.update(spec.nested())
    for name, spec in layout.images.items():
        # An included file serves several layouts: each may use some of its images.
        if name not in used and spec.origin is None:
            found.append(LayoutWarning(file, spec.where, f"image {name!r} is in no partition, "
                                       "region or other image of this layout's disk; it is "
                                       "built as an output of its own"))
    found += _boot_warnings(layout)
    for p in disk.partitions:
        if p.image is None or p.options is None:
            continue
        expected = kind.expects(p.options)
        family = IMAGE_TYPES[layout.images[p.image].type].family
        image = layout.images[p.image]
        if kind.is_esp(p.options) and family in expected and not _has_efi_loader(image):
            found.append(LayoutWarning(
                file, f"{p.where}.image", f"{p.label} is an EFI system partition, but its "
                f"image {p.image!r} has no EFI/BOOT/BOOTX64.EFI or BOOTAA64.EFI: UEFI "
                "firmware finds nothing to start there", hint="add the boot loader, e.g. "
                'files."EFI/BOOT/BOOTX64.EFI" = { file = "/usr/lib/systemd/boot/efi/'
                'systemd-bootx64.efi" }'))
        if expected and family is not None and family not in expected:
            found.append(LayoutWarning(
                file, f"{p.where}.type", f"{p.label} is typed for {' or '.join(expected)}, but "
                f"its image {p.image!r} is {family}", hint="set the partition's type to what "
                "the image is, or the image's type to what the partition says"))
    return found
