"""Writing files so that nothing is ever half-written: a temporary name beside the target, then a rename."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import cv2
import numpy as np

from blur2blur.images import video_frame_count

FOURCC = "mp4v"  # in every OpenCV wheel; H.264 encoders are not


def temporary(path: str | Path) -> Path:
    """Where `path` is written before it is renamed into place: `.STEM.PID.tmp.SUFFIX` beside it (the suffix
    kept, since it picks a video's container), one per process."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def remove_stale_temporaries(path: str | Path) -> int:
    """Delete what killed writers left of `path` (`temporary` files of any process); call it holding `path`'s
    lock, so that no live writer's file goes. Returns how many were removed."""
    path = Path(path)
    name = re.compile(rf"\.{re.escape(path.stem)}\.\d+\.tmp{re.escape(path.suffix)}")  # `temporary`'s names only
    stale = [file for file in path.parent.glob(f".{glob.escape(path.stem)}.*.tmp{glob.escape(path.suffix)}")
             if name.fullmatch(file.name)]
    for file in stale:
        file.unlink(missing_ok=True)
    return len(stale)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write a file under a temporary name, then rename it: a reader never sees half a file."""
    path = Path(path)
    tmp = temporary(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as err:  # name the file meant, not the temporary one (a full disk reports none)
        raise OSError(err.errno, err.strerror, str(path)) from None
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic_png(path: str | Path, image_bgr: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", image_bgr)
    if not ok:
        raise OSError(f"could not encode {path}")
    write_atomic(path, buf.tobytes())


class AtomicVideo:
    """An mp4v video written under a temporary name (the suffix, which picks the container, kept), then moved into
    place by `commit` only if every frame written reads back; `discard` leaves nothing. `opened` is False where
    OpenCV cannot encode such a video here."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        self.path, self.tmp, self.frames = Path(path), temporary(path), 0
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*FOURCC), float(fps), size)
        self.opened = self.writer.isOpened()

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(frame)
        self.frames += 1

    def finish(self) -> int | None:
        """Close the file; how many frames read back from it (fewer than written where a full disk cut it short)."""
        self.writer.release()
        return video_frame_count(self.tmp)

    def commit(self) -> None:
        """Move the finished file into place."""
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.writer.release()
        self.tmp.unlink(missing_ok=True)
