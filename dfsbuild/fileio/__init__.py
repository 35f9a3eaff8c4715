"""Bounded file I/O: Sink (writes), ByteSource (reads), the copy loop, atomic replacement."""
