"""One module per on-disk format. They know nothing of TOML, doit, argparse or host paths."""
