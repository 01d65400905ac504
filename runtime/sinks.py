"""FrameSink: a video file, a folder of numbered PNGs, or a window; each written so a stop leaves it usable."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from blur2blur.errors import UserError
from blur2blur.images import is_video, write_atomic_png


class FrameSink:
    def write(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class VideoFileSink(FrameSink):
    """An MP4 (mp4v) written under a temporary name and renamed on close, so a reader never sees half a file."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self.tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
        self.writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if self.writer is None:
            height, width = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self.writer.isOpened():
                raise UserError(f"--output {self.path}: OpenCV cannot write this video; try a .mp4 or a folder")
        self.writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            os.replace(self.tmp, self.path)


class ImageFolderSink(FrameSink):
    """Numbered PNGs 000000.png, 000001.png, ..."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        write_atomic_png(self.folder / f"{self.frames:06d}.png", frame)
        self.frames += 1


class WindowSink(FrameSink):
    """An OpenCV window; closing it or pressing q or Esc stops the run."""

    def __init__(self, title: str = "blur2blur") -> None:
        self.title = title

    def write(self, frame: np.ndarray) -> None:
        cv2.imshow(self.title, frame)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            raise KeyboardInterrupt

    def close(self) -> None:
        cv2.destroyWindow(self.title)


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_output(output: str, fps: float) -> FrameSink:
    """A video file for a video suffix, else a folder of PNGs; fails now, not at the first frame, if unwritable."""
    path = Path(output)
    if path.suffix and not is_video(path):
        raise UserError(f"--output {output}: give a video file (.mp4, .avi, ...) or a folder for PNGs")
    folder = path.parent if path.suffix else path
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--output {output}: cannot create {folder} ({err.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"--output {output}: {folder} is not writable")
    return VideoFileSink(path, fps) if path.suffix else ImageFolderSink(path)
