"""The comparison PNGs of `--grid DIR`: one row of labelled images per evaluated image.

DIR belongs to the grids (outputs.py): they are written into a staging folder beside it, which replaces DIR
as a whole only when the evaluation finished, so a failed or interrupted run leaves DIR as it was.
"""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from blur2blur.apps.side_by_side import label
from blur2blur.data.grid import write_grid
from blur2blur.errors import UserError
from blur2blur.files.locks import Lock, beside
from blur2blur.files.outputs import owned_folder, publish_folder, staging_folder


def grid_name(name: str) -> str:
    """The file name of the grid of the image called `name`: its extension dropped, odd characters as '_'."""
    stem = re.sub(r"\.(png|jpe?g|bmp|tiff?|webp)$", "", name, flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_") + ".png"


class Grids:
    """Writes comparisons into a staging folder; `publish()` puts them in place of the grid folder."""

    def __init__(self, folder: Path, option: str = "--grid") -> None:
        self.folder, self.option = owned_folder(folder, option, "grids"), option
        self.lock = Lock(beside(self.folder), f"{option} {folder}").acquire()
        try:
            self.staging = staging_folder(self.folder)
        except OSError as err:
            self.lock.release()
            raise UserError(f"{option} {folder}: cannot write there ({err.strerror})") from None
        self.written: list[str] = []

    def write(self, name: str, tiles: list[tuple[np.ndarray, str]]) -> None:
        """(image, caption) tiles side by side, each caption written on a copy of its image."""
        file = grid_name(name)
        if file in self.written:  # two images of one name (x.jpg and x.png): keep both
            file = f"{Path(file).stem}_{len(self.written)}.png"
        try:
            write_grid(self.staging / file, [[label(image.copy(), caption) for image, caption in tiles]])
        except OSError as err:
            kept = "the previous grids are kept" if self.folder.exists() else "none were written"
            raise UserError(f"{self.option} {self.folder}: could not be written ({err.strerror}; is the disk "
                            f"full?); {kept}") from None
        self.written.append(file)

    def publish(self) -> None:
        publish_folder(self.staging, self.folder, self.option, "grids")


@contextmanager
def grid_folder(folder: str | Path | None) -> Iterator[Grids | None]:
    """Grids for `--grid folder` (None without one), published when the block ends without an error."""
    if folder is None:
        yield None
        return
    grids = Grids(Path(folder))
    try:
        yield grids
        grids.publish()
    finally:
        shutil.rmtree(grids.staging, ignore_errors=True)
        grids.lock.release()
