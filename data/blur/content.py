"""Sharp content to synthesise blur from, without downloads: user folders/videos, packaged photos, dead leaves."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from blur2blur.data.blur.deadleaves import dead_leaves
from blur2blur.data.blur.photos import photo_tiles
from blur2blur.data.imagesets import open_images
from blur2blur.errors import UserError
from blur2blur.images import read_bgr, to_bgr8

log = logging.getLogger(__name__)

# Colour photographs shipped inside the scikit-image wheel (skimage/data/), so no network is needed.
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "ihc.png",
)
# Grey textures and scenes in the same folder: what textured dead leaves fill their leaves with, with the photos.
SKIMAGE_TEXTURES = ("camera.png", "brick.png", "grass.png", "gravel.png", "coins.png", "moon.png", "text.png",
                    "page.png")
DEADLEAVES_COUNT = 16  # `deadleaves` / `texleaves` without :N
DEADLEAVES_SIZE = 512
DEFAULT_SPEC = "skimage+deadleaves"
VIDEO_FRAME_STEP = 12


def skimage_photos(names: tuple[str, ...] = SKIMAGE_PHOTOS) -> Iterator[tuple[str, np.ndarray]]:
    """(name, uint8 BGR) for bundled scikit-image images; a missing file is logged and left out."""
    import skimage.data  # only to find the data folder; the files are read directly, never fetched

    folder = Path(skimage.data.__file__).parent
    for name in names:
        image = read_bgr(folder / name)
        if image is None:
            log.warning("scikit-image photo %s is missing from %s; leaving it out", name, folder)
            continue
        yield f"skimage/{Path(name).stem}", image


def deadleaves_images(count: int, size: int = DEADLEAVES_SIZE) -> Iterator[tuple[str, np.ndarray]]:
    """count procedural dead-leaves images, image i drawn from the seed [1234, i] (the same every run)."""
    for i in range(count):
        yield f"deadleaves/{i:04d}", to_bgr8(dead_leaves(size, np.random.default_rng([1234, i])))


def texleaves_images(count: int, size: int = DEADLEAVES_SIZE) -> Iterator[tuple[str, np.ndarray]]:
    """count dead-leaves images whose larger leaves hold rescaled, recoloured crops of scikit-image's photos and
    grey textures (seed [4321, i]): occlusions with natural texture inside, closer to photographs than flat leaves."""
    textures = [image for _, image in skimage_photos(SKIMAGE_PHOTOS + SKIMAGE_TEXTURES)]
    for i in range(count):
        image = dead_leaves(size, np.random.default_rng([4321, i]), textures=textures, alpha=2.5, r_min=3.0,
                            r_max=size / 3)
        yield f"texleaves/{i:04d}", to_bgr8(image)


def _deadleaves_count(word: str, option: str) -> int:
    kind, _, count = word.partition(":")
    if not count:
        return DEADLEAVES_COUNT
    if not count.isdigit() or int(count) < 1:
        raise UserError(f"{option} {word}: {kind}:N takes a positive whole number, not '{count}'")
    return int(count)


def _images_of(part: str, option: str) -> Iterator[tuple[str, np.ndarray | None]]:
    """(name, image or None when unreadable) for one comma-separated part of a spec, decoded lazily."""
    word = part.strip()
    low = word.lower()
    if low in ("skimage", "skimage+deadleaves"):
        yield from skimage_photos()
    if low == "deadleaves" or low.startswith("deadleaves:") or low == "skimage+deadleaves":
        yield from deadleaves_images(_deadleaves_count(word if low.startswith("deadleaves") else "", option))
    if low == "texleaves" or low.startswith("texleaves:"):
        yield from texleaves_images(_deadleaves_count(word, option))
    if low == "photos":
        yield from photo_tiles(option=option)
    if low in ("skimage", "deadleaves", "texleaves", "skimage+deadleaves", "photos") or low.startswith(
            ("deadleaves:", "texleaves:")):
        return
    if not Path(word).expanduser().exists() and not any(c in word for c in ":/\\"):
        raise UserError(
            f"{option} {word}: neither a file, a folder nor a known source; "
            f"use a folder, a video, photos, skimage, deadleaves[:N], texleaves[:N] or {DEFAULT_SPEC}"
        )
    # Neighbouring video frames are near copies: about two a second give the same content for less memory.
    images = open_images(word, option=option, frame_step=VIDEO_FRAME_STEP, validate=False)  # decoded below, once
    for i in range(len(images)):
        yield f"{word}/{images.items[i].name}", images.load(i)


def load_sharp_images(
    spec: str = DEFAULT_SPEC, max_images: int | None = None, min_size: int = 64, *, option: str = "--sharp"
) -> list[np.ndarray]:
    """Sharp uint8 BGR images from `spec`: a folder or video, `skimage`, `deadleaves[:N]`,
    `skimage+deadleaves`, or a comma-separated list of these, in that order, at most max_images.
    Images under min_size pixels on a side and unreadable files are skipped and counted in one log
    line; no usable image at all is a UserError."""
    parts = [spec] if Path(spec).expanduser().exists() else [p for p in spec.split(",") if p.strip()]
    if not parts:
        raise UserError(f"{option}: empty; use a folder, a video, skimage, deadleaves[:N] or {DEFAULT_SPEC}")
    kept: list[np.ndarray] = []
    small: list[str] = []
    unreadable: list[str] = []
    for part in parts:
        for name, image in _images_of(part, option):
            if max_images is not None and len(kept) >= max_images:
                log.info("%s: using the first %d images (raise --max-images for more)", spec, max_images)
                break
            if image is None:
                unreadable.append(name)
            elif min(image.shape[:2]) < min_size:
                small.append(name)
            else:
                kept.append(image)
        if max_images is not None and len(kept) >= max_images:
            break
    if small or unreadable:
        left_out = small + unreadable
        names = ", ".join(left_out[:10]) + (", ..." if len(left_out) > 10 else "")
        log.warning(
            "%s: skipped %d images smaller than %d px and %d unreadable: %s",
            spec, len(small), min_size, len(unreadable), names,
        )
    if not kept:
        raise UserError(
            f"{option} {spec}: no usable images ({len(small)} smaller than {min_size} px, {len(unreadable)} unreadable)"
        )
    log.debug("%s: %d sharp images", spec, len(kept))
    return kept
