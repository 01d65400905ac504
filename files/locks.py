"""One writer at a time: advisory locks on run folders, bundle destinations and output files (torch-free).

A lock is `flock` on a small file that holds the holder's pid; the kernel releases it when the holder exits,
however it exits, so a crash never leaves anything locked. A second writer gets one line naming the holder.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from blur2blur.errors import UserError


def beside(target: str | Path) -> Path:
    """The lock file of a file or folder that is replaced as a whole: `.NAME.lock` next to it."""
    target = Path(target)
    return target.with_name(f".{target.name}.lock")


class Lock:
    """An exclusive lock on the file `path`, taken by `acquire` or `with`; `what` names what it guards in the
    refusal ("--out runs/x")."""

    def __init__(self, path: str | Path, what: str) -> None:
        self.path = Path(path)
        self.what = what
        self.fd: int | None = None

    def acquire(self) -> "Lock":
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                why = "a file is in the way" if isinstance(err, (FileExistsError, NotADirectoryError)) else err.strerror
                raise UserError(f"{self.what}: cannot write there ({why}; the lock {self.path.name} goes there)") \
                    from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise UserError(f"{self.what} is in use by another process (pid {holder}): wait for it to end, "
                                "or choose another") from None
            try:  # a holder that released between our open and flock removed the file: lock the new one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:  # a full disk: the lock holds all the same, without the pid to show
            pass
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # before unlocking: a later writer locks a new file
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "Lock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
