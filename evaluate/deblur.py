"""`b2b-eval deblur`: PSNR/SSIM of the blurry input, the deblurrer alone and the deblurrer after the converter."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from blur2blur.apps.side_by_side import label
from blur2blur.evaluate.restorers import LABELS, Restorer
from blur2blur.quality import psnr, ssim

log = logging.getLogger(__name__)


def spread_indices(total: int, limit: int) -> list[int]:
    """At most `limit` indices spread evenly over range(total) (all of them when `limit` is 0)."""
    if not limit or total <= limit:
        return list(range(total))
    return np.linspace(0, total - 1, limit).round().astype(int).tolist()


def grid_name(name: str) -> str:
    """A pair's name as a file name: path separators and odd characters become '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") + ".png"


def evaluate_deblur(pairs, restorers: list[Restorer], limit: int = 100, grid: str | Path | None = None,
                    source: str = "") -> dict:
    """Figures per pair and their means; `pairs` is any pair reader (`load(i)` -> (blurry, sharp) BGR or None).

    With `grid`, writes blurry | each restoration | sharp per pair as a labelled PNG into that folder.
    """
    from blur2blur.train.records import write_grid

    keys = ["blurry"] + [r.key for r in restorers]
    indices = spread_indices(len(pairs), limit)
    names = pairs.names
    images, start = [], time.perf_counter()
    for i in tqdm(indices, desc="evaluating", unit="pair", leave=False):
        loaded = pairs.load(i)
        if loaded is None:
            continue
        blurry, sharp = loaded
        outputs = {"blurry": blurry, **{r.key: r.restore(blurry) for r in restorers}}
        row = {"name": names[i], "size": list(blurry.shape[:2])}
        row.update({key: {"psnr": psnr(outputs[key], sharp), "ssim": ssim(outputs[key], sharp)} for key in keys})
        images.append(row)
        if grid:
            tiles = [label(outputs[key].copy(), LABELS[key]) for key in keys] + [label(sharp.copy(), "sharp")]
            write_grid(Path(grid) / grid_name(names[i]), [tiles])
    if not images:
        raise ValueError("no pair could be read")  # pair readers reject sources without a readable pair
    mean = {key: {m: float(np.mean([row[key][m] for row in images])) for m in ("psnr", "ssim")} for key in keys}
    return {"pairs": source or getattr(pairs, "source", ""), "evaluated": len(images), "available": len(pairs),
            "skipped": list(getattr(pairs, "skipped", [])),
            "columns": {"blurry": LABELS["blurry"], **{r.key: r.description for r in restorers}},
            "images": images, "mean": mean, "seconds": round(time.perf_counter() - start, 2)}


def format_deblur_table(result: dict, per_image: bool = True) -> str:
    """A markdown table, PSNR (dB) / SSIM: a row per image (when `per_image`) and the mean."""
    keys = list(result["columns"])
    lines = ["| image | " + " | ".join(LABELS[key] for key in keys) + " |", "|---" * (len(keys) + 1) + "|"]

    def cells(figures: dict) -> str:
        return " | ".join(f"{figures[key]['psnr']:.2f} / {figures[key]['ssim']:.3f}" for key in keys)

    if per_image:
        lines += [f"| {row['name']} | {cells(row)} |" for row in result["images"]]
    lines.append(f"| **mean of {result['evaluated']}** | {cells(result['mean'])} |")
    mean = result["mean"]
    notes = [f"PSNR (dB) / SSIM on RGB against the sharp images of {result['pairs']}"]
    if "deblurrer" in mean:
        notes.append(f"deblurrer alone vs blurry input: {mean['deblurrer']['psnr'] - mean['blurry']['psnr']:+.2f} dB")
    if "converter" in mean and "deblurrer" in mean:
        notes.append(f"with converter vs deblurrer alone: {mean['converter']['psnr'] - mean['deblurrer']['psnr']:+.2f} dB")
    return "\n".join(lines + [""] + notes)
