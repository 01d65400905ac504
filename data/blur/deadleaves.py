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


def _textured_leaf(image: np.ndarray, centre: list[int], radius: float, rng: np.random.Generator,
                   textures: list[np.ndarray]) -> None:
    """Paint one disc of `image` with a random crop of a random texture, rescaled and recoloured."""
    size = image.shape[0]
    scale = 1 << _SUBPIXEL_BITS
    cx, cy = centre[0] / scale, centre[1] / scale
    x0, y0 = max(int(cx - radius) - 1, 0), max(int(cy - radius) - 1, 0)
    x1, y1 = min(int(cx + radius) + 2, size), min(int(cy + radius) + 2, size)
    if x1 <= x0 or y1 <= y0:
        return
    h, w = y1 - y0, x1 - x0
    source = textures[int(rng.integers(len(textures)))]
    zoom = float(rng.uniform(0.3, 1.0))  # finer than the source: photos at full size are soft for a camera
    sh, sw = int(math.ceil(h / zoom)), int(math.ceil(w / zoom))
    if sh >= source.shape[0] or sw >= source.shape[1]:
        return
    top, left = int(rng.integers(source.shape[0] - sh)), int(rng.integers(source.shape[1] - sw))
    patch = cv2.resize(source[top:top + sh, left:left + sw], (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    # A random colour: the patch's luminance between two random colours, or its own colours with a random gain.
    if rng.random() < 0.5:
        grey = patch.mean(axis=2, keepdims=True) / 255.0
        low, high = _leaf_colours(rng, 2, 0.0)
        patch = low + grey * (high - low)
    else:
        patch = patch * rng.uniform(0.6, 1.3, 3)
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (centre[0] - x0 * scale, centre[1] - y0 * scale), int(round(radius * scale)), 255,
               thickness=-1, lineType=cv2.LINE_AA, shift=_SUBPIXEL_BITS)
    alpha = mask[:, :, None].astype(np.float32) / 255.0
    region = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = np.clip(region + alpha * (patch - region) + 0.5, 0, 255).astype(np.uint8)


def dead_leaves(
    size: int,
    rng: np.random.Generator,
    *,
    textures: list[np.ndarray] | None = None,
    textured_min_radius: float = 6.0,
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
    With `textures` (uint8 BGR images), 70 % of the discs of radius `textured_min_radius` or more are filled
    with a rescaled, recoloured crop of one of them instead of a flat colour: occlusion edges with natural
    texture inside, which teaches a restorer more about photographs than flat leaves do.
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
            if textures and r >= textured_min_radius and rng.random() < 0.7:
                _textured_leaf(image, centre, r, rng, textures)
            else:
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
