"""eMBR 1.05 (seeds/embr-1.05.txt; formats.md §3): records, handler, reader."""
