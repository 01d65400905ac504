"""The blur kernel extractor (after Tran et al., CVPR 2021, "Explore Image Deblurring via Encoded Blur Kernel Space").

Two halves trained together on known (sharp, blurry) pairs:

- ``encode(sharp, blurry)`` reads the blur that turns one into the other and summarises it as a kernel
  code, one vector per image (the known blurs here are uniform over the frame);
- ``reblur(sharp, code)`` applies an encoded blur to any sharp image.

Blur2Blur uses it to put the *known* blur onto the target camera's sharp images: encode a random known
pair, reblur a target image with that code.

Our design, chosen by measurement (a pooled-feature encoder left the code unused): the encoder compares
how much energy the same learned filters find in the blurry and in the sharp image, at three scales. A blur
is a filter, so the log ratio of those energies is its frequency response, whatever the picture shows. The
code decodes to an explicit blur kernel convolved in linear light (how light blurs), followed by a small
code-modulated residual network for what a kernel cannot say (tone, clipping); it starts at zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PRESETS: dict[str, dict] = {
    # The reference sizes: 64 features, 10 front / 20 back residual blocks, 512-d kernel code.
    "kernel-extractor": dict(features=64, front_blocks=10, back_blocks=20, code_dim=512, kernel_size=31),
    # Small enough to train on a CPU in minutes.
    "kernel-extractor-tiny": dict(features=24, front_blocks=1, back_blocks=2, code_dim=64, kernel_size=21),
}


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp_min(1e-8) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(1e-8) ** (1 / 2.4) - 0.055)


class ResidualBlock(nn.Module):
    """conv3x3, LeakyReLU, conv3x3, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.1))


class ModulatedBlock(nn.Module):
    """A residual block whose inner features are scaled and shifted per channel by the kernel code."""

    def __init__(self, channels: int, code_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.modulation = nn.Linear(code_dim, 2 * channels)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        scale, shift = self.modulation(code)[:, :, None, None].chunk(2, dim=1)
        return x + self.conv2(F.leaky_relu(self.conv1(x) * (1 + scale) + shift, 0.1))


class FilterEnergies(nn.Module):
    """Log standard deviation, per channel, of learned filter responses at full, 1/2 and 1/4 size."""

    def __init__(self, features: int, blocks: int) -> None:
        super().__init__()
        nf = features
        self.at_full = nn.Sequential(nn.Conv2d(3, nf, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(nf, nf, 3, padding=1))
        self.at_half = nn.Sequential(nn.LeakyReLU(0.1), nn.Conv2d(nf, nf, 4, stride=2, padding=1),
                                  *[ResidualBlock(nf) for _ in range(blocks)])
        self.at_quarter = nn.Sequential(nn.LeakyReLU(0.1), nn.Conv2d(nf, nf, 4, stride=2, padding=1),
                                     nn.LeakyReLU(0.1), nn.Conv2d(nf, nf, 3, padding=1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        full = self.at_full(image)
        half = self.at_half(full)
        quarter = self.at_quarter(half)
        return torch.cat([torch.log(f.std(dim=(2, 3)) + 1e-3) for f in (full, half, quarter)], dim=1)


class KernelExtractor(nn.Module):
    """Encode the blur of a (sharp, blurry) pair as a code; apply a code to a sharp image.

    Images are RGB in [0, 1] of any size.
    """

    def __init__(self, features: int = 64, front_blocks: int = 10, back_blocks: int = 20, code_dim: int = 512,
                 kernel_size: int = 31) -> None:
        super().__init__()
        if min(features, code_dim) < 1 or min(front_blocks, back_blocks) < 0 or kernel_size % 2 == 0:
            raise ValueError("features and code_dim must be positive, block counts not negative, kernel_size odd")
        self.code_dim, self.kernel_size = code_dim, kernel_size
        nf = features
        self.energies = FilterEnergies(nf, front_blocks)
        self.to_code = nn.Sequential(nn.Linear(3 * nf, 2 * code_dim), nn.LeakyReLU(0.1),
                                     nn.Linear(2 * code_dim, code_dim))
        self.to_kernel = nn.Linear(code_dim, kernel_size * kernel_size)
        nn.init.zeros_(self.to_kernel.weight)  # the first kernel is a uniform box; training shapes it
        nn.init.zeros_(self.to_kernel.bias)
        self.head = nn.Conv2d(3, nf, 3, padding=1)
        self.blocks = nn.ModuleList([ModulatedBlock(nf, code_dim) for _ in range(back_blocks)])
        self.tail = nn.Conv2d(nf, 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # the refinement starts at nothing
        nn.init.zeros_(self.tail.bias)

    def encode(self, sharp: torch.Tensor, blurry: torch.Tensor) -> torch.Tensor:
        """The kernel code (N x code_dim) of the blur that turns ``sharp`` into ``blurry``."""
        return self.to_code(self.energies(blurry) - self.energies(sharp))

    def kernel(self, code: torch.Tensor) -> torch.Tensor:
        """The blur kernel (N x k x k, non-negative, summing to 1) that ``code`` describes."""
        k = self.kernel_size
        return self.to_kernel(code).softmax(dim=1).reshape(-1, k, k)

    def reblur(self, sharp: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """``sharp`` with the blur that ``code`` encodes (same size)."""
        n, c, h, w = sharp.shape
        k = self.kernel_size
        weights = self.kernel(code).flip(1, 2).repeat_interleave(c, dim=0)[:, None]  # flipped: a convolution
        light = F.pad(srgb_to_linear(sharp), [k // 2] * 4, mode="replicate").reshape(1, n * c, h + k - 1, w + k - 1)
        blurred = linear_to_srgb(F.conv2d(light, weights, groups=n * c).reshape(n, c, h, w))
        y = self.head(blurred)
        for block in self.blocks:
            y = block(y, code)
        return blurred + self.tail(F.leaky_relu(y, 0.1))

    def forward(self, sharp: torch.Tensor, blurry: torch.Tensor) -> torch.Tensor:
        """Re-blur ``sharp`` with the blur encoded from its own pair."""
        return self.reblur(sharp, self.encode(sharp, blurry))
