"""`b2b-train kernel`: the blur kernel extractor on known pairs, with the Charbonnier loss.

It learns to encode the blur of a (sharp, blurry) pair and to re-apply it to the sharp image. It has
learned the blur, not the picture, when on held-out pairs re-blurring the sharp image with its own pair's
code comes closer to the real blurry image than both the sharp image itself and the sharp image blurred
with the code of another pair: the three `val_psnr_*` figures.
"""

from __future__ import annotations

from itertools import islice
from typing import Iterable

import numpy as np
import torch
from torch import nn

from blur2blur.data.splits import Pairs
from blur2blur.train.config import KernelConfig
from blur2blur.train.core import RunResult, run
from blur2blur.train.crops import tensor_to_bgr
from blur2blur.train.metrics import charbonnier_loss, psnr
from blur2blur.train.paired import PairTask, held_out_tensors

SAMPLE_ROWS = 4


class KernelTask(PairTask):
    """Re-blur the sharp crop with the code of its own pair; judged on held-out pairs."""

    best_metric = "val_psnr_own_code"

    def loss(self, model: nn.Module, batch: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        blur, sharp = batch
        reblurred = model(sharp, blur)
        loss = charbonnier_loss(reblurred, blur)
        mse = (reblurred.detach() - blur).pow(2).mean().clamp_min(1e-10)
        return loss, {"charbonnier": loss.detach(), "psnr": -10 * torch.log10(mse)}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return evaluate_kernel(model, self.val, self.val_size)

    def samples(self, model: nn.Module) -> list[list[np.ndarray]]:
        """Rows of sharp | re-blurred with its own code | with another pair's code | real blurry."""
        rows = []
        for sharp, own, other, blur in islice(_reblurred(model, self.val, self.val_size), SAMPLE_ROWS):
            rows.append([tensor_to_bgr(t[0]) for t in (sharp, own, other, blur)])
        return rows


@torch.no_grad()
def _reblurred(model: nn.Module, pairs: Pairs, size: int):
    """(sharp, re-blurred with its own code, with the next pair's code, blurry) per held-out pair (CPU)."""
    device = next(model.parameters()).device
    held = [(blur.to(device), sharp.to(device)) for blur, sharp in held_out_tensors(pairs, size)]
    codes = [model.encode(sharp, blur) for blur, sharp in held]
    for i, (blur, sharp) in enumerate(held):
        other = codes[(i + 1) % len(held)]
        yield sharp.cpu(), model.reblur(sharp, codes[i]).cpu(), model.reblur(sharp, other).cpu(), blur.cpu()


def evaluate_kernel(model: nn.Module, pairs: Pairs, size: int) -> dict[str, float]:
    """Mean PSNR against the real blurry image of: the sharp image (`no_blur`), the sharp image re-blurred
    with its own pair's code (`own_code`) and with the code of another held-out pair (`other_code`)."""
    figures: dict[str, list[float]] = {"val_psnr_no_blur": [], "val_psnr_own_code": [], "val_psnr_other_code": []}
    for sharp, own, other, blur in _reblurred(model, pairs, size):
        figures["val_psnr_no_blur"].append(psnr(sharp, blur))
        figures["val_psnr_own_code"].append(psnr(own, blur))
        figures["val_psnr_other_code"].append(psnr(other, blur))
    if len(figures["val_psnr_other_code"]) < 2:  # with one pair, "another pair" is the pair itself
        figures.pop("val_psnr_other_code")
    return {key: float(np.mean(values)) for key, values in figures.items() if values}


def train_kernel(config: KernelConfig, given: Iterable[str] = ()) -> RunResult:
    """Train (or, with `config.resume`, continue) a kernel extractor run in `config.out`."""
    return run(config, KernelTask, given)
