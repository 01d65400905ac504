"""Frames outside the bundle's shape bounds, brought inside them by one stated policy.

A frame larger than the largest shape is shrunk to fit (aspect kept, INTER_AREA) and the restored frame scaled
back to its size; a frame smaller than the smallest shape is edge-padded at the bottom and right, and the padding
cropped off again. Frames inside the bounds pass untouched: the host does no per-pixel work for them.
"""

from __future__ import annotations

import logging
from typing import Callable

import cv2
import numpy as np

from blur2blur.runtime.bundle import ShapeBounds

log = logging.getLogger(__name__)
POLICY = ("frames larger than the bundle's largest shape are shrunk to fit and the result scaled back; "
          "smaller ones are edge-padded and the padding cropped off")


class BoundsFit:
    """Brings batches into a bundle's `ShapeBounds`; counts the frames it resized and padded."""

    def __init__(self, bounds: ShapeBounds | None) -> None:
        self.bounds = bounds
        self.resized = self.padded = 0
        self.warned: set[tuple[int, int]] = set()

    def prepare(self, frames: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        """`frames` (N x H x W x 3) inside the bounds, and the function that maps the engine's output back."""
        if self.bounds is None:
            return frames, lambda restored: restored
        height, width = frames.shape[1:3]
        (min_h, min_w), (max_h, max_w) = self.bounds.min, self.bounds.max
        fitted_h, fitted_w = height, width
        if height > max_h or width > max_w:
            scale = min(max_h / height, max_w / width)
            fitted_h, fitted_w = max(1, min(max_h, round(height * scale))), max(1, min(max_w, round(width * scale)))
        padded_h, padded_w = max(fitted_h, min_h), max(fitted_w, min_w)
        if (padded_h, padded_w) == (height, width):
            return frames, lambda restored: restored
        if (height, width) not in self.warned:
            self.warned.add((height, width))
            log.warning("frames of %dx%d are outside the bundle's %dx%d..%dx%d (WxH): %s",
                        width, height, min_w, min_h, max_w, max_h, POLICY)
        prepared = frames
        if (fitted_h, fitted_w) != (height, width):
            self.resized += len(frames)
            prepared = np.stack([cv2.resize(f, (fitted_w, fitted_h), interpolation=cv2.INTER_AREA) for f in frames])
        if (padded_h, padded_w) != (fitted_h, fitted_w):
            self.padded += len(frames)
            padding = ((0, 0), (0, padded_h - fitted_h), (0, padded_w - fitted_w), (0, 0))
            prepared = np.pad(prepared, padding, mode="edge")

        def restore(restored: np.ndarray) -> np.ndarray:
            restored = restored[:, :fitted_h, :fitted_w]
            if (fitted_h, fitted_w) == (height, width):
                return np.ascontiguousarray(restored)
            return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in restored])

        return np.ascontiguousarray(prepared), restore
