"""FrameSource: every camera, stream, video file and image folder as one iterator of uint8 BGR frames.

Cameras and streams are `live`: the pipeline drops their oldest frame when it falls behind. Files and folders
are not: every frame is processed.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from blur2blur.errors import UserError
from blur2blur.images import is_image, natural_key, read_bgr

log = logging.getLogger(__name__)
CAMERA_FORMATS = ("MJPG", "YUYV")
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 5.0)  # waits between reopening attempts; the last one repeats
DEFAULT_FPS = 25.0
MAX_BAD_FRAMES = 10  # failed reads in a row before a source counts as ended (or disconnected)


class FrameSource:
    """Frames from somewhere; `skipped` counts corrupt frames and unreadable images, `reopened` reconnections."""

    def __init__(self, kind: str, spec: str, live: bool, fps: float, frame_count: int | None = None) -> None:
        self.kind, self.spec, self.live, self.fps, self.frame_count = kind, spec, live, fps, frame_count
        self.skipped = self.reopened = 0
        self.stopping = threading.Event()  # set by stop(): ends the iteration, also during a reconnect wait

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()

    def close(self) -> None:
        pass


def is_frame(ok: bool, frame: np.ndarray | None) -> bool:
    """A read that gave an H x W x 3 image."""
    return ok and frame is not None and frame.ndim == 3 and frame.shape[2] == 3


def sane_fps(fps: float) -> float:
    """A capture's frame rate, or 25 where it reports nothing sensible (0, NaN, 1000...)."""
    return fps if 1.0 <= fps <= 240.0 else DEFAULT_FPS


class CaptureSource(FrameSource):
    """A camera, stream or video file through cv2.VideoCapture.

    A grab that fails ends a file (or starts it again with `loop`) and a live source (or, with `reconnect`,
    reopens it with backoff until it delivers again). A grabbed frame that does not decode is skipped and counted.
    """

    def __init__(self, kind: str, spec: str, opener: Callable[[], cv2.VideoCapture], live: bool,
                 reconnect: bool = False, loop: bool = False) -> None:
        self.opener, self.reconnect, self.loop = opener, reconnect, loop
        self.capture = opener()
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        super().__init__(kind, spec, live, sane_fps(self.capture.get(cv2.CAP_PROP_FPS)),
                         count if count > 0 and not live else None)
        self.first = self.first_frame(self.capture)  # read while opening, to prove that it decodes

    def first_frame(self, capture: cv2.VideoCapture) -> np.ndarray | None:
        """The first good frame within MAX_BAD_FRAMES reads (cameras hand out a few bad ones while they start)."""
        for attempt in range(MAX_BAD_FRAMES):
            ok, frame = capture.read()
            if is_frame(ok, frame):
                self.skipped += attempt
                return frame
        return None

    def __iter__(self) -> Iterator[np.ndarray]:
        bad = 0  # failed grabs in a row: one corrupt frame fails a grab, the end of a file or a camera many
        while not self.stopping.is_set():
            if self.first is not None:  # read by opening or reopening
                frame, self.first = self.first, None
                yield frame
            elif not self.capture.grab():
                bad += 1
                if bad < MAX_BAD_FRAMES and not self.at_end():
                    continue
                if not self.restart():
                    return
                bad = 0
            else:
                ok, frame = self.capture.retrieve()
                if is_frame(ok, frame):
                    self.skipped += bad  # the failed grabs were frames after all
                    bad = 0
                    yield frame
                else:
                    self.skipped += 1

    def at_end(self) -> bool:
        """A file's position at or past its frame count (a live source has no end)."""
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return not self.live and count > 0 and self.capture.get(cv2.CAP_PROP_POS_FRAMES) >= count

    def reopen(self) -> bool:
        """A new capture; True when it delivers a first frame (kept in `first`)."""
        self.capture.release()
        self.capture = self.opener()
        self.first = self.first_frame(self.capture)
        return self.first is not None

    def restart(self) -> bool:
        """After a failed grab: True once the source delivers again (a loop or a reconnection), else False."""
        if self.loop and not self.live:
            return self.reopen()
        if not (self.live and self.reconnect):
            if self.live:
                log.warning("%s %s stopped delivering frames; ending (--reconnect keeps trying)", self.kind, self.spec)
            return False
        attempt = 0
        while not self.stopping.is_set():
            delay = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
            attempt += 1
            log.warning("%s %s stopped delivering frames; reopening in %.1f s (attempt %d)",
                        self.kind, self.spec, delay, attempt)
            if self.stopping.wait(delay):
                return False
            if self.reopen():
                self.reopened += 1
                log.info("%s %s reconnected", self.kind, self.spec)
                return True
        return False

    def close(self) -> None:
        self.capture.release()


class ImageFolderSource(FrameSource):
    """The images of a folder in natural name order (2 before 10); unreadable ones are skipped and counted."""

    def __init__(self, spec: str, paths: list[Path], loop: bool = False) -> None:
        super().__init__("images", spec, live=False, fps=DEFAULT_FPS, frame_count=None if loop else len(paths))
        self.paths, self.loop = paths, loop

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            yielded = False
            for path in self.paths:
                if self.stopping.is_set():
                    return
                frame = read_bgr(path)
                if frame is None:
                    log.warning("skipping unreadable image %s", path)
                    self.skipped += 1
                    continue
                yielded = True
                yield frame
            if not (self.loop and yielded):
                return


def fourcc_text(code: float) -> str:
    value = int(code)
    return "".join(chr((value >> (8 * i)) & 0xFF) for i in range(4)).strip("\0") or "?"


def open_camera(device: str, size: tuple[int, int] | None = None, fps: float | None = None,
                camera_format: str = "MJPG", reconnect: bool = False, option: str = "camera") -> FrameSource:
    """A V4L2 device path or an index. MJPG by default: USB cameras give full frame rates at HD only compressed."""
    if camera_format not in CAMERA_FORMATS:
        raise UserError(f"camera format {camera_format}: choose one of {', '.join(CAMERA_FORMATS)}")
    index_or_path: int | str = int(device) if device.isdigit() else device
    if isinstance(index_or_path, str) and not Path(index_or_path).exists():
        raise UserError(f"{option} {device}: no such device (list them with `v4l2-ctl --list-devices`)")
    api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY

    def opener() -> cv2.VideoCapture:
        capture = cv2.VideoCapture(index_or_path, api)
        # The pixel format first: a V4L2 driver picks the sizes and rates it offers for that format.
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*camera_format))
        if size:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps:
            capture.set(cv2.CAP_PROP_FPS, fps)
        return capture

    source = CaptureSource("camera", device, opener, live=True, reconnect=reconnect)
    if not source.capture.isOpened():
        source.close()
        raise UserError(f"{option} {device}: cannot open the camera (in use by another program, or no permission)")
    if source.first is None:
        source.close()
        raise UserError(f"{option} {device}: the camera opened but delivers no frames; try the YUYV camera format "
                        "or another size")
    got = fourcc_text(source.capture.get(cv2.CAP_PROP_FOURCC))
    height, width = source.first.shape[:2]
    log.info("camera %s: %dx%d at %.0f frames/s, %s", device, width, height, source.fps, got)
    if got not in (camera_format, "?"):
        log.warning("camera format %s: the camera gives %s instead", camera_format, got)
    if size and (width, height) != tuple(size):
        log.warning("size %dx%d: the camera gives %dx%d instead", *size, width, height)
    if fps and abs(source.fps - fps) > 0.5:
        log.warning("%g frames/s asked for: the camera gives %g instead", fps, source.fps)
    return source


def open_url(url: str, reconnect: bool = False, option: str = "url") -> FrameSource:
    """An RTSP or HTTP stream through OpenCV's FFmpeg backend; live."""
    source = CaptureSource("url", url, lambda: cv2.VideoCapture(url, cv2.CAP_FFMPEG), live=True, reconnect=reconnect)
    if source.first is None:
        source.close()
        raise UserError(f"{option} {url}: cannot open or decode the stream (check the address and that it is up)")
    return source


def open_video(path: str, loop: bool = False, option: str = "video") -> FrameSource:
    if Path(path).is_dir():
        raise UserError(f"{option} {path}: is a folder; give a video file (or open the folder as images)")
    if not Path(path).is_file():
        raise UserError(f"{option} {path}: no such file")
    source = CaptureSource("video", path, lambda: cv2.VideoCapture(path), live=False, loop=loop)
    if source.first is None:
        source.close()
        raise UserError(f"{option} {path}: OpenCV cannot decode it (is it a video file?)")
    if loop:
        source.frame_count = None
    return source


def open_images(folder: str, loop: bool = False, option: str = "images") -> FrameSource:
    root = Path(folder)
    if not root.is_dir():
        what = "a file, not a folder of images (a video? open it as one)" if Path(folder).is_file() \
            else "no such folder"
        raise UserError(f"{option} {folder}: {what}")
    paths = sorted((p for p in root.iterdir() if p.is_file() and is_image(p)), key=lambda p: natural_key(p.name))
    if not paths:
        raise UserError(f"{option} {folder}: holds no images (.png, .jpg, ...)")
    return ImageFolderSource(folder, paths, loop)


KINDS = ("camera", "url", "video", "images")


def source_kind(spec: str) -> str:
    """What `spec` names: a `camera` (a device under /dev, or an index), a `url` (SCHEME://...), `images` (a folder)
    or a `video` (anything else: a file)."""
    if spec.isdigit() or spec.startswith("/dev/"):
        return "camera"
    if "://" in spec:
        return "url"
    return "images" if Path(spec).is_dir() else "video"


def open_source(spec: str, *, kind: str | None = None, option: str | None = None,
                size: tuple[int, int] | None = None, fps: float | None = None, camera_format: str = "MJPG",
                loop: bool = False, reconnect: bool = False) -> FrameSource:
    """Frames from `spec`, a camera, stream, video file or folder of images as the spec says (`source_kind`) unless
    `kind` is given. size, fps and camera_format apply to a camera, `reconnect` to a camera or stream, `loop` to a
    file or folder. Errors name the spec as `option` (default: its kind), as a command line names its option."""
    kind = kind or source_kind(spec)
    if kind not in KINDS:
        raise ValueError(f"source kind {kind!r}: one of {', '.join(KINDS)}")
    option = option or kind
    live = kind in ("camera", "url")
    if live and loop:
        raise UserError(f"{option} {spec}: is live; loop applies to a video file or a folder of images")
    if not live and reconnect:
        raise UserError(f"{option} {spec}: a file or folder cannot disconnect; reconnect applies to a camera or stream")
    if kind != "camera" and (size or fps):
        raise UserError(f"{option} {spec}: {'a size' if size else 'a frame rate'} applies to a camera only")
    if kind == "camera":
        return open_camera(spec, size, fps, camera_format, reconnect, option)
    if kind == "url":
        return open_url(spec, reconnect, option)
    return open_video(spec, loop, option) if kind == "video" else open_images(spec, loop, option)
