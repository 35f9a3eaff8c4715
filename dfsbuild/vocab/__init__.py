"""The layout's vocabulary, below the formats: the strict table reader (table.py), Setting
records and their value parsers (settings.py), and the frozen model a loaded layout is
(model.py). Image types and table kinds describe their keys with it; the loader (layout/)
reads TOML into it. Nothing here imports a format, a registry or the loader."""
