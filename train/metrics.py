"""Losses and image-quality figures on RGB tensors in [0, 1]."""

from __future__ import annotations

import math

import numpy as np
import torch

from blur2blur import quality

PSNR_SCALE = 10.0 / math.log(10.0)


def psnr_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """NAFNet's PSNR loss: 10 log10(MSE) per image, averaged (minimising it maximises PSNR)."""
    mse = (output - target).pow(2).mean(dim=(1, 2, 3))
    return PSNR_SCALE * torch.log(mse + 1e-8).mean()


def _bytes(batch: torch.Tensor) -> list[np.ndarray]:
    """A batch of RGB tensors in [0, 1] as 8-bit H x W x 3 images, quantised as they would be saved."""
    return list(batch.detach().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy())


def psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    """Mean PSNR in dB of a batch, images quantised to 8 bits (`blur2blur.quality.psnr`)."""
    return float(np.mean([quality.psnr(a, b) for a, b in zip(_bytes(output), _bytes(target))]))


def charbonnier_loss(output: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean sqrt((output - target)^2 + eps^2): L1 that stays smooth at zero."""
    return torch.sqrt((output - target).pow(2) + eps * eps).mean()


def ssim(output: torch.Tensor, target: torch.Tensor) -> float:
    """Mean SSIM of a batch on 8-bit RGB (`blur2blur.quality.ssim`: scikit-image's, Gaussian window)."""
    return float(np.mean([quality.ssim(a, b) for a, b in zip(_bytes(output), _bytes(target))]))
