"""Frozen feature maps for Blur2Blur's reconstruction loss, which keeps G's output the input's content.

The loss is sum_l w_l mean|f_l(G(y)) - f_l(y)| over a feature stack's taps, deep (coarse) taps weighted
most, as in the reference (VGG16 before ReLU at conv2_2, conv3_3, conv4_1, conv4_3, conv5_1; weights
1/32 ... 1). A blur changes fine detail, so the shallow taps barely count and G stays free to change
the blur while the coarse content, colour and layout must stay.

Stacks (`--perceptual`): `vgg16` (torchvision's ImageNet file, `--vgg-weights`), and four that need no
download: `filters` (a fixed Gaussian pyramid), `lowpass` (the same pyramid without its raw full-size
level, which would tie G to the very noise and blur it must change), `deblurrer` (the frozen deblurrer's
encoder) and `kernel` (the kernel extractor's filter stack). The default is chosen by measurement (README).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from blur2blur.models.nafnet import padding_to_multiple
from blur2blur.models.vgg import load_vgg16_features

PYRAMID_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
# The reconstruction weight each stack needs (their features differ in scale): vgg16's is the reference's.
DEFAULT_LAMBDA_REC = {"vgg16": 0.8, "filters": 2.0, "lowpass": 4.0, "deblurrer": 4.0, "kernel": 4.0}


def binomial_low_pass(x: torch.Tensor) -> torch.Tensor:
    """`x` blurred by the 5 x 5 binomial filter (1 4 6 4 1 / 16 each way), borders replicated; any channel count."""
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=x.device, dtype=x.dtype) / 16
    kernel = torch.outer(taps, taps).expand(x.shape[1], 1, 5, 5).contiguous()
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel, groups=x.shape[1])


class FilterPyramid(nn.Module):
    """A Gaussian pyramid: the image itself, then low-passed by a 5-tap binomial filter at 1/2, ..., 1/16 size.

    The full-size level is the unfiltered image, so fine patterns a generator might add (stripes, checkerboards)
    cost something too; without it G learned to add stripes that the deblurrer then amplified (measured).
    """

    def __init__(self, levels: int = 5, raw: bool = True) -> None:
        super().__init__()
        self.levels, self.raw = levels, raw
        self.weights = PYRAMID_WEIGHTS[-levels:]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = [x if self.raw else binomial_low_pass(x)]  # `raw=False`: the finest level is low-passed too
        for _ in range(1, self.levels):
            x = binomial_low_pass(x)[..., ::2, ::2]
            maps.append(x)
        return maps


class DeblurrerEncoder(nn.Module):
    """The frozen NAFNet's encoder: the output of each encoder level and of the middle blocks."""

    def __init__(self, nafnet: nn.Module) -> None:
        super().__init__()
        self.net = nafnet
        self.weights = PYRAMID_WEIGHTS[-(len(nafnet.encoders) + 1):]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        m = self.net.size_multiple
        h, w = x.shape[-2:]
        x = self.net.intro(F.pad(x, (0, padding_to_multiple(w, m), 0, padding_to_multiple(h, m)), mode="replicate"))
        maps = []
        for encoder, down in zip(self.net.encoders, self.net.downs):
            x = encoder(x)
            maps.append(x)
            x = down(x)
        maps.append(self.net.middle_blks(x))
        return maps


class KernelEncoder(nn.Module):
    """The kernel extractor's learned filters at full, 1/2 and 1/4 size."""

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.energies = extractor.energies
        self.weights = PYRAMID_WEIGHTS[-3:]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        full = self.energies.at_full(x)
        half = self.energies.at_half(full)
        return [full, half, self.energies.at_quarter(half)]


class VGG16Taps(nn.Module):
    """VGG16 features before ReLU at conv2_2, conv3_3, conv4_1, conv4_3 and conv5_1 (torchvision indices
    7, 14, 17, 21, 24), on RGB in [0, 1] without mean/std normalisation, as the reference computes them."""

    TAPS = (7, 14, 17, 21, 24)

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features[: self.TAPS[-1] + 1]
        for module in self.features:
            if isinstance(module, nn.ReLU):
                module.inplace = False  # a tap must see the conv's output, not the ReLU's
        self.weights = PYRAMID_WEIGHTS

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.TAPS:
                maps.append(x)
        return maps


class PerceptualLoss(nn.Module):
    """sum_l w_l mean|f_l(output) - f_l(target)| of a frozen feature stack (gradients flow to `output` only)."""

    def __init__(self, stack: nn.Module) -> None:
        super().__init__()
        self.stack = stack.eval().requires_grad_(False)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self.stack(target)
        return sum(w * (a - b).abs().mean() for w, a, b in zip(self.stack.weights, self.stack(output), wanted))


def perceptual_loss(name: str, deblurrer: nn.Module | None = None, kernel: nn.Module | None = None,
                    vgg_weights: str | None = None) -> PerceptualLoss:
    """The reconstruction loss on the stack called `name` (see the module docstring)."""
    if name in ("filters", "lowpass"):
        return PerceptualLoss(FilterPyramid(raw=name == "filters"))
    if name == "deblurrer":
        return PerceptualLoss(DeblurrerEncoder(deblurrer))
    if name == "kernel":
        return PerceptualLoss(KernelEncoder(kernel))
    if name == "vgg16":
        return PerceptualLoss(VGG16Taps(load_vgg16_features(vgg_weights)))
    raise ValueError(f"unknown perceptual features {name!r}")
