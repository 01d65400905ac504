"""MIMO-UNet (Cho et al., ICCV 2021): Blur2Blur's blur converter G.

One U-Net over three scales that takes the image at full, 1/2 and 1/4 size and returns a
residual-corrected image at each. Module names follow the reference code, so its weights load.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from blur2blur.errors import UserError

PRESETS: dict[str, dict] = {
    "mimo-unet": dict(base_channels=32, num_res=8),  # the paper's G, 6.8 M params
    "mimo-unet-small": dict(base_channels=32, num_res=4),
    "mimo-unet-tiny": dict(base_channels=16, num_res=2),  # 35.9 GFLOP per 640x360 frame
    "mimo-unet-nano": dict(base_channels=8, num_res=1),  # 5.9 GFLOP: under half the starter deblurrer's 14.6
}


class BasicConv(nn.Module):
    """A conv (or a stride-2 transposed conv that doubles the size) with an optional ReLU."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, relu: bool = True, transpose: bool = False
    ) -> None:
        super().__init__()
        if transpose:
            conv = nn.ConvTranspose2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2 - 1)
        else:
            conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2)
        layers: list[nn.Module] = [conv]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class ResBlock(nn.Module):
    """conv3x3-ReLU-conv3x3 plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(BasicConv(channels, channels, 3), BasicConv(channels, channels, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class EBlock(nn.Module):
    """``num_res`` ResBlocks: one encoder stage."""

    def __init__(self, channels: int, num_res: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[ResBlock(channels) for _ in range(num_res)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DBlock(EBlock):
    """``num_res`` ResBlocks: one decoder stage."""


class SCM(nn.Module):
    """Shallow convolutional module: features of the downsampled input image, concatenated with it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            BasicConv(3, channels // 4, 3),
            BasicConv(channels // 4, channels // 2, 1),
            BasicConv(channels // 2, channels // 2, 3),
            BasicConv(channels // 2, channels - 3, 1),
        )
        self.conv = BasicConv(channels, channels, 1, relu=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([image, self.main(image)], dim=1))


class FAM(nn.Module):
    """Feature attention: the encoder features plus a 3x3 conv of their product with the SCM features."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.merge = BasicConv(channels, channels, 3, relu=False)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return x1 + self.merge(x1 * x2)


class AFF(nn.Module):
    """Asymmetric feature fusion: the three scales' encoder features (resized alike), 1x1 then 3x3 conv."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(BasicConv(in_ch, out_ch, 1), BasicConv(out_ch, out_ch, 3, relu=False))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x4: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([x1, x2, x4], dim=1))


def _half(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=0.5)  # nearest, as in the reference


def _double(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0)


class MIMOUNet(nn.Module):
    """Multi-input multi-output U-Net; ``forward`` returns ``[quarter, half, full]`` images.

    H and W must be multiples of ``size_multiple`` (4).
    """

    def __init__(self, base_channels: int = 32, num_res: int = 8) -> None:
        super().__init__()
        if base_channels < 8 or base_channels % 4:
            raise ValueError(f"MIMO-UNet base_channels must be a multiple of 4 and at least 8, got {base_channels}")
        c = base_channels
        self.in_channels = 3
        self.out_channels = 3
        self.size_multiple = 4

        self.Encoder = nn.ModuleList([EBlock(c, num_res), EBlock(2 * c, num_res), EBlock(4 * c, num_res)])
        self.feat_extract = nn.ModuleList(
            [
                BasicConv(3, c, 3),
                BasicConv(c, 2 * c, 3, stride=2),
                BasicConv(2 * c, 4 * c, 3, stride=2),
                BasicConv(4 * c, 2 * c, 4, stride=2, transpose=True),
                BasicConv(2 * c, c, 4, stride=2, transpose=True),
                BasicConv(c, 3, 3, relu=False),
            ]
        )
        self.Decoder = nn.ModuleList([DBlock(4 * c, num_res), DBlock(2 * c, num_res), DBlock(c, num_res)])
        self.Convs = nn.ModuleList([BasicConv(4 * c, 2 * c, 1), BasicConv(2 * c, c, 1)])
        self.ConvsOut = nn.ModuleList([BasicConv(4 * c, 3, 3, relu=False), BasicConv(2 * c, 3, 3, relu=False)])
        self.AFFs = nn.ModuleList([AFF(7 * c, c), AFF(7 * c, 2 * c)])
        self.FAM1 = FAM(4 * c)
        self.SCM1 = SCM(4 * c)
        self.FAM2 = FAM(2 * c)
        self.SCM2 = SCM(2 * c)

        # PyTorch's default init, not the reference's N(0, 0.02), which shrinks the signal at every conv: from
        # it G stayed the identity for 300 steps (measured). The output convs start at zero, so G starts
        # as the identity: the converter's warm start.
        for conv in (*self.ConvsOut, self.feat_extract[5]):
            nn.init.zeros_(conv.main[0].weight)
            nn.init.zeros_(conv.main[0].bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            h, w = x.shape[-2:]
            if h % self.size_multiple or w % self.size_multiple:
                raise UserError(
                    f"MIMO-UNet input {h}x{w} is not a multiple of {self.size_multiple}: crop or pad the images to one"
                )
        x_2 = _half(x)
        x_4 = _half(x_2)
        z2 = self.SCM2(x_2)
        z4 = self.SCM1(x_4)

        res1 = self.Encoder[0](self.feat_extract[0](x))
        z = self.FAM2(self.feat_extract[1](res1), z2)
        res2 = self.Encoder[1](z)
        z = self.FAM1(self.feat_extract[2](res2), z4)
        z = self.Encoder[2](z)

        # Fuse every scale's encoder features into the two skip connections.
        z42 = _double(z)
        fused2 = self.AFFs[1](_half(res1), res2, z42)
        fused1 = self.AFFs[0](res1, _double(res2), _double(z42))

        z = self.Decoder[0](z)
        out_4 = self.ConvsOut[0](z) + x_4
        z = self.Convs[0](torch.cat([self.feat_extract[3](z), fused2], dim=1))
        z = self.Decoder[1](z)
        out_2 = self.ConvsOut[1](z) + x_2
        z = self.Convs[1](torch.cat([self.feat_extract[4](z), fused1], dim=1))
        z = self.Decoder[2](z)
        out_1 = self.feat_extract[5](z) + x
        return [out_4, out_2, out_1]
