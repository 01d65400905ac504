"""`b2b-eval deblur`: PSNR/SSIM of the blurry input, the deblurrer alone and the deblurrer after the converter."""

from __future__ import annotations

import logging
import time

import numpy as np
from tqdm import tqdm

from blur2blur.data.splits import spread
from blur2blur.errors import UserError
from blur2blur.evaluate.grids import Grids
from blur2blur.evaluate.report import table_cell
from blur2blur.evaluate.restorers import LABELS, Restorer
from blur2blur.quality import SSIM_MIN_SIDE, harm_warning, psnr, ssim

log = logging.getLogger(__name__)


def evaluate_deblur(pairs, restorers: list[Restorer], limit: int = 100, grids: Grids | None = None,
                    source: str = "") -> dict:
    """Figures per pair and their means; `pairs` is any pair reader (`load(i)` -> (blurry, sharp) BGR or None,
    unreadable pairs are skipped and named in the result). With `grids`, a comparison per pair:
    blurry | each restoration | sharp."""
    keys = ["blurry"] + [r.key for r in restorers]
    chosen = spread(pairs, limit) if limit else pairs
    names = chosen.names
    images, skipped, start = [], [], time.perf_counter()
    for i in tqdm(range(len(chosen)), desc="evaluating", unit="pair", leave=False, disable=None):
        loaded = chosen.load(i)
        if loaded is None:
            skipped.append(names[i])
            continue
        blurry, sharp = loaded
        if min(blurry.shape[:2]) < SSIM_MIN_SIDE:
            raise UserError(f"pair {names[i]} is {blurry.shape[1]}x{blurry.shape[0]}: SSIM needs images of at least "
                            f"{SSIM_MIN_SIDE} px a side")
        outputs = {"blurry": blurry, **{r.key: r.restore(blurry) for r in restorers}}
        row = {"name": names[i], "size": list(blurry.shape[:2])}
        row.update({key: {"psnr": psnr(outputs[key], sharp), "ssim": ssim(outputs[key], sharp)} for key in keys})
        images.append(row)
        if grids:
            grids.write(names[i], [(outputs[key], LABELS[key]) for key in keys] + [(sharp, "sharp")])
    if not images:
        raise UserError(f"--pairs {source}: none of the {len(chosen)} pairs evaluated can be read (unreadable files, "
                        "or a blurry and a sharp image of different sizes)")
    if skipped:
        log.warning("skipped %d unreadable or mismatched pairs: %s", len(skipped), ", ".join(skipped[:5]))
    mean = {key: {m: float(np.mean([row[key][m] for row in images])) for m in ("psnr", "ssim")} for key in keys}
    result = {"pairs": source or getattr(pairs, "source", ""), "evaluated": len(images), "available": len(pairs),
              "skipped": skipped, "columns": {"blurry": LABELS["blurry"], **{r.key: r.description for r in restorers}},
              "images": images, "mean": mean, "seconds": round(time.perf_counter() - start, 2)}
    result["harm_warning"] = restoration_warning(result)
    return result


def format_deblur_table(result: dict, per_image: bool = True) -> str:
    """A markdown table, PSNR (dB) / SSIM: a row per image (when `per_image`) and the mean."""
    keys = list(result["columns"])
    lines = ["| image | " + " | ".join(LABELS[key] for key in keys) + " |", "|---" * (len(keys) + 1) + "|"]

    def cells(figures: dict) -> str:
        return " | ".join(f"{figures[key]['psnr']:.2f} / {figures[key]['ssim']:.3f}" for key in keys)

    if per_image:
        lines += [f"| {table_cell(row['name'])} | {cells(row)} |" for row in result["images"]]
    lines.append(f"| **mean of {result['evaluated']}** | {cells(result['mean'])} |")
    mean = result["mean"]
    notes = [f"PSNR (dB) / SSIM on RGB against the sharp images of {result['pairs']}"]
    if "deblurrer" in mean:
        notes.append(f"deblurrer alone vs blurry input: {mean['deblurrer']['psnr'] - mean['blurry']['psnr']:+.2f} dB")
    if "converter" in mean and "deblurrer" in mean:
        notes.append(f"with converter vs deblurrer alone: "
                     f"{mean['converter']['psnr'] - mean['deblurrer']['psnr']:+.2f} dB")
    warning = restoration_warning(result)
    if warning:
        notes.append(warning)
    return "\n".join(lines + [""] + notes)


def restoration_warning(result: dict) -> str | None:
    """The do-no-harm warning for the last (deployed) restoration of `result`, or None when it beats the input."""
    keys = list(result["columns"])
    if len(keys) < 2:
        return None
    mean = result["mean"]
    return harm_warning(mean[keys[-1]]["psnr"], mean["blurry"]["psnr"], f"the {LABELS[keys[-1]]} column")
