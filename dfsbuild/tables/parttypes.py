"""Partition type names: MBR type bytes, GPT type GUIDs and GPT attribute bits.

Sources: formats.md §4 and §5.2 (type GUIDs checked with sgdisk -i), the UEFI specification
(attribute bits 0-2), Microsoft's basic-data bits and the Discoverable Partitions Specification.
"""

from __future__ import annotations

import re
import uuid

MBR_TYPES = {
    "empty": 0x00,
    "fat12": 0x01,
    "fat16-small": 0x04,
    "extended": 0x05,
    "fat16": 0x06,
    "ntfs": 0x07,
    "exfat": 0x07,
    "fat32": 0x0B,
    "fat32-lba": 0x0C,
    "fat16-lba": 0x0E,
    "extended-lba": 0x0F,
    "swap": 0x82,
    "linux": 0x83,
    "linux-extended": 0x85,
    "linux-lvm": 0x8E,
    "protective": 0xEE,
    "efi": 0xEF,
    "linux-raid": 0xFD,
    "data": 0xDA,
    "non-fs-data": 0xDA,
    "embr": 0xE0,
}
EXTENDED_TYPES = (0x05, 0x0F, 0x85)

GPT_TYPES = {
    "efi": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
    "msft-basic-data": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
    "fat32": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
    "fat16": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
    "ntfs": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
    "linux": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
    "linux-root-x86-64": "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
    "linux-root-x86": "44479540-F297-41B2-9AF7-D131D5F0458A",
    "linux-root-arm64": "B921B045-1DF0-41C3-AF44-4C6F280D3FAE",
    "linux-root-verity-x86-64": "2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5",
    "linux-root-verity-x86": "D13C5D3B-B5D1-422A-B29F-9454FDC89D76",
    "linux-root-verity-arm64": "DF3300CE-D69F-4C92-978C-9BFB0F38D820",
    "linux-usr-x86-64": "8484680C-9521-48C6-9C11-B0720656F69E",
    "linux-usr-arm64": "B0E01050-EE5F-4390-949A-9101B17104E9",
    "linux-usr-verity-x86-64": "77FF5F63-E7B6-4633-ACF4-1565B864C0E6",
    "linux-usr-verity-arm64": "6E11A4E7-FBCA-4DED-B9E9-E1A512BB664E",
    "linux-home": "933AC7E1-2EB4-4F13-B844-0E14E2AEF915",
    "swap": "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
    "bios-boot": "21686148-6449-6E6F-744E-656564454649",
    "xbootldr": "BC13C2FF-59E6-4262-A352-B275FD6F7172",
    "linux-lvm": "E6D6D379-F507-44C2-A23C-238F2A3DF928",
    "linux-raid": "A19D880F-05FC-4D3B-A006-743F0F84911E",
    "msft-reserved": "E3C9E316-0B5C-4DB8-817D-F92DF00215AE",
}
# What a GPT partition becomes in a hybrid MBR unless the layout says otherwise.
HYBRID_DEFAULTS = {
    "C12A7328-F81F-11D2-BA4B-00A0C93EC93B": 0xEF,
    "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": 0x0C,
    "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": 0x82,
}

# What a typed partition is expected to hold, for the warning when the image is of another
# kind (types not listed, `linux` and the like, may hold anything).
_FAT = ("fat",)
MBR_FAMILIES = {0x01: _FAT, 0x04: _FAT, 0x06: _FAT, 0x0B: _FAT, 0x0C: _FAT, 0x0E: _FAT,
                0xEF: _FAT, 0x07: ("ntfs", "exfat"), 0x82: ("swap",)}
GPT_FAMILIES = {
    GPT_TYPES["efi"]: _FAT,
    GPT_TYPES["msft-basic-data"]: ("fat", "ntfs", "exfat"),
    GPT_TYPES["swap"]: ("swap",),
}

GPT_ATTRIBUTES = {
    "required": 0,
    "platform-required": 0,
    "no-block-io": 1,
    "legacy-bios-bootable": 2,
    "grow-fs": 59,
    "read-only": 60,
    "shadow-copy": 61,
    "hidden": 62,
    "no-drive-letter": 63,
    "no-auto": 63,
}


def mbr_type(value: object) -> int:
    """A type byte from an alias, an integer or a hex string ("0x83", "83")."""
    if isinstance(value, bool):
        raise ValueError(f"expected an MBR type, found the boolean {value}")
    if isinstance(value, int):
        byte = value
    elif isinstance(value, str) and value.lower() in MBR_TYPES:
        return MBR_TYPES[value.lower()]
    elif isinstance(value, str) and re.fullmatch(r"(0x)?[0-9A-Fa-f]{1,2}", value):
        byte = int(value, 16)
    else:
        raise ValueError(f"{value!r} is not an MBR type: use a byte (0x83) or one of "
                         + ", ".join(sorted(MBR_TYPES)))
    if not 0 < byte <= 0xFF:
        raise ValueError(f"MBR type {byte:#x} is outside 0x01..0xff")
    return byte


def gpt_type(value: object) -> str:
    """An upper-case type GUID from an alias or a literal GUID."""
    if isinstance(value, str):
        if value.lower() in GPT_TYPES:
            return GPT_TYPES[value.lower()]
        try:
            return str(uuid.UUID(value)).upper()
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a GPT type: use a GUID or one of "
                     + ", ".join(sorted(GPT_TYPES)))


def gpt_attribute_bits(values: object) -> int:
    """Attribute names or bit numbers → the 64-bit attribute field."""
    if not isinstance(values, list):
        raise ValueError(f"expected a list of attribute names or bit numbers, found {values!r}")
    bits = 0
    for item in values:
        if isinstance(item, bool):
            raise ValueError(f"{item!r} is not an attribute")
        if isinstance(item, int):
            if not 0 <= item <= 63:
                raise ValueError(f"attribute bit {item} is outside 0..63")
            bits |= 1 << item
        elif isinstance(item, str) and item.lower() in GPT_ATTRIBUTES:
            bits |= 1 << GPT_ATTRIBUTES[item.lower()]
        else:
            raise ValueError(f"{item!r} is not a GPT attribute: use a bit number or one of "
                             + ", ".join(sorted(GPT_ATTRIBUTES)))
    return bits
