"""``python -m dfsbuild``."""

from dfsbuild.cli import main

raise SystemExit(main())
