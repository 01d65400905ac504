"""Photographs that Debian's wallpaper packages install, cut into sharp tiles: the `photos` content source.

The list (`photos.csv` beside this file) names each photograph's path, package, version, sha256 and licence.
Each photograph is reduced to a few working scales (never enlarged) and cut into tiles; a tile is kept when at
least half of its 32-pixel blocks hold detail that is in focus, which leaves out flat sky, bokeh and soft
backgrounds: those are no sharp target for a deblurrer.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from blur2blur.errors import UserError
from blur2blur.images import decode_bgr

log = logging.getLogger(__name__)

PHOTO_LIST = Path(__file__).with_name("photos.csv")
SCALES = (1024, 1600, 2560)  # the long side each photograph is reduced to (a smaller one is taken as it is, once)
TILE = 320  # a side: a 256-pixel pair with a 32-pixel margin (larger crops are enlarged a little)
BLOCK = 32
MIN_DETAIL = 0.01  # RMS gradient (per pixel, of 0-1 grey) under which a block is flat
MAX_SOFTNESS = 0.6  # gradient energy kept by a 1-pixel Gaussian blur, over which a block is already soft
MIN_SHARP_SHARE = 0.5


@dataclass(frozen=True)
class Photo:
    path: Path
    package: str
    version: str
    sha256: str
    licence: str


def read_photo_list(path: str | Path = PHOTO_LIST) -> list[Photo]:
    """The photographs a list names (CSV: path,package,version,sha256,licence; `#` lines are comments)."""
    try:
        lines = [line for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]
    except OSError as err:
        raise UserError(f"photo list {path}: cannot read it ({err.strerror})") from None
    rows = list(csv.DictReader(lines))
    fields = ("path", "package", "version", "sha256", "licence")
    if not rows or any(row.get(f) in (None, "") for row in rows for f in fields):
        raise UserError(f"photo list {path}: every row needs {', '.join(fields)}")
    return [Photo(Path(row["path"]), row["package"], row["version"], row["sha256"], row["licence"]) for row in rows]


def sharp_share(tile_bgr: np.ndarray) -> float:
    """The share of BLOCK-pixel blocks of a tile that hold detail (RMS gradient over MIN_DETAIL) which is in
    focus (a 1-pixel Gaussian blur keeps under MAX_SOFTNESS of its gradient energy)."""
    grey = cv2.cvtColor(tile_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0

    def block_energy(image: np.ndarray) -> np.ndarray:
        gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3) / 8.0
        gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3) / 8.0
        h, w = (s // BLOCK * BLOCK for s in image.shape)
        energy = (gx * gx + gy * gy)[:h, :w]
        return energy.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean(axis=(1, 3))

    energy = block_energy(grey)
    kept = block_energy(cv2.GaussianBlur(grey, (0, 0), 1.0)) / np.maximum(energy, 1e-12)
    return float(((np.sqrt(energy) > MIN_DETAIL) & (kept < MAX_SOFTNESS)).mean())


def _install_hint(packages: list[str]) -> str:
    return f"sudo apt-get install -y {' '.join(sorted(set(packages)))}"


def photo_tiles(list_path: str | Path = PHOTO_LIST, option: str = "--sharp") -> Iterator[tuple[str, np.ndarray]]:
    """(name, uint8 BGR tile of TILE x TILE) for every sharp tile of the listed photographs, in list order.

    A photograph that is missing or whose sha256 differs is left out with a warning; none at all present is a
    UserError that names the apt-get command."""
    photos = read_photo_list(list_path)
    missing = [p for p in photos if not p.path.is_file()]
    if len(missing) == len(photos):
        raise UserError(f"{option} photos: none of the {len(photos)} photographs in {list_path} is installed; "
                        f"install them with: {_install_hint([p.package for p in photos])}")
    if missing:
        log.warning("%s photos: %d of %d photographs are not installed (%s); install them with: %s", option,
                    len(missing), len(photos), ", ".join(p.path.name for p in missing[:3]),
                    _install_hint([p.package for p in missing]))
    for photo in photos:
        if photo in missing:
            continue
        data = photo.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != photo.sha256:
            log.warning("%s photos: %s differs from the listed one (%s %s installs another?); leaving it out",
                        option, photo.path, photo.package, photo.version)
            continue
        image = decode_bgr(data)  # the bytes just checked, not a second read
        if image is None:
            log.warning("%s photos: %s is unreadable; leaving it out", option, photo.path)
            continue
        long_side = max(image.shape[:2])
        for factor in sorted({min(1.0, scale / long_side) for scale in SCALES}):
            scaled = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            h, w = scaled.shape[:2]
            for y in range(0, h - TILE + 1, TILE):
                for x in range(0, w - TILE + 1, TILE):
                    tile = scaled[y : y + TILE, x : x + TILE]
                    if sharp_share(tile) >= MIN_SHARP_SHARE:
                        yield f"photos{photo.path.with_suffix('')}@{w}/{y}_{x}", np.ascontiguousarray(tile)
