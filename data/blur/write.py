"""Synthesise aligned blurry/sharp training pairs, or a blurry video, from sharp images and a domain.

Pair i depends only on (seed, i), so any pair can be regenerated alone and a set is identical for
the same seed, domain, size and sources.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from blur2blur.data.blur.domains import get_domain
from blur2blur.errors import UserError
from blur2blur.files.atomic import FOURCC, AtomicVideo, write_atomic, write_atomic_png
from blur2blur.images import to_bgr8

log = logging.getLogger(__name__)

_PAIR_NAME = re.compile(r"^\d{5,}\.png$")
_SUMMARY = "synth.json"


def _as_sources(sharp_images: Sequence[np.ndarray]) -> list[np.ndarray]:
    images = list(sharp_images)
    if not images:
        raise UserError("no sharp images to synthesise from: give at least one")
    try:
        return [to_bgr8(np.asarray(image)) for image in images]
    except ValueError as err:
        raise UserError(f"sharp images must be 8-bit, 16-bit or float pictures: {err}") from None


def _sources_digest(images: Sequence[np.ndarray]) -> str:
    h = hashlib.blake2b(digest_size=8)
    for image in images:
        h.update(repr(image.shape).encode())
        h.update(image.tobytes())
    return h.hexdigest()


def random_crop(image: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """A random `crop` x `crop` window of `image`, upscaled first if it is too small, randomly flipped."""
    h, w = image.shape[:2]
    if min(h, w) < crop:
        scale = crop / min(h, w)
        size = (max(crop, math.ceil(w * scale)), max(crop, math.ceil(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
        h, w = image.shape[:2]
    y = int(rng.integers(0, h - crop + 1))
    x = int(rng.integers(0, w - crop + 1))
    window = image[y : y + crop, x : x + crop]
    if rng.random() < 0.5:
        window = window[:, ::-1]
    if rng.random() < 0.5:
        window = window[::-1, :]
    return np.ascontiguousarray(window)


def _prepare_out_dir(out_dir: Path, summary: dict[str, Any], overwrite: bool) -> None:
    """Refuse to mix with another synthesis; clear old pairs on overwrite or beyond a resumed count."""
    key = ("domain", "seed", "size", "sources_digest")
    folders = [out_dir / sub for sub in ("blur", "sharp") if (out_dir / sub).is_dir()]
    old_pairs = [p for folder in folders for p in folder.iterdir() if _PAIR_NAME.match(p.name)]
    previous = None
    if (out_dir / _SUMMARY).is_file():
        try:
            previous = json.loads((out_dir / _SUMMARY).read_text())
        except (OSError, ValueError):
            previous = None
    same = previous is not None and all(previous.get(k) == summary[k] for k in key)
    # Not ours, whatever the files' names: --overwrite replaces a synthesis, never a user's own pairs.
    if previous is None and any(any(folder.iterdir()) for folder in folders):
        raise UserError(f"--out {out_dir}: its blur/ or sharp/ holds files that b2b-train synth did not write (no "
                        f"readable {_SUMMARY}); they are left as they are: choose another --out")
    if previous is not None and not same and not overwrite:
        what = (f"a synthesis of domain {previous.get('domain')!r} seed {previous.get('seed')} "
                f"size {previous.get('size')}, {previous.get('sources')} source images")
        raise UserError(f"{out_dir} already holds {what}; choose another folder or pass --overwrite")
    # the same synthesis resumes: keep its pairs below the new count; otherwise start afresh
    stale = [p for p in old_pairs if overwrite or not same or int(p.stem) >= summary["count"]]
    if same and not overwrite and stale:
        log.info("%s: removing %d pairs beyond --count %d", out_dir, len(stale) // 2, summary["count"])
    for path in stale:
        path.unlink()


def synthesize(
    domain: str,
    sharp_images: Sequence[np.ndarray],
    out_dir: str | Path,
    count: int,
    size: int = 256,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write `count` aligned pairs `out_dir/{blur,sharp}/NNNNN.png` of `size` x `size` for `domain`.

    Each pair is a random crop (with the domain's margin) of a random source, blurred and cropped.
    Pairs already written by the same synthesis (same domain, seed, size, sources) are kept, so an
    interrupted run resumes; another synthesis there is a UserError unless `overwrite` (which also
    regenerates every pair). Returns the summary written to `out_dir/synth.json`.
    """
    blur_domain = get_domain(domain)
    if count < 1:
        raise UserError(f"count must be at least 1, got {count}")
    if size < 16:
        raise UserError(f"size must be at least 16 px, got {size}")
    if seed < 0:
        raise UserError(f"seed must be 0 or more, got {seed}")
    sources = _as_sources(sharp_images)
    out_dir = Path(out_dir)
    summary: dict[str, Any] = {
        "count": int(count), "domain": blur_domain.name, "seed": int(seed), "size": int(size),
        "margin": blur_domain.margin, "sources": len(sources), "sources_digest": _sources_digest(sources),
    }
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file; give a folder")
    _prepare_out_dir(out_dir, summary, overwrite)
    try:
        (out_dir / "blur").mkdir(parents=True, exist_ok=True)
        (out_dir / "sharp").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {out_dir}: cannot create it ({err.strerror})") from None
    # written first too, so an interrupted run is recognised as this synthesis and resumed
    (out_dir / _SUMMARY).write_text(json.dumps({**summary, "complete": False}, indent=2))

    crop = size + 2 * blur_domain.margin
    log.info("synthesising %d %s pairs of %d px from %d images into %s",
             count, blur_domain.name, size, len(sources), out_dir)
    for index in tqdm(range(count), desc=f"synth {blur_domain.name}", unit="pair"):
        name = f"{index:05d}.png"
        blur_path, sharp_path = out_dir / "blur" / name, out_dir / "sharp" / name
        if blur_path.is_file() and sharp_path.is_file():
            continue
        rng = np.random.default_rng([seed, index])
        source = sources[int(rng.integers(len(sources)))]
        sharp, blurry = blur_domain.make_pair(random_crop(source, crop, rng), rng)
        write_atomic_png(sharp_path, sharp)
        write_atomic_png(blur_path, blurry)

    summary["complete"] = True
    write_atomic(out_dir / _SUMMARY, json.dumps(summary, indent=2).encode())
    return summary


def _pan_zoom_frame(source: np.ndarray, t: float, path: dict[str, float], out_w: int, out_h: int) -> np.ndarray:
    """The `out_w` x `out_h` view at time t in [0, 1] of a linear pan and zoom over `source`."""
    zoom = path["zoom0"] + t * (path["zoom1"] - path["zoom0"])  # source pixels per output pixel
    cx = path["cx0"] + t * (path["cx1"] - path["cx0"])
    cy = path["cy0"] + t * (path["cy1"] - path["cy0"])
    # output pixel (u, v) samples source pixel (cx + zoom (u - out_w/2), cy + zoom (v - out_h/2))
    matrix = np.array([[zoom, 0.0, cx - zoom * (out_w - 1) / 2.0],
                       [0.0, zoom, cy - zoom * (out_h - 1) / 2.0]])
    return cv2.warpAffine(source, matrix, (out_w, out_h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT101)


def synthesize_video(
    domain: str,
    sharp_images: Sequence[np.ndarray],
    out_path: str | Path,
    frames: int = 60,
    width: int = 320,
    height: int = 240,
    fps: float = 25,
    seed: int = 0,
    sharp_out: str | Path | None = None,
) -> dict[str, Any]:
    """A slow pan and zoom over one sharp image, every frame blurred by `domain` with its own parameters.

    Writes `out_path` (mp4v) atomically, and the matching sharp frames to `sharp_out` when given.
    Returns a summary dict.
    """
    blur_domain = get_domain(domain)
    if frames < 1:
        raise UserError(f"frames must be at least 1, got {frames}")
    if width < 16 or height < 16:
        raise UserError(f"video must be at least 16 x 16 px, got {width} x {height}")
    if fps <= 0:
        raise UserError(f"fps must be positive, got {fps}")
    if seed < 0:
        raise UserError(f"seed must be 0 or more, got {seed}")
    sources = _as_sources(sharp_images)
    rng = np.random.default_rng([seed, 1 << 30])  # kept apart from the per-frame streams below
    source = sources[int(rng.integers(len(sources)))]
    m = blur_domain.margin
    view_w, view_h = width + 2 * m, height + 2 * m
    zoom0, zoom1 = rng.uniform(0.85, 1.0), rng.uniform(0.85, 1.0)  # below 1: upsampled, no aliasing
    # make the source large enough that the widest view fits inside it
    need = max(zoom0, zoom1) * np.array([view_w, view_h]) + 4
    scale = max(1.0, float(np.max(need / np.array(source.shape[1::-1]))))
    if scale > 1.0:
        source = cv2.resize(source, (math.ceil(source.shape[1] * scale), math.ceil(source.shape[0] * scale)),
                            interpolation=cv2.INTER_CUBIC)
    h, w = source.shape[:2]

    def centre_range(zoom: float) -> tuple[tuple[float, float], tuple[float, float]]:
        hx, hy = zoom * (view_w - 1) / 2.0 + 1, zoom * (view_h - 1) / 2.0 + 1
        return (hx, w - 1 - hx), (hy, h - 1 - hy)

    (x0a, x0b), (y0a, y0b) = centre_range(zoom0)
    (x1a, x1b), (y1a, y1b) = centre_range(zoom1)
    path = {"zoom0": zoom0, "zoom1": zoom1,
            "cx0": rng.uniform(x0a, x0b), "cy0": rng.uniform(y0a, y0b),
            "cx1": rng.uniform(x1a, x1b), "cy1": rng.uniform(y1a, y1b)}
    # a slow pan: move at most a quarter of the frame over the clip
    for axis, span in (("cx", 0.25 * width), ("cy", 0.25 * height)):
        delta = path[axis + "1"] - path[axis + "0"]
        path[axis + "1"] = path[axis + "0"] + float(np.clip(delta, -span, span))

    outputs = [Path(out_path)] + ([Path(sharp_out)] if sharp_out is not None else [])
    for output in outputs:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            why = "a file is in the way" if isinstance(err, (FileExistsError, NotADirectoryError)) else err.strerror
            raise UserError(f"cannot write video {output}: cannot create the folder {output.parent} ({why})") from None
    videos: list[AtomicVideo] = []
    try:
        for output in outputs:
            videos.append(AtomicVideo(output, fps, (width, height)))
            if not videos[-1].opened:
                raise UserError(f"cannot write video {output}: "
                                f"OpenCV has no {FOURCC} writer for {output.suffix!r} files")
        for index in tqdm(range(frames), desc=f"video {blur_domain.name}", unit="frame"):
            t = index / max(frames - 1, 1)
            view = _pan_zoom_frame(source, t, path, view_w, view_h)
            sharp, blurry = blur_domain.make_pair(view, np.random.default_rng([seed, index]))
            for video, frame in zip(videos, (blurry, sharp)):
                video.write(frame)
        broken = [video.path for video in videos if video.finish() != frames]
        if broken:
            raise UserError(f"cannot write video {broken[0]}: it did not write completely (is the disk full?); "
                            "nothing was replaced")
    except BaseException:
        for video in videos:
            video.discard()
        raise
    for video in videos:
        video.commit()
    return {"path": str(out_path), "sharp_path": None if sharp_out is None else str(sharp_out),
            "domain": blur_domain.name, "frames": int(frames), "width": int(width), "height": int(height),
            "fps": float(fps), "seed": int(seed)}
