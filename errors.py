"""One error type for bad input, and errors as one line (the CLI wrapper that prints them: commands.py)."""

from __future__ import annotations

import errno


class UserError(Exception):
    """Bad input a user can fix: the message names the file or option and what to do."""


def one_line(err: BaseException) -> str:
    """An error's message on one line (libraries such as ONNX Runtime write several)."""
    return " ".join(str(err).split())


REMEDIES = {errno.ENOSPC: "the disk is full: free some space and run again",
            errno.EDQUOT: "the disk quota is used up: free some space and run again",
            errno.EROFS: "the file system is read-only: write somewhere else",
            errno.EACCES: "permission denied: write somewhere you may, or fix the permissions"}


def os_error_line(err: OSError) -> str:
    """An OSError as one line: the file, the system's words, and what to do about it where that is known."""
    where = f"{err.filename}: " if err.filename else ""
    remedy = REMEDIES.get(err.errno)
    return f"{where}{err.strerror or err}" + (f" ({remedy})" if remedy else "")
