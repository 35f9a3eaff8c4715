"""dm-verity hash trees (veritysetup format 1): records, writer, reader, handler."""
