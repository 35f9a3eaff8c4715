"""EROFS (uncompressed): records, writer, reader, handler."""
