"""Reading images: IMAGE and DISK:PART targets, detection by registry order, text and JSON
rendering, and the one extractor (with the one path-escape guard)."""
