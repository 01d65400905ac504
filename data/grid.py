"""Images laid out in rows on white: the sample and evaluation grids (input | output | target)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blur2blur.files.atomic import write_atomic_png


def grid(rows: list[list[np.ndarray]], gap: int = 4) -> np.ndarray:
    """uint8 BGR images laid out in rows (e.g. input | output | target), on white, each row as tall as its
    tallest image."""
    height = sum(max(image.shape[0] for image in row) for row in rows) + gap * (len(rows) - 1)
    width = max(sum(image.shape[1] for image in row) + gap * (len(row) - 1) for row in rows)
    canvas = np.full((height, width, 3), 255, np.uint8)
    top = 0
    for row in rows:
        left = 0
        for image in row:
            canvas[top:top + image.shape[0], left:left + image.shape[1]] = image
            left += image.shape[1] + gap
        top += max(image.shape[0] for image in row) + gap
    return canvas


def write_grid(path: str | Path, rows: list[list[np.ndarray]]) -> None:
    """The grid of `rows` as a PNG; nothing when there are no rows (no held-out images)."""
    if not rows:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic_png(path, grid(rows))
