"""Layouts: TOML files that declare images and disks."""

from dfsbuild.layout.load import load_layout, load_layouts
from dfsbuild.layout.model import DeviceSpec, DiskSpec, FileSpec, ImageSpec, Layout

__all__ = [
    "DeviceSpec",
    "DiskSpec",
    "FileSpec",
    "ImageSpec",
    "Layout",
    "load_layout",
    "load_layouts",
]
