"""Booting built disks in QEMU: the firmware table and the console watcher."""
