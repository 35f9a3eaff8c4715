"""TrivialFS: a text header of byte ranges, then the files' contents (formats.md §2)."""
