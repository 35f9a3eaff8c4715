"""The error tree. The library raises these; only cli.py turns them into exit codes."""

from __future__ import annotations

import errno


class DfsbuildError(Exception):
    """Base of every error dfsbuild reports to a user."""

    hint: str | None = None

    def __init__(self, message: str = "", hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class LayoutError(DfsbuildError):
    """A layout is wrong: names the file, the dotted key path, the value and the rule."""

    def __init__(self, file: str, where: str, message: str, hint: str | None = None,
                 value: object = None, note: str = "") -> None:
        self.file = file
        self.where = where            # the dotted key in the layout ("" for the whole file)
        self.message = message
        self.value = value            # the offending value where one is known (for --json)
        at = f"{file}: {where}{note}: " if where else f"{file}: "
        super().__init__(at + message, hint)

    def to_json(self) -> dict[str, object]:
        value = self.value if isinstance(self.value, str | int | float | bool) else None
        return {"severity": "error", "file": self.file, "key": self.where, "value": value,
                "rule": self.message, "hint": self.hint}


class LayoutErrors(DfsbuildError):
    """Several layout errors found in one run (``check`` reports them all)."""

    def __init__(self, errors: list[LayoutError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))

    @staticmethod
    def gather(found: list[LayoutError], exc: DfsbuildError) -> None:
        """Add ``exc`` (one error or several) to ``found``."""
        if isinstance(exc, LayoutErrors):
            found.extend(exc.errors)
        elif isinstance(exc, LayoutError):
            found.append(exc)
        else:
            raise exc

    @staticmethod
    def raise_if(found: list[LayoutError]) -> None:
        if len(found) == 1:
            raise found[0]
        if found:
            raise LayoutErrors(found)


class CapacityError(LayoutError):
    """Contents do not fit: how much was needed, how much there is."""


class FormatError(DfsbuildError):
    """Bytes that are not valid FORMAT: format, byte offset, expected vs found."""

    def __init__(self, fmt: str, offset: int | None, message: str) -> None:
        self.format = fmt
        self.offset = offset
        self.message = message
        at = f" at byte {offset} (0x{offset:x})" if offset is not None else ""
        super().__init__(f"{fmt}{at}: {message}")


class ExtractError(DfsbuildError):
    """An extracted path would escape the destination, or could not be written."""


class InputError(DfsbuildError):
    """A host input (a file named on the command line or in a layout) cannot be read."""


class InternalError(DfsbuildError):
    """A bug: a write outside its region, an impossible state."""


def warn(message: str) -> None:
    """A problem dfsbuild recovered from: one ``warning:`` line on standard error."""
    import sys

    print(f"warning: {message}", file=sys.stderr, flush=True)


# What a failed system call means, in the words of an error line.
FAULTS = {errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system",
          errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
          errno.EFBIG: "the file system cannot hold a file that large",
          errno.EDQUOT: "disk quota exceeded"}
