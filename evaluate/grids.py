"""The comparison PNGs of `--grid DIR`: one row of labelled images per evaluated image.

They are written into a staging folder beside DIR and moved into DIR only when the evaluation finished, so a
failed or interrupted run leaves none behind.
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from blur2blur.apps.side_by_side import label
from blur2blur.errors import UserError
from blur2blur.train.records import write_grid


def grid_name(name: str) -> str:
    """The file name of the grid of the image called `name`: its extension dropped, odd characters as '_'."""
    stem = re.sub(r"\.(png|jpe?g|bmp|tiff?|webp)$", "", name, flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_") + ".png"


class Grids:
    """Writes comparisons into a staging folder; `publish()` moves them into the grid folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.staging = folder.parent / f".{folder.name}.partial-{os.getpid()}"
        self.written: list[str] = []

    def write(self, name: str, tiles: list[tuple[np.ndarray, str]]) -> None:
        """(image, caption) tiles side by side, each caption written on a copy of its image."""
        file = grid_name(name)
        if file in self.written:  # two images of one name (x.jpg and x.png): keep both
            file = f"{Path(file).stem}_{len(self.written)}.png"
        write_grid(self.staging / file, [[label(image.copy(), caption) for image, caption in tiles]])
        self.written.append(file)

    def publish(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for file in self.written:
            os.replace(self.staging / file, self.folder / file)
        shutil.rmtree(self.staging, ignore_errors=True)


@contextmanager
def grid_folder(folder: str | Path | None) -> Iterator[Grids | None]:
    """Grids for `--grid folder` (None without one), published when the block ends without an error."""
    if folder is None:
        yield None
        return
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise UserError(f"--grid {folder}: is a file; give a folder (made if needed)")
    grids = Grids(path)
    try:
        grids.staging.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--grid {folder}: cannot write there ({err.strerror})") from None
    try:
        yield grids
        grids.publish()
    finally:
        shutil.rmtree(grids.staging, ignore_errors=True)
