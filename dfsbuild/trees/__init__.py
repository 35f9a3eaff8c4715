"""Host file trees: the only directory walker, exclude patterns, digests, the FsNode tree."""
