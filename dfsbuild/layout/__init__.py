"""Layouts: TOML files → the frozen model (load.py), checked across keys (validate.py).

The settings of each image type and table kind come from their registries; nothing here
names a type.
"""
