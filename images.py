"""Reading images and videos without torch: 8-bit BGR, whatever the file holds (writing them: files/atomic.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def natural_key(text: str) -> list:
    """Sort key that puts `frame2` before `frame10`."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", text)]


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, BGRA, 16-bit, float) as H x W x 3 uint8 BGR."""
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 1:
        image = cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def read_bgr(path: str | Path) -> np.ndarray | None:
    """Decode an image file as H x W x 3 uint8 BGR; None when it is unreadable or truncated."""
    return decode_bgr(np.fromfile(str(path), dtype=np.uint8)) if os.path.isfile(path) else None


def decode_bgr(data: bytes | np.ndarray) -> np.ndarray | None:
    """Decode an encoded image (PNG, JPEG, ...) as H x W x 3 uint8 BGR; None when it is no image or truncated."""
    data = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        return None
    try:
        return to_bgr8(image)
    except ValueError:
        return None


def video_frame_count(path: str | Path) -> int | None:
    """How many frames a written video holds by its index, provided its last frame decodes; None when it does
    not open (a truncated MP4 has no index) or its last frame is unreadable. Cheap: one frame is decoded."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return None
        frames = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)  # some containers report -1
        if frames > 0:
            capture.set(cv2.CAP_PROP_POS_FRAMES, frames - 1)
            if not capture.grab():
                return None
        return frames
    finally:
        capture.release()
