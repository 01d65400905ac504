"""NAFNet (Chen et al., ECCV 2022): the known-blur deblurrer, layer for layer as megvii's release.

Module names follow the official code so that its GoPro checkpoints load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

PRESETS: dict[str, dict] = {
    # The paper's GoPro models (width 32: 17.1 M params, width 64: 67.9 M).
    "nafnet-w32": dict(width=32, enc_blk_nums=(1, 1, 1, 28), middle_blk_num=1, dec_blk_nums=(1, 1, 1, 1)),
    "nafnet-w64": dict(width=64, enc_blk_nums=(1, 1, 1, 28), middle_blk_num=1, dec_blk_nums=(1, 1, 1, 1)),
    # Small enough to train on a CPU.
    "nafnet-tiny": dict(width=16, enc_blk_nums=(1, 1, 1, 1), middle_blk_num=1, dec_blk_nums=(1, 1, 1, 1)),
    "nafnet-small": dict(width=24, enc_blk_nums=(1, 1, 2, 4), middle_blk_num=2, dec_blk_nums=(1, 1, 1, 1)),
    # The shipped starter (2.2 M params): nafnet-tiny's width with its extra depth at the cheap low levels.
    "nafnet-w16": dict(width=16, enc_blk_nums=(1, 1, 2, 6), middle_blk_num=2, dec_blk_nums=(1, 1, 1, 1)),
}


def padding_to_multiple(size, multiple: int):
    """How much to add to `size` (an int, or a size traced for ONNX) to reach a multiple of `multiple`.

    A traced size keeps H and W dynamic in the graph; it is computed with a truncating division
    rather than `%` (the same for sizes, which are never negative), so the size arithmetic is plain
    Add/Div/Mul/Sub that every runtime evaluates; TensorRT 10's ONNX parser does support Mod too.
    """
    if isinstance(size, torch.Tensor):
        return torch.div(size + (multiple - 1), multiple, rounding_mode="trunc") * multiple - size
    return -size % multiple


class LayerNorm2d(nn.Module):
    """Normalise each pixel over its channels (biased variance), then scale and shift per channel.

    Written as channels-last ``layer_norm`` so the ONNX exporter (opset >= 17) emits one
    ``LayerNormalization`` op, and computed in FP32 whatever the input type: in FP16,
    (x - mean)^2 overflows and eps = 1e-6 is below the type's resolution.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels_last = x.permute(0, 2, 3, 1).float()
        y = F.layer_norm(channels_last, (self.channels,), self.weight.float(), self.bias.float(), self.eps)
        return y.permute(0, 3, 1, 2).to(x.dtype)


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them: the nonlinearity of NAFNet."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    """Norm, 1x1 expand, depthwise 3x3, gate, channel attention, 1x1 (scaled by beta);
    then norm, 1x1 expand, gate, 1x1 (scaled by gamma). beta and gamma start at 0."""

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2) -> None:
        super().__init__()
        dw = c * dw_expand
        ffn = c * ffn_expand
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        # Simplified channel attention: global average, 1x1 conv, no sigmoid.
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.sg = SimpleGate()
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        # The release trains without dropout; Identity keeps the module names and adds no params.
        self.dropout1 = nn.Identity()
        self.dropout2 = nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.norm1(inp)
        x = self.conv2(self.conv1(x))
        x = self.sg(x)
        x = x * self.sca(x)
        x = self.dropout1(self.conv3(x))
        y = inp + x * self.beta

        x = self.conv4(self.norm2(y))
        x = self.sg(x)
        x = self.dropout2(self.conv5(x))
        return y + x * self.gamma


class NAFNet(nn.Module):
    """U-Net of NAFBlocks with additive skips and a global residual.

    Any H x W is accepted: the input is zero-padded to a multiple of ``size_multiple`` and the
    output cropped back.
    """

    def __init__(
        self,
        img_channel: int = 3,
        width: int = 16,
        middle_blk_num: int = 1,
        enc_blk_nums: Sequence[int] = (1, 1, 1, 28),
        dec_blk_nums: Sequence[int] = (1, 1, 1, 1),
    ) -> None:
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError(f"NAFNet needs as many decoder as encoder levels, got {enc_blk_nums} / {dec_blk_nums}")
        self.in_channels = img_channel
        self.out_channels = img_channel
        self.size_multiple = 2 ** len(enc_blk_nums)

        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()

        chan = width
        for num in enc_blk_nums:
            self.encoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, stride=2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[NAFBlock(chan) for _ in range(middle_blk_num)])
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, 2 * chan, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        h, w = inp.shape[-2], inp.shape[-1]
        m = self.size_multiple
        inp = F.pad(inp, (0, padding_to_multiple(w, m), 0, padding_to_multiple(h, m)))

        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = decoder(up(x) + skip)
        x = self.ending(x) + inp
        return x[:, :, :h, :w]


def _windows(n, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Along an axis of length `n` (an int or a size traced for ONNX): each position's window [start, end) of
    `k` samples, shifted inside the axis at its ends, and the window's length min(k, n)."""
    n = n if isinstance(n, torch.Tensor) else torch.tensor(n)  # a traced size stays dynamic in ONNX
    length = torch.minimum(n, torch.tensor(k))  # Min and Max, not Clip: the graph's one Clip is its output's
    start = torch.minimum(torch.maximum(torch.arange(n) - (k - 1) // 2, torch.tensor(0)), n - length)
    return start, start + length, length


class LocalAvgPool(nn.Module):
    """TLC's local statistics (NAFNetLocal): each pixel's mean over the `kernel` x `kernel` window around it.

    Windows near an edge are shifted inside the image, and an image smaller than the window gets its global
    mean, as the official AvgPool2d with replicate padding gives. Computed from an integral image with fixed
    window sizes and dynamic indices (CumSum, Gather: no pooling kernel that depends on the input's size,
    so TensorRT parses it), in FP32 whatever the input type: FP16 sums over a frame overflow.
    """

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        integral = F.pad(x.float().cumsum(2).cumsum(3), (1, 0, 1, 0))
        top, bottom, rows = _windows(x.shape[2], self.kernel)
        left, right, cols = _windows(x.shape[3], self.kernel)
        upper = integral.index_select(2, top)
        lower = integral.index_select(2, bottom)
        sums = (lower.index_select(3, right) - lower.index_select(3, left)
                - upper.index_select(3, right) + upper.index_select(3, left))
        return (sums / (rows * cols)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}"


def use_local_statistics(model: NAFNet, train_crop: int, ratio: float = 1.5) -> NAFNet:
    """Turn `model` into its TLC form in place: every channel attention's global mean becomes a local mean
    over a window of `ratio` times the training crop, scaled to the block's level (as NAFNetLocal does)."""
    base = int(ratio * train_crop)
    levels = len(model.encoders)
    groups = ([(blocks, i) for i, blocks in enumerate(model.encoders)] + [(model.middle_blks, levels)]
              + [(blocks, levels - 1 - j) for j, blocks in enumerate(model.decoders)])
    for blocks, level in groups:
        side = train_crop // 2 ** level  # the block's feature side when the input is one training crop
        for block in blocks:
            block.sca[0] = LocalAvgPool(side * base // train_crop)
    return model
