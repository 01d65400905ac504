"""Blur kernels: linear motion, smooth camera motion, camera-shake trajectories, lens defocus, Gaussian; their
combination; and true convolution.

Every generator returns a float32 2-D kernel that sums to 1, has odd height and width, and has its
centre of mass on the centre pixel, so blurring never shifts the content of an image.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Sub-samples per pixel of path when a line or trajectory is rasterised.
_SAMPLES_PER_PX = 8


def _delta() -> np.ndarray:
    return np.ones((1, 1), np.float32)


def _finish(kernel: np.ndarray) -> np.ndarray:
    """Drop round-off dust, trim all-zero borders symmetrically per axis, normalise to sum 1."""
    kernel = np.where(kernel > kernel.max() * 1e-7, kernel, 0.0)
    rows = np.flatnonzero(kernel.any(axis=1))
    cols = np.flatnonzero(kernel.any(axis=0))
    cy, cx = kernel.shape[0] // 2, kernel.shape[1] // 2
    ry = max(cy - rows[0], rows[-1] - cy)
    rx = max(cx - cols[0], cols[-1] - cx)
    kernel = kernel[cy - ry : cy + ry + 1, cx - rx : cx + rx + 1]
    return (kernel / kernel.sum()).astype(np.float32)


def _splat(xs: np.ndarray, ys: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Bilinearly splat weighted points (pixel offsets from the centre) into an odd, centred kernel."""
    radius = int(math.ceil(max(np.abs(xs).max(), np.abs(ys).max()))) + 1
    kernel = np.zeros((2 * radius + 1, 2 * radius + 1), np.float64)
    fx, fy = xs + radius, ys + radius
    x0, y0 = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    ax, ay = fx - x0, fy - y0
    for dy, wy in ((0, 1.0 - ay), (1, ay)):
        for dx, wx in ((0, 1.0 - ax), (1, ax)):
            np.add.at(kernel, (y0 + dy, x0 + dx), weights * wy * wx)
    return _finish(kernel)


def linear_motion(length_px: float, angle_deg: float) -> np.ndarray:
    """Uniform motion along a straight line of `length_px` (sub-pixel allowed), anti-aliased.

    `angle_deg` is counter-clockwise from the image's +x axis as displayed (y points down), so
    0 is horizontal and 90 vertical.
    """
    if length_px <= 0:
        return _delta()
    n = max(2, int(math.ceil(length_px * _SAMPLES_PER_PX)))
    t = ((np.arange(n) + 0.5) / n - 0.5) * length_px  # midpoints of n equal pieces of the segment
    angle = math.radians(angle_deg)
    return _splat(t * math.cos(angle), -t * math.sin(angle), np.full(n, 1.0 / n))


def _shake_path(
    rng: np.random.Generator, steps: int, anxiety: float, impulse_prob: float, centripetal: float
) -> np.ndarray:
    """A random walk with inertia: complex positions, one per equal slice of exposure time."""
    position = 0.0 + 0.0j
    velocity = np.exp(1j * rng.uniform(0.0, 2.0 * np.pi))
    log_speed = 0.0
    path = [position]
    for _ in range(steps):
        push = anxiety * complex(rng.normal(), rng.normal())
        if rng.random() < impulse_prob:  # a jerk of the hand: a sudden change of direction
            push += rng.uniform(1.0, 2.0) * np.exp(1j * rng.uniform(0.0, 2.0 * np.pi))
        # the pull back towards the start keeps a shake oscillating instead of drifting away
        velocity = velocity + push - centripetal * position / steps
        velocity /= max(abs(velocity), 1e-9)
        # the hand speeds up and slows down; where it lingers the kernel gets bright
        log_speed = float(np.clip(log_speed + 0.35 * rng.normal(), -1.5, 1.0))
        position = position + velocity * math.exp(log_speed)
        path.append(position)
    return np.asarray(path)


def shake_trajectory(
    rng: np.random.Generator,
    max_length_px: float,
    *,
    anxiety: float = 0.08,
    impulse_prob: float = 0.03,
    centripetal: float = 0.3,
    exposure: float = 1.0,
    steps: int = 64,
) -> np.ndarray:
    """A random camera-shake kernel (after Boracchi & Foi 2012) with a path `max_length_px` long.

    The path is a random walk with inertia (`anxiety`: random acceleration per step), occasional
    impulsive jerks (`impulse_prob` per step) and a pull back to the start (`centripetal`). Each
    step lasts the same time, so the kernel is bright where the hand moved slowly. `exposure` in
    (0, 1] keeps only the first part of the motion, as a shorter shutter would.
    """
    if not 0.0 < exposure <= 1.0:
        raise ValueError(f"exposure must be in (0, 1], got {exposure}")
    if max_length_px <= 0:
        return _delta()
    path = _shake_path(rng, steps, anxiety, impulse_prob, centripetal)
    seg = np.diff(path)
    path = path * (max_length_px / max(np.abs(seg).sum(), 1e-9))
    kept = max(1, int(round(exposure * steps)))
    start, seg = path[:kept], np.diff(path[: kept + 1])
    # each time step is split into sub-samples in proportion to the distance covered
    per_step = np.maximum(1, np.ceil(np.abs(seg) * _SAMPLES_PER_PX)).astype(np.int64)
    which = np.repeat(np.arange(kept), per_step)
    offsets = np.concatenate([(np.arange(m) + 0.5) / m for m in per_step])
    points = start[which] + offsets * seg[which]
    weights = 1.0 / (kept * per_step[which])
    points = points - np.sum(points * weights) / weights.sum()  # centre of mass on the centre pixel
    return _splat(points.real, points.imag, weights)


def camera_motion(rng: np.random.Generator, length_px: float) -> np.ndarray:
    """Smooth camera motion, as GoPro's frame averaging records it: a gently curving path `length_px`
    long in a random direction, with the speed varying along it (no jerks, no pull back)."""
    return shake_trajectory(rng, length_px, anxiety=0.05, impulse_prob=0.0, centripetal=0.0)


def defocus_disk(radius_px: float) -> np.ndarray:
    """A uniform disk of `radius_px`, each pixel weighted by the fraction of it the disk covers."""
    if radius_px <= 0:
        return _delta()
    half = int(math.ceil(radius_px)) + 1
    size, sub = 2 * half + 1, 8
    coords = (np.arange(size * sub) + 0.5) / sub - (half + 0.5)
    inside = (coords[None, :] ** 2 + coords[:, None] ** 2) <= radius_px**2
    coverage = inside.reshape(size, sub, size, sub).mean(axis=(1, 3))
    return _finish(coverage)


def gaussian(sigma_px: float) -> np.ndarray:
    """An isotropic Gaussian of standard deviation `sigma_px`, truncated at 3 sigma."""
    if sigma_px <= 0:
        return _delta()
    radius = max(1, int(math.ceil(3.0 * sigma_px)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma_px) ** 2)
    return _finish(np.outer(g, g))


def combine(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The kernel of blurring by `first` and then by `second`: their full 2-D convolution, normalised.

    Its radius is the sum of theirs; both centred, so is the result.
    """
    ry, rx = second.shape[0] // 2, second.shape[1] // 2
    padded = cv2.copyMakeBorder(first.astype(np.float64), ry, ry, rx, rx, cv2.BORDER_CONSTANT, value=0.0)
    flipped = np.ascontiguousarray(second[::-1, ::-1], dtype=np.float64)  # filter2D correlates
    return _finish(cv2.filter2D(padded, -1, flipped, borderType=cv2.BORDER_CONSTANT))


def convolve(image_float: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """True 2-D convolution of each channel with `kernel`, replicating the border; same shape and dtype."""
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"kernel must be 2-D with odd height and width, got shape {kernel.shape}")
    if image_float.dtype not in (np.float32, np.float64):
        raise ValueError(f"convolve needs a float image, got {image_float.dtype}")
    # cv2.filter2D correlates; correlating with the flipped kernel is convolution
    flipped = np.ascontiguousarray(kernel[::-1, ::-1], dtype=image_float.dtype)
    if image_float.ndim == 3 and image_float.shape[2] > 4:
        planes = [convolve(image_float[:, :, c], kernel) for c in range(image_float.shape[2])]
        return np.stack(planes, axis=2)
    out = cv2.filter2D(image_float, -1, flipped, borderType=cv2.BORDER_REPLICATE)
    return out.reshape(image_float.shape)
