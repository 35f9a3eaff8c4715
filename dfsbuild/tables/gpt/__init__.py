"""GPT (UEFI 2.10 §5.3; formats.md §5): records, handler, reader."""
