"""`b2b-train deblurrer`: NAFNet on paired known-blur data, with the PSNR loss, held-out PSNR/SSIM."""

from __future__ import annotations

from itertools import islice
from typing import Iterable

import numpy as np
import torch
from torch import nn

from blur2blur.data.splits import Pairs
from blur2blur.train.config import DeblurrerConfig
from blur2blur.train.core import RunResult, run
from blur2blur.train.crops import tensor_to_bgr
from blur2blur.train.metrics import psnr, psnr_loss, ssim
from blur2blur.train.paired import PairTask, held_out_tensors

SAMPLE_ROWS = 4


class DeblurrerTask(PairTask):
    """NAFNet learns blurry -> sharp on crops of the training pairs; judged by PSNR on held-out pairs."""

    best_metric = "val_psnr"

    def loss(self, model: nn.Module, batch: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        blur, sharp = batch
        loss = psnr_loss(model(blur), sharp)
        return loss, {"psnr": -loss.detach()}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return evaluate_deblurrer(model, self.val, self.val_size)

    def samples(self, model: nn.Module) -> list[list[np.ndarray]]:
        """Rows of blurry | deblurred | sharp."""
        device = next(model.parameters()).device
        rows = []
        for blur, sharp in islice(held_out_tensors(self.val, self.val_size), SAMPLE_ROWS):
            output = model(blur.to(device)).cpu()
            rows.append([tensor_to_bgr(t[0]) for t in (blur, output, sharp)])
        return rows


@torch.no_grad()
def evaluate_deblurrer(model: nn.Module, pairs: Pairs, size: int) -> dict[str, float]:
    """Mean PSNR and SSIM (8-bit RGB) of the blurry input and of the model's output against sharp."""
    device = next(model.parameters()).device
    figures: dict[str, list[float]] = {"val_psnr_input": [], "val_psnr": [], "val_ssim_input": [], "val_ssim": []}
    for blur, sharp in held_out_tensors(pairs, size):
        output = model(blur.to(device)).cpu()
        figures["val_psnr_input"].append(psnr(blur, sharp))
        figures["val_psnr"].append(psnr(output, sharp))
        figures["val_ssim_input"].append(ssim(blur, sharp))
        figures["val_ssim"].append(ssim(output, sharp))
    return {key: float(np.mean(values)) for key, values in figures.items() if values}


def train_deblurrer(config: DeblurrerConfig, given: Iterable[str] = ()) -> RunResult:
    """Train (or, with `config.resume`, continue) a deblurrer run in `config.out`."""
    return run(config, DeblurrerTask, given)
