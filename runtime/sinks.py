"""Sinks: where the frames a run shows go. A video file, a folder of numbered PNGs, a window, the app's records
file (and the live view, runtime/serve.py); each written so a stop leaves it usable."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from blur2blur.apps.side_by_side import side_by_side
from blur2blur.errors import UserError
from blur2blur.files.atomic import FOURCC, AtomicVideo, remove_stale_temporaries, temporary, write_atomic_png
from blur2blur.files.locks import Lock, beside
from blur2blur.images import is_video

log = logging.getLogger(__name__)


@dataclass
class Shown:
    """A frame as it leaves the app: its place in the run, the input it came from, the app's frame and record."""

    index: int
    timestamp_ms: int
    input: np.ndarray
    frame: np.ndarray
    record: dict | None = None
    _paired: np.ndarray | None = field(default=None, repr=False)

    @property
    def paired(self) -> np.ndarray:
        """input | frame, labelled: composed here only, once, by the first sink that shows it."""
        if self._paired is None:
            self._paired = side_by_side(self.input, self.frame)
        return self._paired


class Sink:
    """Where shown frames go; `close` finishes it, and `complete=False` (the run failed) discards what cannot be
    trusted."""

    stop_requested = False  # set by a sink the user can close (the window): the run ends after this frame

    def start(self, figures: Callable[[], dict]) -> None:
        """Called as the run starts with its report so far, for sinks that show it (the live view)."""

    def write(self, shown: Shown) -> None:
        raise NotImplementedError

    def close(self, complete: bool = True) -> None:
        pass


class FrameSink(Sink):
    """A sink of images: the app's frame or, when `paired`, the input beside it."""

    paired = False

    def write(self, shown: Shown) -> None:
        self.write_frame(shown.paired if self.paired else shown.frame)

    def write_frame(self, frame: np.ndarray) -> None:
        raise NotImplementedError


class VideoFileSink(FrameSink):
    """An MP4 (mp4v) written under a temporary name and renamed on close once it is checked complete (it opens and
    holds every frame written), so a reader never sees half a file and a failed write keeps the previous one.
    The path is locked for the run: a second run writing it is refused.

    A video has one frame size: later frames of another size are resized to the first one's (said once).
    """

    def __init__(self, path: Path, fps: float, paired: bool = False) -> None:
        self.path, self.fps, self.paired = path, fps, paired
        self.lock = Lock(beside(path), f"--output {path}").acquire()
        remove_stale_temporaries(path)
        self.video: AtomicVideo | None = None
        self.size: tuple[int, int] | None = None
        self.resized = 0

    def write_frame(self, frame: np.ndarray) -> None:
        size = (frame.shape[1], frame.shape[0])
        if self.video is None:
            self.size, self.video = size, AtomicVideo(self.path, self.fps, size)
            if not self.video.opened:
                self.video.discard()
                self.video = None
                raise UserError(f"--output {self.path}: OpenCV cannot encode {size[0]}x{size[1]} frames as "
                                f"{self.path.suffix} ({FOURCC}) here; try {_other_format(self.path)}")
        if size != self.size:
            if not self.resized:
                log.warning("frame %d is %dx%d, the video %dx%d: resizing such frames (write a folder to keep sizes)",
                            self.video.frames, *size, *self.size)
            self.resized += 1
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self.video.write(frame)

    def close(self, complete: bool = True) -> None:
        try:
            video, self.video = self.video, None
            if video is None:
                return
            if not complete:
                video.discard()
                return
            readable = video.finish()
            if readable != video.frames:
                video.discard()
                kept = "the previous file is kept" if self.path.exists() else "nothing was written"
                raise UserError(f"--output {self.path}: the video did not write completely ({video.frames} frames "
                                f"sent, {readable or 0} readable; is the disk full?); {kept}")
            video.commit()
        finally:
            self.lock.release()


def _other_format(path: Path) -> str:
    """What to try when OpenCV cannot write this video format."""
    return "a folder of PNGs" if path.suffix.lower() == ".mp4" else ".mp4 or a folder of PNGs"


class ImageFolderSink(FrameSink):
    """Numbered PNGs 000000.png, 000001.png, ... in a folder that holds none yet; a failed run removes its own."""

    def __init__(self, folder: Path, paired: bool = False) -> None:
        self.folder, self.paired = folder, paired
        self.frames = 0

    def path(self, index: int) -> Path:
        return self.folder / f"{index:06d}.png"

    def write_frame(self, frame: np.ndarray) -> None:
        write_atomic_png(self.path(self.frames), frame)
        self.frames += 1

    def close(self, complete: bool = True) -> None:
        if not complete:
            for index in range(self.frames):
                self.path(index).unlink(missing_ok=True)


class RecordsFile(Sink):
    """The app's records, one JSON line per frame that has one (with the frame's index and timestamp), under a
    temporary name until the run ends; locked like a video."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = Lock(beside(path), f"--records {path}").acquire()
        remove_stale_temporaries(path)
        self.tmp = temporary(path)
        try:
            self.file = open(self.tmp, "w")
        except OSError as err:
            self.lock.release()
            raise UserError(f"--records {path}: cannot write it ({err.strerror})") from None

    def write(self, shown: Shown) -> None:
        if shown.record is not None:
            self.file.write(json.dumps({"frame": shown.index, "timestamp_ms": shown.timestamp_ms, **shown.record}) +
                            "\n")

    def close(self, complete: bool = True) -> None:
        try:
            self.file.close()  # the last lines reach the disk here: a full disk fails now
            if complete:
                os.replace(self.tmp, self.path)
        except OSError as err:
            complete = False
            raise UserError(f"--records {self.path}: could not be written ({err.strerror}; is the disk full?); "
                            f"{'the previous file is kept' if self.path.exists() else 'nothing was written'}") from None
        finally:
            if not complete:
                self.tmp.unlink(missing_ok=True)
            self.lock.release()


class WindowSink(FrameSink):
    """An OpenCV window; pressing q or Esc in it stops the run."""

    def __init__(self, title: str = "blur2blur", paired: bool = False) -> None:
        self.title, self.paired = title, paired

    def write_frame(self, frame: np.ndarray) -> None:
        cv2.imshow(self.title, frame)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stop_requested = True

    def close(self, complete: bool = True) -> None:
        cv2.destroyWindow(self.title)


def writable_file(path: str, option: str) -> Path:
    """A file path whose folder exists (made if needed) and is writable: checked before the first frame."""
    file = Path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{option} {path}: cannot create {file.parent} ({err.strerror})") from None
    if file.is_dir() or not os.access(file.parent, os.W_OK):
        raise UserError(f"{option} {path}: cannot write a file there")
    return file


def display_available() -> bool:
    """Whether a window can open: a display is named and OpenCV opens a window on it (tried in a child process,
    since a display that cannot be reached aborts the process that tries)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    probe = "import cv2; cv2.namedWindow('blur2blur-probe'); cv2.waitKey(1); cv2.destroyAllWindows()"
    try:
        usable = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        usable = False
    if not usable:
        log.warning("no window: the display (DISPLAY=%s) cannot be reached; running headless",
                    os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return usable


def open_output(output: str, fps: float, paired: bool = False) -> FrameSink:
    """A video file for a video suffix, else a folder of PNGs (of input | frame when `paired`); fails now, not at
    the first frame, if unwritable."""
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
    if not path.suffix:
        if any(path.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png")):
            raise UserError(f"--output {output}: already holds numbered PNGs; give a new or empty folder")
        return ImageFolderSink(path, paired)
    # The frame size is known only at the first frame; a probe now proves that OpenCV can encode this format here.
    probe = temporary(path.with_name(f"{path.stem}-probe{path.suffix}"))
    writer = cv2.VideoWriter(str(probe), cv2.VideoWriter_fourcc(*FOURCC), fps, (64, 64))
    opened = writer.isOpened()
    writer.release()
    probe.unlink(missing_ok=True)
    if not opened:
        raise UserError(f"--output {output}: OpenCV cannot write a {path.suffix} video in {folder} (is the disk "
                        f"full?); else try {_other_format(path)}")
    return VideoFileSink(path, fps, paired)
