"""Procedural dead-leaves images: sharp, scale-invariant content with no download."""

from __future__ import annotations

import math

import cv2
import numpy as np

_SUBPIXEL_BITS = 4  # cv2 drawing with 1/16-pixel centres and radii


def _power_law_radii(rng: np.random.Generator, n: int, r_min: float, r_max: float, alpha: float) -> np.ndarray:
    """`n` radii with density proportional to r^-alpha on [r_min, r_max] (inverse-CDF sampling)."""
    u = rng.random(n)
    if abs(alpha - 1.0) < 1e-9:
        return r_min * (r_max / r_min) ** u
    e = 1.0 - alpha
    return (r_min**e + u * (r_max**e - r_min**e)) ** (1.0 / e)


def _leaf_colours(rng: np.random.Generator, n: int, highlight_prob: float) -> np.ndarray:
    """`n` random colours in 0-255: greys mixed towards random hues; a few near-white highlights."""
    grey = rng.uniform(0.0, 255.0, (n, 1))
    hue = rng.uniform(0.0, 255.0, (n, 3))
    colours = grey + rng.uniform(0.0, 1.0, (n, 1)) * (hue - grey)
    highlight = rng.random(n) < highlight_prob
    colours[highlight] = rng.uniform(245.0, 255.0, (int(highlight.sum()), 3))
    return colours


def dead_leaves(
    size: int,
    rng: np.random.Generator,
    *,
    alpha: float = 3.0,
    r_min: float = 1.5,
    r_max: float | None = None,
    coverage: float = 4.0,
    highlight_prob: float = 0.03,
    texture: float = 0.02,
) -> np.ndarray:
    """A `size` x `size` uint8 BGR dead-leaves image: opaque anti-aliased discs in random order.

    Radii follow a power law r^-`alpha` (3 is scale-invariant, like natural images) between `r_min`
    and `r_max` (default size / 4); discs are added until their total area is `coverage` times the
    image. A fraction `highlight_prob` of discs is near-white (highlights that can saturate);
    `texture` is the std (in [0, 1] units) of a fine grain added so flat leaves are not perfectly flat.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    r_max = size / 4.0 if r_max is None else r_max
    r_max = max(r_max, r_min)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = _leaf_colours(rng, 1, 0.0)[0]

    target_area, area = coverage * size * size, 0.0
    scale = 1 << _SUBPIXEL_BITS
    while area < target_area:
        radii = _power_law_radii(rng, 1024, r_min, r_max, alpha)
        centres = np.rint(rng.uniform(-0.1 * size, 1.1 * size, (1024, 2)) * scale).astype(int).tolist()
        colours = _leaf_colours(rng, 1024, highlight_prob).tolist()
        for r, centre, colour in zip(radii.tolist(), centres, colours):
            cv2.circle(image, centre, int(round(r * scale)), colour,
                       thickness=-1, lineType=cv2.LINE_AA, shift=_SUBPIXEL_BITS)
            area += math.pi * r * r
            if area >= target_area:
                break

    if texture > 0:
        grain = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 0.8)
        grain *= texture * 255.0 / max(float(grain.std()), 1e-6)
        image = np.clip(image.astype(np.float32) + grain[:, :, None] + 0.5, 0.0, 255.0).astype(np.uint8)
    return image
