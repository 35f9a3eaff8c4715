"""FAT12/16/32: writer, reader and in-place updater."""
