"""Losses and image-quality figures on RGB tensors in [0, 1]."""

from __future__ import annotations

import math

import torch

PSNR_SCALE = 10.0 / math.log(10.0)


def psnr_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """NAFNet's PSNR loss: 10 log10(MSE) per image, averaged (minimising it maximises PSNR)."""
    mse = (output - target).pow(2).mean(dim=(1, 2, 3))
    return PSNR_SCALE * torch.log(mse + 1e-8).mean()


def psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    """Mean PSNR in dB of a batch, images quantised to 8 bits as they would be saved."""
    output = output.clamp(0, 1).mul(255).round()
    target = target.clamp(0, 1).mul(255).round()
    mse = (output - target).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return float((10.0 * torch.log10(255.0**2 / mse)).mean())


def charbonnier_loss(output: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean sqrt((output - target)^2 + eps^2): L1 that stays smooth at zero."""
    return torch.sqrt((output - target).pow(2) + eps * eps).mean()


def ssim(output: torch.Tensor, target: torch.Tensor) -> float:
    """Mean SSIM of a batch on 8-bit RGB, scikit-image's implementation (Gaussian window, as in the papers)."""
    from skimage.metrics import structural_similarity

    def to_uint8(batch: torch.Tensor):
        return batch.detach().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()

    values = [
        structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False)
        for a, b in zip(to_uint8(output), to_uint8(target))
    ]
    return float(sum(values) / len(values))
