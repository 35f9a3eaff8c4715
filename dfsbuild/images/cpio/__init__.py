"""cpio "newc" archives, as the kernel unpacks an initramfs (formats.md §7)."""
