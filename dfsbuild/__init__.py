"""dfsbuild: declarative, incremental, reproducible disk-image builds from TOML layouts."""

__version__ = "0.1.0"

from dfsbuild.errors import (
    CapacityError,
    DfsbuildError,
    ExtractError,
    FormatError,
    InternalError,
    LayoutError,
)

__all__ = [
    "CapacityError",
    "DfsbuildError",
    "ExtractError",
    "FormatError",
    "InternalError",
    "LayoutError",
    "__version__",
]
