"""romfs (Linux fs/romfs; genromfs-compatible): records, writer, reader, handler."""
