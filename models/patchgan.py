"""pix2pix's 70x70 PatchGAN discriminator (Isola et al., CVPR 2017) with instance norm."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from blur2blur.errors import UserError

PRESETS: dict[str, dict] = {
    "patchgan": dict(base_channels=64, n_layers=3),  # 70x70 receptive field, 2.77 M params
    "patchgan-tiny": dict(base_channels=16, n_layers=3),
    "patchgan-tiny-nonorm": dict(base_channels=16, n_layers=3, norm="none"),
}


class PatchGAN(nn.Module):
    """Scores every overlapping patch of an image as real or fake: returns an N x 1 x h x w map.

    ``n_layers`` stride-2 4x4 convs, then a stride-1 4x4 conv and a 1-channel 4x4 conv; LeakyReLU 0.2
    and affine-free InstanceNorm between them (none after the first and last conv). Images need at
    least ``min_size`` pixels per side.
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, n_layers: int = 3,
                 norm: str = "instance") -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"PatchGAN needs n_layers >= 1, got {n_layers}")
        self.in_channels = in_channels
        # Each stride-2 conv halves the side; the two stride-1 convs take one pixel each.
        self.min_size = 3 * 2**n_layers

        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        channels = base_channels
        for n in range(1, n_layers + 1):
            out = base_channels * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            normalise = nn.InstanceNorm2d(out) if norm == "instance" else nn.Identity()
            layers += [nn.Conv2d(channels, out, 4, stride, 1), normalise, nn.LeakyReLU(0.2, True)]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if not torch.jit.is_tracing() and min(h, w) < self.min_size:
            raise UserError(
                f"image {h}x{w} is too small for the PatchGAN discriminator (at least {self.min_size} px a side "
                "at every scale): use a larger crop"
            )
        return self.model(x)

    def judge_scales(self, images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The same discriminator applied to each scale of a multi-scale output."""
        return [self(image) for image in images]
