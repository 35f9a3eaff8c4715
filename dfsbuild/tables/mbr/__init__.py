"""MBR (partition-table seed; formats.md §4): records, the EBR chain, handler, reader."""
