"""FrameSource: every camera, video file and image folder as one iterator of uint8 BGR frames."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from blur2blur.errors import UserError
from blur2blur.images import is_image, natural_key, read_bgr

log = logging.getLogger(__name__)


class FrameSource:
    """Frames from a camera (`live`: may drop when behind), a video file or an image folder (never drop)."""

    def __init__(self, kind: str, spec: str, live: bool, fps: float) -> None:
        self.kind, self.spec, self.live, self.fps = kind, spec, live, fps
        self.skipped = 0  # corrupt frames or unreadable images, counted

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class CaptureSource(FrameSource):
    """A camera (V4L2 path or index) or a video file through cv2.VideoCapture."""

    def __init__(self, kind: str, spec: str, capture: cv2.VideoCapture, live: bool, first: np.ndarray | None = None) -> None:
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        super().__init__(kind, spec, live, fps if 1.0 <= fps <= 240.0 else 25.0)
        self.capture = capture
        self.first = first  # read while opening, to prove the file decodes

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            if self.first is not None:
                ok, frame, self.first = True, self.first, None
            else:
                ok, frame = self.capture.read()
            if not ok:
                return
            if frame is None or frame.ndim != 3 or frame.shape[2] != 3:
                self.skipped += 1
                continue
            yield frame

    def close(self) -> None:
        self.capture.release()


class ImageFolderSource(FrameSource):
    """The images of a folder in natural name order (2 before 10); unreadable ones are skipped and counted."""

    def __init__(self, spec: str, paths: list[Path]) -> None:
        super().__init__("images", spec, live=False, fps=25.0)
        self.paths = paths

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.paths:
            frame = read_bgr(path)
            if frame is None:
                log.warning("skipping unreadable image %s", path)
                self.skipped += 1
                continue
            yield frame


def open_camera(device: str, size: tuple[int, int] | None = None, fps: float | None = None) -> FrameSource:
    """A V4L2 device path or index, asked for MJPG so USB cameras keep their frame rate."""
    index_or_path: int | str = int(device) if device.isdigit() else device
    if isinstance(index_or_path, str) and not Path(index_or_path).exists():
        raise UserError(f"--camera {device}: no such device (list them with `v4l2-ctl --list-devices`)")
    capture = cv2.VideoCapture(index_or_path)
    if not capture.isOpened():
        raise UserError(f"--camera {device}: cannot open the camera (in use by another program, or no permission)")
    capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
    if size:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
    if fps:
        capture.set(cv2.CAP_PROP_FPS, fps)
    return CaptureSource("camera", device, capture, live=True)


def open_video(path: str) -> FrameSource:
    if not Path(path).is_file():
        raise UserError(f"--video {path}: no such file")
    capture = cv2.VideoCapture(path)
    ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        raise UserError(f"--video {path}: OpenCV cannot decode it (is it a video file?)")
    return CaptureSource("video", path, capture, live=False, first=first)


def open_images(folder: str) -> FrameSource:
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"--images {folder}: no such folder")
    paths = sorted((p for p in root.iterdir() if p.is_file() and is_image(p)), key=lambda p: natural_key(p.name))
    if not paths:
        raise UserError(f"--images {folder}: holds no images (.png, .jpg, ...)")
    return ImageFolderSource(folder, paths)


def open_source(
    camera: str | None = None,
    video: str | None = None,
    images: str | None = None,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
) -> FrameSource:
    """Exactly one of camera, video or images; size and fps apply to a camera."""
    if sum(bool(value) for value in (camera, video, images)) != 1:
        raise UserError("give exactly one source: --camera DEVICE, --video FILE or --images DIR")
    if camera:
        return open_camera(camera, size, fps)
    return open_video(video) if video else open_images(images)
